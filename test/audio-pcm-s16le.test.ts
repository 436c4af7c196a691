import assert from 'node:assert/strict';
import { test } from 'node:test';
import { S16leDeinterleaver } from '../src/audio/pcm-s16le.js';
import { concat, s16leBytes } from './helpers/audio-fixtures.js';

test('interleaved stereo s16le is split into per-channel floats', () => {
  const deinterleaver = new S16leDeinterleaver(2);
  const [left, right] = deinterleaver.push(s16leBytes([new Float32Array([0.5, -1]), new Float32Array([-0.25, 0])]));
  assert.deepEqual(Array.from(left), [0.5, -1]);
  assert.deepEqual(Array.from(right), [-0.25, 0]);
});

test('chunks that split a sample or a frame at every possible byte decode the same as one chunk', () => {
  const left = new Float32Array([0.1, -0.2, 0.3, -0.4, 0.5]);
  const right = new Float32Array([-0.9, 0.8, -0.7, 0.6, -0.5]);
  const bytes = s16leBytes([left, right]);
  for (const chunkSize of [1, 3, 5, 7]) {
    const deinterleaver = new S16leDeinterleaver(2);
    const lefts: Float32Array[] = [];
    const rights: Float32Array[] = [];
    for (let at = 0; at < bytes.length; at += chunkSize) {
      const [l, r] = deinterleaver.push(bytes.subarray(at, at + chunkSize));
      lefts.push(l);
      rights.push(r);
    }
    assert.deepEqual(concat(lefts), new Float32Array([0.1, -0.2, 0.3, -0.4, 0.5].map((v) => Math.round(v * 32768) / 32768)), `chunk size ${chunkSize}`);
    assert.deepEqual(concat(rights), new Float32Array([-0.9, 0.8, -0.7, 0.6, -0.5].map((v) => Math.round(v * 32768) / 32768)), `chunk size ${chunkSize}`);
    assert.equal(deinterleaver.heldBytes, 0);
  }
});

test('an incomplete frame at the end is held, not decoded', () => {
  const deinterleaver = new S16leDeinterleaver(1);
  const [samples] = deinterleaver.push(new Uint8Array([0x00, 0x40, 0x01]));
  assert.deepEqual(Array.from(samples), [0.5]);
  assert.equal(deinterleaver.heldBytes, 1);
});
