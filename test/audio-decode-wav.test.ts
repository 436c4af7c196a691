import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { AudioInputError } from '../src/audio/audio-source.js';
import { decodeAudioFile } from '../src/audio/decode-audio-file.js';
import { findOnPath } from '../src/audio/microphone-source.js';
import { amplitude, handmadeWav, sine, tempDir, writeWav, zeroCrossingFrequency } from './helpers/audio-fixtures.js';

const dir = tempDir();
const soxBinary = await findOnPath('sox');

/** Asserts the promise rejects with an AudioInputError naming `path` and matching `message`. */
async function rejectsWithAudioInputError(promise: Promise<unknown>, path: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AudioInputError, `expected AudioInputError, got ${String(error)}`);
    assert.equal(error.source, path);
    assert.ok(error.message.includes(path), `message should name the file: ${error.message}`);
    assert.match(error.message, message);
    return true;
  });
}

function int16Bytes(values: number[]): Uint8Array {
  const bytes = Buffer.alloc(values.length * 2);
  values.forEach((value, i) => bytes.writeInt16LE(value, 2 * i));
  return new Uint8Array(bytes);
}

test('a 16-bit mono WAV decodes to floats at its own rate', async () => {
  const path = await writeWav(join(dir, 'mono16.wav'), [sine(440, 0.5, 16000, 0.5)], 16000, '16');
  const audio = await decodeAudioFile(path);
  assert.equal(audio.sampleRate, 16000);
  assert.equal(audio.channels.length, 1);
  assert.equal(audio.channels[0].length, 8000);
  assert.ok(Math.abs(amplitude(audio.channels[0]) - 0.5) < 0.001);
  assert.ok(Math.abs(zeroCrossingFrequency(audio.channels[0], 16000) - 440) < 1);
});

