import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { AudioInputError } from '../src/audio/audio-source.js';
import { openStdinSource } from '../src/audio/stdin-source.js';
import { amplitude, collect, concat, s16leBytes, sine, zeroCrossingFrequency } from './helpers/audio-fixtures.js';

/** Sends `bytes` in pieces of the given sizes (cycled), so samples and frames are split. */
function chunkedStream(bytes: Buffer, sizes: number[]): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length];
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return Readable.from(chunks);
}

test('stdin PCM at 48 kHz stereo is yielded as 16 kHz stereo blocks', async () => {
  const bytes = s16leBytes([sine(1000, 0.5, 48000, 0.5), sine(1500, 0.5, 48000, 0.25)]);
  const source = openStdinSource({ input: chunkedStream(bytes, [4096]), inputRate: 48000, channels: 2 });
  assert.equal(source.channelCount, 2);
  assert.equal(source.sampleRate, 16000);
  const blocks = await collect(source.blocks());
  assert.deepEqual(blocks.map((block) => block[0].length), [1600, 1600, 1600, 1600, 1600]);
  const left = concat(blocks.map((block) => block[0]));
  assert.ok(Math.abs(zeroCrossingFrequency(left, 16000) - 1000) < 2);
  assert.ok(Math.abs(amplitude(concat(blocks.map((block) => block[1]))) - 0.25) < 0.0025);
});

test('stdin chunks with odd byte counts give the same blocks as whole frames', async () => {
  const bytes = s16leBytes([sine(300, 0.3, 8000, 0.5), sine(600, 0.3, 8000, 0.5)]);
  const even = await collect(openStdinSource({ input: chunkedStream(bytes, [4000]), inputRate: 8000, channels: 2 }).blocks());
  const odd = await collect(openStdinSource({ input: chunkedStream(bytes, [1, 3, 7, 501]), inputRate: 8000, channels: 2 }).blocks());
  assert.deepEqual(odd, even);
});

test('stdin PCM already at the output rate passes through unchanged', async () => {
  const signal = new Float32Array(1600).map((_, i) => Math.round(((i % 100) / 100 - 0.5) * 32768) / 32768);
  const blocks = await collect(openStdinSource({ input: chunkedStream(s16leBytes([signal]), [333]), inputRate: 16000 }).blocks());
  assert.deepEqual(concat(blocks.map((block) => block[0])), signal);
});

test('closing a stdin source ends its blocks even while input is idle', async () => {
  const input = new PassThrough();
  const source = openStdinSource({ input, inputRate: 16000 });
  input.write(s16leBytes([new Float32Array(1600)]));
  setTimeout(() => void source.close(), 50);
  const blocks = await collect(source.blocks());
  assert.equal(blocks.length, 1);
});

test('an invalid input rate is refused before reading', () => {
  assert.throws(() => openStdinSource({ input: Readable.from([]), inputRate: 0 }), (error: unknown) => error instanceof AudioInputError && /input rate 0 Hz/.test(error.message));
});
