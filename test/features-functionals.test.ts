import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FunctionalsPooler, functionalsSize } from '../src/features/functionals.js';
import { seededRandom } from '../src/datasets/seeded-random.js';

/** The definition, written plainly: sort for percentiles, sums for the rest. */
function reference(rows: Float32Array, frames: number, dim: number, pitch: number): number[] {
  const out: number[] = [];
  let voiced = 0;
  for (let d = 0; d < dim; d++) {
    let c: number[] = [];
    for (let f = 0; f < frames; f++) if (!(d === pitch && rows[f * dim + d] === 0)) c.push(rows[f * dim + d]!);
    if (d === pitch) voiced = c.length;
    if (c.length === 0) c = [0];
    const n = c.length;
    const mean = c.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(c.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    const sorted = [...c].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(n - 1, Math.floor(p * n))]!;
    let sxx = 0, sxy = 0, step = 0;
    for (let i = 0; i < n; i++) {
      sxx += (i - (n - 1) / 2) ** 2;
      sxy += (i - (n - 1) / 2) * (c[i]! - mean);
      if (i > 0) step += Math.abs(c[i]! - c[i - 1]!);
    }
    out.push(mean, std, q(0.1), q(0.5), q(0.9), sxx > 0 ? sxy / sxx : 0, n > 1 ? step / (n - 1) : 0);
  }
  out.push(pitch >= 0 ? voiced / frames : 0);
  return out;
}

test('functionals of known rows: mean, std, percentiles, slope, step per value, then the voiced share', () => {
  // Two values per frame: a ramp 0..9, and a pitch column voiced on frames 2..5 only.
  const frames = 10;
  const rows = new Float32Array(frames * 2);
  for (let f = 0; f < frames; f++) {
    rows[f * 2] = f;
    rows[f * 2 + 1] = f >= 2 && f <= 5 ? 100 + 10 * f : 0;
  }
  const pooler = new FunctionalsPooler(2, 1);
  const out = pooler.pool(rows, frames, new Float32Array(functionalsSize(2)));
  const ramp = Array.from(out.subarray(0, 7));
  assert.deepEqual(ramp.map((v) => +v.toFixed(4)), [4.5, +Math.sqrt(8.25).toFixed(4), 1, 5, 9, 1, 1]);
  // Unvoiced frames are skipped: F0 120, 130, 140, 150.
  const f0 = Array.from(out.subarray(7, 14));
  assert.deepEqual(f0.map((v) => +v.toFixed(4)), [135, +Math.sqrt(125).toFixed(4), 120, 140, 150, 10, 10]);
  assert.equal(out[14], Math.fround(0.4));
});

test('functionals match the plain definition on random windows, reusing one pooler across sizes', () => {
  const random = seededRandom(5);
  const dim = 6, pitch = 4;
  const pooler = new FunctionalsPooler(dim, pitch);
  for (const frames of [1, 2, 3, 17, 188, 600, 40]) {
    const rows = Float32Array.from({ length: frames * dim }, (_, i) => (i % dim === pitch && random() < 0.4 ? 0 : Math.round(random() * 20) - 10 + random()));
    const got = pooler.pool(rows, frames, new Float32Array(pooler.size));
    const want = reference(rows, frames, dim, pitch);
    want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) <= 1e-5 * Math.max(1, Math.abs(w)), `frames ${frames}, value ${i}: ${got[i]} vs ${w}`));
  }
});

test('ties and constant columns select the right percentile', () => {
  const pooler = new FunctionalsPooler(1, -1);
  const constant = pooler.pool(new Float32Array(50).fill(3), 50, new Float32Array(pooler.size));
  assert.deepEqual(Array.from(constant), [3, 0, 3, 3, 3, 0, 0, 0]);
  const rows = Float32Array.from([2, 2, 1, 1, 2, 1, 2, 2, 1, 2]);
  const out = pooler.pool(rows, rows.length, new Float32Array(pooler.size));
  assert.deepEqual([out[2], out[3], out[4]], [1, 2, 2]);
});

test('a window with no voiced frame gives zero pitch statistics and a voiced share of 0', () => {
  const pooler = new FunctionalsPooler(2, 1);
  const out = pooler.pool(Float32Array.from([1, 0, 2, 0, 3, 0]), 3, new Float32Array(pooler.size));
  assert.deepEqual(Array.from(out.subarray(7)), [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('pooling refuses empty windows and short buffers by name', () => {
  const pooler = new FunctionalsPooler(2, -1);
  assert.throws(() => pooler.pool(new Float32Array(0), 0, new Float32Array(pooler.size)), /no frames to pool/);
  assert.throws(() => pooler.pool(new Float32Array(3), 2, new Float32Array(pooler.size)), /need 4 values/);
  assert.throws(() => pooler.pool(new Float32Array(4), 2, new Float32Array(3)), /needs 15/);
  assert.throws(() => new FunctionalsPooler(2, 2), /outside a frame of 2/);
});
