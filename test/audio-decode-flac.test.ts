import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AudioInputError } from '../src/audio/audio-source.js';
import { decodeAudioFile } from '../src/audio/decode-audio-file.js';
import { openFileSource } from '../src/audio/file-source.js';
import { findOnPath } from '../src/audio/microphone-source.js';
import { toMono } from '../src/audio/to-mono.js';
import { TONE_440HZ_16K_MONO_FLAC_BASE64 } from './fixtures/tone-440hz-flac.js';
import { amplitude, collect, concat, rms, sine, tempDir, writeWav, zeroCrossingFrequency } from './helpers/audio-fixtures.js';

const dir = tempDir();
const flacBinary = await findOnPath('flac');

async function writeFixtureFlac(name: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Buffer.from(TONE_440HZ_16K_MONO_FLAC_BASE64, 'base64'));
  return path;
}

test('the committed FLAC tone decodes to 16 kHz mono 440 Hz at half scale', async () => {
  const audio = await decodeAudioFile(await writeFixtureFlac('tone.flac'));
  assert.equal(audio.sampleRate, 16000);
  assert.equal(audio.channels.length, 1);
  assert.equal(audio.channels[0].length, 4000);
  assert.ok(Math.abs(zeroCrossingFrequency(audio.channels[0], 16000) - 440) < 1);
  assert.ok(Math.abs(amplitude(audio.channels[0]) - 0.5) < 0.01);
});

test('a FLAC file is recognised by its signature whatever its extension', async () => {
  const audio = await decodeAudioFile(await writeFixtureFlac('tone.wav'));
  assert.equal(audio.channels[0].length, 4000);
});

test('a FLAC file cut mid-stream is refused as truncated, saying how much its header declared', async () => {
  const whole = Buffer.from(TONE_440HZ_16K_MONO_FLAC_BASE64, 'base64');
  const path = join(dir, 'cut.flac');
  await writeFile(path, whole.subarray(0, Math.floor(whole.length * 0.75)));
  await assert.rejects(decodeAudioFile(path), /only \d+ of the 4000 samples its header declares could be decoded; the file is truncated or corrupt/);
});

test('a FLAC file with only its signature is refused as truncated', async () => {
  const path = join(dir, 'signature-only.flac');
  await writeFile(path, Buffer.from(TONE_440HZ_16K_MONO_FLAC_BASE64, 'base64').subarray(0, 30));
  await assert.rejects(decodeAudioFile(path), (error: unknown) => {
    assert.ok(error instanceof AudioInputError);
    assert.match(error.message, /no decodable audio \(truncated header/);
    return true;
  });
});

test('a 48 kHz stereo 24-bit FLAC made by the flac encoder decodes and resamples to 16 kHz', { skip: flacBinary === undefined && 'flac binary absent (apt-get install flac): skipping FLAC encode round trip' }, async () => {
  const wavPath = await writeWav(join(dir, 'stereo48k.wav'), [sine(1000, 0.5, 48000, 0.5), sine(2000, 0.5, 48000, 0.25)], 48000, '24');
  const flacPath = join(dir, 'stereo48k.flac');
  execFileSync(flacBinary as string, ['--silent', '--force', '-o', flacPath, wavPath], { stdio: 'pipe' });
  const decoded = await decodeAudioFile(flacPath);
  assert.equal(decoded.sampleRate, 48000);
  assert.equal(decoded.channels.length, 2);

  const source = await openFileSource(flacPath, { sampleRate: 16000 });
  const blocks = await collect(source.blocks());
  const left = concat(blocks.map((block) => block[0]));
  const right = concat(blocks.map((block) => block[1]));
  assert.equal(left.length, 8000);
  assert.ok(Math.abs(zeroCrossingFrequency(left, 16000) - 1000) < 1);
  assert.ok(Math.abs(zeroCrossingFrequency(right, 16000) - 2000) < 2);
  assert.ok(Math.abs(amplitude(right) - 0.25) < 0.0025);
});

test('a FLAC whose frames are corrupted is refused as corrupt', { skip: flacBinary === undefined && 'flac binary absent (apt-get install flac): skipping corrupt-frame test' }, async () => {
  const wavPath = await writeWav(join(dir, 'long.wav'), [sine(440, 2, 16000, 0.5)], 16000, '16');
  const flacPath = join(dir, 'corrupt.flac');
  execFileSync(flacBinary as string, ['--silent', '--force', '-o', flacPath, wavPath], { stdio: 'pipe' });
  const bytes = await readFile(flacPath);
  for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 64; i++) bytes[i] ^= 0xa5;
  await writeFile(flacPath, bytes);
  await assert.rejects(decodeAudioFile(flacPath), /truncated or corrupt|failed to decode/);
});

test('a FLAC whose last frame is its smallest and ends the file decodes every sample', { skip: flacBinary === undefined && 'flac binary absent (apt-get install flac): skipping last-frame test' }, async () => {
  // Three loud blocks then a short quiet tail: the tail becomes the stream's smallest
  // frame, the case in which the wasm decoder used to drop it without an error.
  const signal = concat([sine(997, (3 * 4096) / 16000, 16000, 0.6), new Float32Array(1000)]);
  const wavPath = await writeWav(join(dir, 'tail.wav'), [signal], 16000, '16');
  const flacPath = join(dir, 'tail.flac');
  execFileSync(flacBinary as string, ['--silent', '--force', '--blocksize=4096', '-o', flacPath, wavPath], { stdio: 'pipe' });
  const audio = await decodeAudioFile(flacPath);
  assert.equal(audio.channels[0].length, signal.length);
});

/** ../shared/data next to the repository, looked up from the working directory and from this file. */
function sharedDataDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(process.cwd(), '../shared/data'), resolve(here, '../../../shared/data'), resolve(here, '../../shared/data')];
  return candidates.find((candidate) => existsSync(join(candidate, 'cremad')));
}

const dataDir = sharedDataDir();

test('a real CREMA-D clip decodes to non-silent 16 kHz mono speech', { skip: dataDir === undefined && '../shared/data absent: skipping real-speech decode' }, async () => {
  const cremad = join(dataDir as string, 'cremad');
  const clip = readdirSync(cremad).find((name) => name.endsWith('.flac'));
  assert.ok(clip !== undefined, `no .flac file in ${cremad}`);
  const audio = await decodeAudioFile(join(cremad, clip));
  assert.equal(audio.sampleRate, 16000);
  assert.equal(audio.channels.length, 1);
  const mono = toMono(audio.channels);
  assert.ok(mono.length > 16000 * 0.5, 'a CREMA-D sentence lasts more than half a second');
  assert.ok(rms(mono, 0) > 0.001, `rms ${rms(mono, 0)} looks like silence`);
});
