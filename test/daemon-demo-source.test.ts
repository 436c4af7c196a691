import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemoSource } from '../src/daemon/open-audio-source.js';

test('demo sources share one synthesised voice, so hundreds of them start at once', async () => {
  const first = openDemoSource(2, 3, 16000, 100);
  const started = performance.now();
  const others = Array.from({ length: 200 }, () => openDemoSource(2, 3, 16000, 100));
  assert.ok(performance.now() - started < 1000, `200 more demo sources took ${Math.round(performance.now() - started)} ms to open`);
  const blockOf = async (source: typeof first) => {
    for await (const block of source.blocks()) return block[0]!;
    throw new Error('no block');
  };
  const [a, b] = await Promise.all([blockOf(first), blockOf(others[0]!)]);
  assert.equal(a.buffer, b.buffer, 'one copy of the voice');
  assert.equal(first.length, 5 * 16000);
  // Other lengths get their own voice.
  assert.equal(openDemoSource(1, 1, 16000, 100).length, 2 * 16000);
  await Promise.all([first, ...others].map((s) => s.close()));
});