test('an 8-bit unsigned WAV is centred on 128', async () => {
  const path = await writeWav(join(dir, 'unsigned8.wav'), [sine(300, 0.25, 8000, 0.5)], 8000, '8');
  const audio = await decodeAudioFile(path);
  const samples = audio.channels[0];
  const mean = samples.reduce((sum, value) => sum + value, 0) / samples.length;
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean} should be near 0`);
  assert.ok(Math.abs(amplitude(samples) - 0.5) < 0.01);
  assert.ok(Math.abs(zeroCrossingFrequency(samples, 8000) - 300) < 2);
});

test('a 24-bit WAV keeps its full resolution', async () => {
  const signal = sine(1000, 0.1, 48000, 0.9);
  const path = await writeWav(join(dir, 'pcm24.wav'), [signal], 48000, '24');
  const audio = await decodeAudioFile(path);
  let worst = 0;
  for (let i = 0; i < signal.length; i++) worst = Math.max(worst, Math.abs(audio.channels[0][i] - signal[i]));
  assert.ok(worst <= 1 / 2 ** 23, `largest error ${worst} exceeds one 24-bit step`);
});

test('a 24-bit WAV decodes negative full scale to -1', async () => {
  const path = await writeWav(join(dir, 'pcm24-extremes.wav'), [new Float32Array([-1, 0, 0.5])], 16000, '24');
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [-1, 0, 0.5]);
});

test('a 32-bit integer WAV decodes to [-1, 1]', async () => {
  const path = await writeWav(join(dir, 'pcm32.wav'), [new Float32Array([-1, -0.25, 0, 0.25])], 16000, '32');
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [-1, -0.25, 0, 0.25]);
});

test('a 32-bit float WAV decodes exactly', async () => {
  const signal = sine(440, 0.1, 22050, 0.7);
  const path = await writeWav(join(dir, 'float32.wav'), [signal], 22050, '32f');
  const audio = await decodeAudioFile(path);
  assert.equal(audio.sampleRate, 22050);
  assert.deepEqual(audio.channels[0], signal);
});

test('a 64-bit float WAV decodes', async () => {
  const signal = sine(440, 0.1, 16000, 0.7);
  const path = await writeWav(join(dir, 'float64.wav'), [signal], 16000, '64');
  const audio = await decodeAudioFile(path);
  assert.deepEqual(audio.channels[0], signal);
});

test('a float WAV beyond full scale is clipped to [-1, 1]', async () => {
  const path = await writeWav(join(dir, 'hot-float.wav'), [new Float32Array([1.5, -2, 0.5])], 16000, '32f');
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [1, -1, 0.5]);
});

test('a 48 kHz stereo WAV decodes both channels separately', async () => {
  const left = sine(500, 0.2, 48000, 0.5);
  const right = sine(1500, 0.2, 48000, 0.25);
  const path = await writeWav(join(dir, 'stereo48k.wav'), [left, right], 48000, '16');
  const audio = await decodeAudioFile(path);
  assert.equal(audio.sampleRate, 48000);
  assert.equal(audio.channels.length, 2);
  assert.ok(Math.abs(zeroCrossingFrequency(audio.channels[0], 48000) - 500) < 1);
  assert.ok(Math.abs(zeroCrossingFrequency(audio.channels[1], 48000) - 1500) < 2);
  assert.ok(Math.abs(amplitude(audio.channels[1]) - 0.25) < 0.001);
});

test('a six-channel WAV decodes every channel', async () => {
  const channels = [1, 2, 3, 4, 5, 6].map((n) => new Float32Array(100).fill(n / 10));
  const path = await writeWav(join(dir, 'six.wav'), channels, 16000, '16');
  const audio = await decodeAudioFile(path);
  assert.equal(audio.channels.length, 6);
  audio.channels.forEach((channel, c) => assert.ok(Math.abs(channel[50] - (c + 1) / 10) < 1e-4));
});

test('a WAVE_FORMAT_EXTENSIBLE PCM WAV decodes like plain PCM', async () => {
  const path = join(dir, 'extensible-pcm.wav');
  await writeFile(path, handmadeWav({ formatCode: 1, extensible: true, channels: 2, rate: 44100, bitsPerSample: 16, data: int16Bytes([16384, -16384, 8192, -8192]) }));
  const audio = await decodeAudioFile(path);
  assert.equal(audio.sampleRate, 44100);
  assert.deepEqual(Array.from(audio.channels[0]), [0.5, 0.25]);
  assert.deepEqual(Array.from(audio.channels[1]), [-0.5, -0.25]);
});

test('a WAVE_FORMAT_EXTENSIBLE float WAV is read as float, not integer', async () => {
  const path = join(dir, 'extensible-float.wav');
  const data = new Uint8Array(new Float32Array([0.5, -0.75]).buffer);
  await writeFile(path, handmadeWav({ formatCode: 3, extensible: true, channels: 1, rate: 16000, bitsPerSample: 32, data }));
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [0.5, -0.75]);
});

test('a WAV cut in half is refused as truncated, naming the bytes, samples and seconds its header declares and the file holds', async () => {
  const whole = await readFile(await writeWav(join(dir, 'whole.wav'), [sine(440, 1, 16000)], 16000, '16'));
  const path = join(dir, 'half.wav');
  // 44 header bytes and 32,000 data bytes: keep the header and the first 16,000 of them.
  await writeFile(path, whole.subarray(0, 44 + 16000));
  await rejectsWithAudioInputError(
    decodeAudioFile(path),
    path,
    /only 16000 of the 32000 data bytes its header declares are in the file \(8000 of 16000 samples per channel, 0\.50 of 1\.00 s\); the file is truncated/,
  );
});

test('a stereo WAV cut in the middle of a frame is refused as truncated, counting whole frames', async () => {
  const path = join(dir, 'cut-mid-frame.wav');
  // Two whole stereo frames and three bytes of a third, while the header promises 100 frames.
  const data = new Uint8Array([...int16Bytes([1000, -1000, 2000, -2000]), 1, 2, 3]);
  await writeFile(path, handmadeWav({ formatCode: 1, channels: 2, rate: 16000, bitsPerSample: 16, data, declaredDataBytes: 400 }));
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /only 11 of the 400 data bytes .* \(2 of 100 samples per channel, 0\.00 of 0\.01 s\); the file is truncated/);
});

test('a WAV holding only its header, though it declares samples, is refused as truncated rather than empty', async () => {
  const path = join(dir, 'header-only.wav');
  await writeFile(path, handmadeWav({ formatCode: 1, channels: 1, rate: 8000, bitsPerSample: 16, data: new Uint8Array(0), declaredDataBytes: 16000 }));
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /only 0 of the 16000 data bytes .* \(0 of 8000 samples per channel, 0\.00 of 1\.00 s\); the file is truncated/);
});

for (const [writer, size] of [
  ['a writer that leaves the size 0', 0],
  ['sox writing to a pipe (0x7FFFF000)', 0x7ffff000],
  ['arecord writing to a pipe (0x80000000)', 0x80000000],
  ['a writer that leaves the size 0xFFFFFFFF', 0xffffffff],
] as const) {
  test(`a WAV from ${writer} is read to the end of the file, whole frames only`, async () => {
    const path = join(dir, `streamed-${size}.wav`);
    // Three stereo frames and one byte of a fourth: the recording stopped mid-frame.
    const data = new Uint8Array([...int16Bytes([100, -100, 200, -200, 300, -300]), 7]);
    await writeFile(path, handmadeWav({ formatCode: 1, channels: 2, rate: 16000, bitsPerSample: 16, data, declaredDataBytes: size }));
    const audio = await decodeAudioFile(path);
    assert.deepEqual(Array.from(audio.channels[0]), [100 / 32768, 200 / 32768, 300 / 32768]);
    assert.deepEqual(Array.from(audio.channels[1]), [-100 / 32768, -200 / 32768, -300 / 32768]);
  });
}

test('a WAV that sox streamed to a pipe decodes every sample it wrote', { skip: soxBinary === undefined && 'sox absent (apt-get install sox): skipping the streamed-WAV round trip' }, async () => {
  const bytes = execFileSync(soxBinary as string, ['-n', '-r', '16000', '-c', '1', '-b', '16', '-t', 'wav', '-', 'synth', '0.5', 'sine', '440'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const path = join(dir, 'sox-streamed.wav');
  await writeFile(path, bytes);
  const audio = await decodeAudioFile(path);
  assert.equal(audio.channels[0].length, 8000);
  assert.ok(Math.abs(zeroCrossingFrequency(audio.channels[0], 16000) - 440) < 2);
});

test('a data chunk followed by a metadata chunk decodes only the samples it declares', async () => {
  const path = join(dir, 'with-list.wav');
  const samples = int16Bytes([1000, 2000, 3000]);
  const list = Buffer.from('LIST\x04\x00\x00\x00INFO', 'latin1');
  const data = new Uint8Array([...samples, ...list]);
  await writeFile(path, handmadeWav({ formatCode: 1, channels: 1, rate: 16000, bitsPerSample: 16, data, declaredDataBytes: samples.length }));
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [1000 / 32768, 2000 / 32768, 3000 / 32768]);
});

test('an odd-sized 8-bit data chunk does not decode its RIFF pad byte as a sample', async () => {
  const path = join(dir, 'odd-8bit.wav');
  await writeFile(path, handmadeWav({ formatCode: 1, channels: 1, rate: 8000, bitsPerSample: 8, data: new Uint8Array([128, 192, 64, 0]), declaredDataBytes: 3 }));
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [0, 0.5, -0.5]);
});

test('an odd-sized data chunk that ends the file without its pad byte is whole, not truncated', async () => {
  const path = join(dir, 'odd-8bit-no-pad.wav');
  await writeFile(path, handmadeWav({ formatCode: 1, channels: 1, rate: 8000, bitsPerSample: 8, data: new Uint8Array([128, 192, 64]) }));
  const audio = await decodeAudioFile(path);
  assert.deepEqual(Array.from(audio.channels[0]), [0, 0.5, -0.5]);
});

test('a float WAV containing NaN or Infinity is refused as corrupt', async () => {
  const path = await writeWav(join(dir, 'nan.wav'), [new Float32Array([0.1, Number.NaN, 0.2, Number.POSITIVE_INFINITY])], 16000, '32f');
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /2 samples are NaN or infinite; the file is corrupt/);
});

test('a mu-law WAV is refused naming its format code', async () => {
  const path = join(dir, 'mulaw.wav');
  await writeFile(path, handmadeWav({ formatCode: 7, channels: 1, rate: 8000, bitsPerSample: 8, data: new Uint8Array(80) }));
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /unsupported WAV encoding: format code 7 \(0x0007, mu-law\)/);
});

test('an IMA ADPCM WAV is refused naming its format code', async () => {
  const path = join(dir, 'adpcm.wav');
  await writeFile(path, handmadeWav({ formatCode: 0x11, channels: 1, rate: 8000, bitsPerSample: 4, data: new Uint8Array(256) }));
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /format code 17 \(0x0011, IMA ADPCM\)/);
});

test('a WAV with a truncated header is refused', async () => {
  const path = join(dir, 'truncated-header.wav');
  const whole = handmadeWav({ formatCode: 1, channels: 1, rate: 16000, bitsPerSample: 16, data: int16Bytes([1, 2, 3]) });
  await writeFile(path, whole.subarray(0, 30));
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /truncated/);
});

test('a WAV cut inside its RIFF signature is refused as truncated', async () => {
  const path = join(dir, 'riff-only.wav');
  await writeFile(path, 'RIFF');
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /truncated header/);
});

test('a WAV with a header but no samples is refused', async () => {
  const path = join(dir, 'no-samples.wav');
  await writeFile(path, handmadeWav({ formatCode: 1, channels: 1, rate: 16000, bitsPerSample: 16, data: new Uint8Array(0) }));
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /contains no audio samples/);
});

test('a zero-length file is refused as empty', async () => {
  const path = join(dir, 'empty.wav');
  await writeFile(path, '');
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /empty \(0 bytes\)/);
});

test('a text file named .wav is refused as not a WAV, FLAC or Ogg Opus file', async () => {
  const path = join(dir, 'notes.wav');
  await writeFile(path, 'These are meeting notes, not audio.\n');
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /not a WAV, FLAC or Ogg Opus file/);
});

test('a missing path is refused naming the path', async () => {
  const path = join(dir, 'does-not-exist.wav');
  await rejectsWithAudioInputError(decodeAudioFile(path), path, /no such file/);
});

test('a directory is refused as not an audio file', async () => {
  await rejectsWithAudioInputError(decodeAudioFile(dir), dir, /is a directory/);
});

test('a WAV named .flac is still decoded as WAV', async () => {
  const path = await writeWav(join(dir, 'misnamed.flac'), [sine(440, 0.1, 16000)], 16000, '16');
  const audio = await decodeAudioFile(path);
  assert.equal(audio.channels[0].length, 1600);
});
