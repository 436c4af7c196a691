import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Int8NeighbourSearch } from '../src/model/int8-neighbour-search.js';
import { chooseScale, quantiseInto } from '../src/model/int8.js';

test('the int8 search returns the k nearest references in order under L1 and L2', () => {
  const refs = Int8Array.from([0, 0, 10, 0, 0, 20, -5, -5, 100, 100]);
  const s = new Int8NeighbourSearch(refs, 2, 3);
  const l1 = s.search(Int8Array.from([1, 1]), 3, 'l1');
  assert.deepEqual(Array.from(l1.indices.subarray(0, l1.found)), [0, 1, 3]);
  assert.deepEqual(Array.from(l1.distances.subarray(0, l1.found)), [2, 10, 12]);
  const l2 = s.search(Int8Array.from([9, 0]), 2, 'l2');
  assert.deepEqual(Array.from(l2.indices.subarray(0, 2)), [1, 0]);
});

test('asking for more neighbours than references returns them all', () => {
  const s = new Int8NeighbourSearch(Int8Array.from([1, 2, 3]), 1, 10);
  assert.equal(s.search(Int8Array.from([0]), 10, 'l1').found, 3);
});

test('quantisation clamps to ±127 and the scale covers the bulk of the data', () => {
  const values = Float32Array.from({ length: 1000 }, (_, i) => (i - 500) / 100);
  const scale = chooseScale(values);
  const q = new Int8Array(values.length);
  quantiseInto(values, scale, q);
  assert.ok(Math.abs(q[999]! * scale - values[999]!) < scale);
  quantiseInto([1e6, -1e6], scale, q);
  assert.deepEqual([q[0], q[1]], [127, -127]);
});
