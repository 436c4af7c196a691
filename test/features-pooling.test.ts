import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poolMeanStd } from '../src/features/pooling.js';
import { sequenceLength, toSequence } from '../src/features/sequence.js';
import { Normaliser, STD_FLOOR, fitNormaliser } from '../src/features/normaliser.js';

test('pooling known rows gives their per-dimension mean then population standard deviation', () => {
  const rows = Float32Array.from([1, 10, 3, 10, 5, 10, 7, 10]);
  const out = new Float32Array(4);
  poolMeanStd(rows, 4, 2, out);
  assert.deepEqual(Array.from(out), [4, 10, Math.sqrt(5), 0].map(Math.fround));
});

test('pooling writes at the given offset and leaves the rest of the output alone', () => {
  const out = new Float32Array(6).fill(-1);
  poolMeanStd(Float32Array.from([2, 4]), 1, 2, out, 1);
  assert.deepEqual(Array.from(out), [-1, 2, 4, 0, 0, -1]);
});

test('pooling zero frames is refused with a clear error', () => {
  assert.throws(() => poolMeanStd(new Float32Array(0), 0, 2, new Float32Array(4)), /no frames to pool/);
});

test('a sequence averages every stride frames into one step, the last step over the remainder', () => {
  const rows = Float32Array.from([0, 1, 2, 3, 4, 5, 6]); // 7 frames of 1 dimension
  assert.equal(sequenceLength(7, 3), 3);
  const out = new Float32Array(3);
  assert.equal(toSequence(rows, 7, 1, 3, out), 3);
  assert.deepEqual(Array.from(out), [1, 4, 6]);
});

test('a sequence with stride 1 is the frames themselves', () => {
  const rows = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const out = new Float32Array(6);
  assert.equal(toSequence(rows, 3, 2, 1, out), 3);
  assert.deepEqual(out, rows);
});

test('a fitted normaliser maps its training rows to zero mean and unit standard deviation', () => {
  const rows = Float32Array.from([1, 100, 2, 300, 3, 500, 6, 700]);
  const normaliser = fitNormaliser(rows, 2);
  const copy = rows.slice();
  normaliser.apply(copy);
  const pooled = new Float32Array(4);
  poolMeanStd(copy, 4, 2, pooled);
  for (const [i, want] of [0, 0, 1, 1].entries()) assert.ok(Math.abs(pooled[i]! - want) < 1e-6, `${i}: ${pooled[i]}`);
});

test('a dimension that never varied in training is centred but not amplified', () => {
  const normaliser = fitNormaliser(Float32Array.from([5, 5, 5]), 1);
  assert.ok(normaliser.std[0]! < STD_FLOOR);
  const x = Float32Array.from([5.5]);
  normaliser.apply(x);
  assert.equal(x[0], 0.5);
});

test('a normaliser survives a round trip through JSON', () => {
  const normaliser = new Normaliser([1, -2.5], [0.5, 3]);
  const again = Normaliser.fromJSON(JSON.parse(JSON.stringify(normaliser)), 'manifest.json');
  const a = Float32Array.from([2, 4]);
  const b = a.slice();
  normaliser.apply(a);
  again.apply(b);
  assert.deepEqual(a, b);
  assert.deepEqual(again.toJSON(), { mean: [1, -2.5], std: [0.5, 3] });
});

test('a malformed normaliser in a manifest is refused, naming the file and key', () => {
  assert.throws(() => Normaliser.fromJSON({ mean: [0, 1], std: [1] }, 'bundle/manifest.json'), /bundle\/manifest\.json: normaliser std mean and std differ in length/);
  assert.throws(() => Normaliser.fromJSON({ mean: [0], std: [-1] }, 'm.json'), /m\.json: normaliser std\.0/);
});
