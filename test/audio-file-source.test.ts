import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { AudioInputError } from '../src/audio/audio-source.js';
import { openFileSource } from '../src/audio/file-source.js';
import { amplitude, collect, concat, sine, tempDir, writeWav, zeroCrossingFrequency } from './helpers/audio-fixtures.js';

const dir = tempDir();

test('a 48 kHz stereo WAV is replayed as 16 kHz stereo blocks of 100 ms', async () => {
  const path = await writeWav(join(dir, 'stereo48k.wav'), [sine(1000, 1, 48000, 0.5), sine(2000, 1, 48000, 0.25)], 48000, '16');
  const source = await openFileSource(path);
  assert.equal(source.sampleRate, 16000);
  assert.equal(source.channelCount, 2);
  assert.equal(source.description, path);
  const blocks = await collect(source.blocks());
  assert.equal(blocks.length, 10);
  for (const block of blocks) {
    assert.equal(block.length, 2);
    assert.equal(block[0].length, 1600);
    assert.equal(block[1].length, 1600);
  }
  const left = concat(blocks.map((block) => block[0]));
  assert.ok(Math.abs(zeroCrossingFrequency(left, 16000) - 1000) < 2);
  assert.ok(Math.abs(amplitude(concat(blocks.map((block) => block[1]))) - 0.25) < 0.0025);
});

test('the last block of a file is shorter when the file does not fill it', async () => {
  const path = await writeWav(join(dir, 'short.wav'), [sine(440, 0.25, 16000)], 16000, '16');
  const blocks = await collect((await openFileSource(path, { blockMs: 100 })).blocks());
  assert.deepEqual(blocks.map((block) => block[0].length), [1600, 1600, 800]);
});

test('a looping file source continues seamlessly from the start', async () => {
  const ramp = new Float32Array(1000).map((_, i) => i / 1000 - 0.5);
  const path = await writeWav(join(dir, 'ramp.wav'), [ramp], 16000, '32f');
  const source = await openFileSource(path, { blockMs: 40, loop: true });
  const blocks: Float32Array[] = [];
  for await (const block of source.blocks()) {
    blocks.push(block[0]);
    if (blocks.length === 3) break;
  }
  const played = concat(blocks);
  assert.equal(played.length, 1920);
  assert.equal(played[1000], ramp[0]);
  assert.equal(played[1919], ramp[919]);
});

test('a realtime file source paces blocks at wall-clock speed', async () => {
  const path = await writeWav(join(dir, 'pace.wav'), [sine(440, 0.3, 16000)], 16000, '16');
  const source = await openFileSource(path, { blockMs: 100, realtime: true });
  const started = performance.now();
  await collect(source.blocks());
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 280, `three 100 ms blocks took only ${elapsed.toFixed(0)} ms`);
});

test('closing a realtime file source ends its blocks promptly', async () => {
  const path = await writeWav(join(dir, 'long.wav'), [sine(440, 5, 16000)], 16000, '16');
  const source = await openFileSource(path, { blockMs: 1000, realtime: true, loop: true });
  const started = performance.now();
  setTimeout(() => void source.close(), 50);
  const blocks = await collect(source.blocks());
  assert.equal(blocks.length, 0);
  assert.ok(performance.now() - started < 900);
});

test('opening a missing file fails with an AudioInputError', async () => {
  await assert.rejects(openFileSource(join(dir, 'absent.wav')), AudioInputError);
});

test('a block length that rounds to no samples is refused', async () => {
  const path = await writeWav(join(dir, 'tiny-block.wav'), [sine(440, 0.1, 16000)], 16000, '16');
  await assert.rejects(openFileSource(path, { blockMs: 0.01 }), /no whole sample per block/);
});

test('a realtime file source that fell behind skips to the present and goes on from there', async () => {
  const ramp = new Float32Array(16000 * 4).map((_, i) => (i % 16000) / 16000 - 0.5 + Math.floor(i / 16000) * 0.01);
  const path = await writeWav(join(dir, 'behind.wav'), [ramp], 16000, '32f');
  const source = await openFileSource(path, { blockMs: 100, realtime: true });
  const blocks = source.blocks()[Symbol.asyncIterator]();
  await blocks.next();
  assert.equal(source.skipToPresent(), 0, 'on time: nothing to skip');
  // The consumer stalls for a second, as an overloaded daemon would.
  const stalledUntil = performance.now() + 1000;
  while (performance.now() < stalledUntil);
  const skipped = source.skipToPresent();
  assert.ok(skipped >= 16000 * 0.8 && skipped <= 16000 * 1.2 && skipped % 1600 === 0, `skipped ${skipped} samples: whole blocks, about the second it stalled`);
  const next = (await blocks.next()).value as Float32Array[];
  assert.equal(next[0]![0], ramp[1600 + skipped], 'the next block starts right after the skipped audio');
  await source.close();
});

test('a replay that is not real-time never skips', async () => {
  const path = await writeWav(join(dir, 'not-realtime.wav'), [sine(440, 1, 16000)], 16000, '16');
  const source = await openFileSource(path, { realtime: false });
  const blocks = source.blocks()[Symbol.asyncIterator]();
  await blocks.next();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(source.skipToPresent(), 0);
  await source.close();
});

test('blocks are views of the decoded audio, and sources replaying the same file share it', async () => {
  const path = await writeWav(join(dir, 'shared.wav'), [sine(440, 1, 16000), sine(880, 1, 16000)], 16000, '16');
  const [a, b] = await Promise.all([openFileSource(path), openFileSource(path)]);
  const [blockA] = await collect(a.blocks());
  const [blockB] = await collect(b.blocks());
  assert.equal(blockA![0]!.buffer, blockB![0]!.buffer, 'one decoded copy for both sources');
  const second = (await collect(a.blocks()))[1]!;
  assert.equal(second[0]!.buffer, blockA![0]!.buffer, 'no copy per block');
  await Promise.all([a.close(), b.close()]);

  // Once the file changes, the next source decodes it afresh.
  await writeWav(path, [sine(220, 2, 16000)], 16000, '16');
  const c = await openFileSource(path);
  assert.equal(c.channelCount, 1);
  assert.equal(c.length, 32000);
  await c.close();
});
