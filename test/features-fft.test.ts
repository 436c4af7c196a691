import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealFft } from '../src/features/fft.js';
import { seededRandom } from '../src/datasets/seeded-random.js';

const random = seededRandom;

function naiveDft(x: Float64Array): { re: Float64Array; im: Float64Array } {
  const n = x.length;
  const re = new Float64Array(n / 2 + 1);
  const im = new Float64Array(n / 2 + 1);
  for (let k = 0; k <= n / 2; k++) {
    for (let t = 0; t < n; t++) {
      re[k]! += x[t]! * Math.cos((2 * Math.PI * k * t) / n);
      im[k]! -= x[t]! * Math.sin((2 * Math.PI * k * t) / n);
    }
  }
  return { re, im };
}

for (const size of [4, 8, 16, 64, 512, 2048]) {
  test(`the ${size}-point real FFT equals the direct DFT on random input`, () => {
    const next = random(size);
    const x = new Float64Array(size).map(() => next() * 2 - 1);
    const fft = new RealFft(size);
    fft.forward(x);
    const expected = naiveDft(x);
    for (let k = 0; k <= size / 2; k++) {
      assert.ok(Math.abs(fft.re[k]! - expected.re[k]!) < 1e-9 * size, `re[${k}]`);
      assert.ok(Math.abs(fft.im[k]! - expected.im[k]!) < 1e-9 * size, `im[${k}]`);
    }
  });
}

test('the power spectrum of a bin-centred cosine is concentrated in that bin', () => {
  const size = 512;
  const x = new Float64Array(size).map((_, t) => Math.cos((2 * Math.PI * 20 * t) / size));
  const fft = new RealFft(size);
  fft.forward(x);
  const power = new Float64Array(size / 2 + 1);
  fft.powerSpectrum(power);
  assert.ok(Math.abs(power[20]! - (size / 2) ** 2) < 1e-6);
  for (let k = 0; k <= size / 2; k++) if (k !== 20) assert.ok(power[k]! < 1e-12, `bin ${k}`);
});

test('an FFT size that is not a power of two is refused', () => {
  assert.throws(() => new RealFft(500), /power of two/);
});

test('the fused power and amplitude spectrum equals forward followed by powerSpectrum', () => {
  const size = 256;
  const next = random(9);
  const x = new Float64Array(size).map(() => next() * 2 - 1);
  const fft = new RealFft(size);
  const fused = new Float64Array(size / 2 + 1);
  const amplitude = new Float64Array(size / 2 + 1);
  fft.forwardPower(x, fused, amplitude);
  fft.forward(x);
  const plain = new Float64Array(size / 2 + 1);
  fft.powerSpectrum(plain);
  for (let k = 0; k <= size / 2; k++) {
    assert.ok(Math.abs(fused[k]! - plain[k]!) <= 1e-12 * Math.max(1, plain[k]!), `power[${k}]`);
    assert.ok(Math.abs(amplitude[k]! - Math.sqrt(plain[k]!)) <= 1e-9, `amplitude[${k}]`);
  }
});
