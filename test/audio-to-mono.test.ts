import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toMono } from '../src/audio/to-mono.js';

test('toMono averages the channels sample by sample', () => {
  const mono = toMono([new Float32Array([1, 0.5, -1]), new Float32Array([0, 0.5, -1])]);
  assert.deepEqual(Array.from(mono), [0.5, 0.5, -1]);
});

test('toMono of a single channel is a copy', () => {
  const only = new Float32Array([0.25, -0.25]);
  const mono = toMono([only]);
  assert.deepEqual(mono, only);
  assert.notEqual(mono, only);
});

test('toMono refuses channels of different lengths', () => {
  assert.throws(() => toMono([new Float32Array(3), new Float32Array(4)]), /differ in length/);
});
