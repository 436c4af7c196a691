import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistogram } from '../src/telemetry/latency-histogram.js';

test('p50 and p99 are within the bucket width (8 %) of the true quantiles', () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i / 10); // 0.1 … 100 ms, uniform
  const p50 = h.quantile(0.5)!;
  const p99 = h.quantile(0.99)!;
  assert.ok(Math.abs(p50 - 50) / 50 < 0.08, `p50 ${p50}`);
  assert.ok(Math.abs(p99 - 99) / 99 < 0.08, `p99 ${p99}`);
});

test('an empty histogram has no quantiles', () => {
  assert.equal(new LatencyHistogram().quantile(0.5), null);
});

test('memory does not grow with the number of samples', () => {
  const h = new LatencyHistogram();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 1_000_000; i++) h.record((i % 977) * 0.013);
  assert.ok(process.memoryUsage().heapUsed - before < 1_000_000);
  assert.equal(h.recorded, 1_000_000);
});

test('decay lets recent latency dominate: after a slow spell and a few intervals of fast work, p99 is fast again', () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 100; i++) h.record(500);
  for (let interval = 0; interval < 6; interval++) {
    h.decay();
    for (let i = 0; i < 100; i++) h.record(2);
  }
  assert.ok(h.quantile(0.99)! < 5, `p99 ${h.quantile(0.99)}`);
});

test('negative, NaN and infinite samples are ignored', () => {
  const h = new LatencyHistogram();
  h.record(-1);
  h.record(Number.NaN);
  h.record(Number.POSITIVE_INFINITY);
  assert.equal(h.count, 0);
});
