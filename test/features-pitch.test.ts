import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseSignal } from '../src/features/frame-analyser.js';
import { DEFAULT_FEATURE_CONFIG, frameVectorSize, type FeatureConfig } from '../src/features/feature-config.js';
import { seededRandom } from '../src/datasets/seeded-random.js';

const config: FeatureConfig = { ...DEFAULT_FEATURE_CONFIG, features: ['pitch'] };

function voice(f0: number, seconds = 0.5, rate = 16000): Float32Array {
  return Float32Array.from({ length: seconds * rate }, (_, i) => 0.3 * Math.sin((2 * Math.PI * f0 * i) / rate) + 0.15 * Math.sin((4 * Math.PI * f0 * i) / rate) + 0.1 * Math.sin((6 * Math.PI * f0 * i) / rate));
}

test('pitch is two columns: log2(F0 / 50 Hz) and periodicity', () => {
  assert.equal(frameVectorSize(config), 2);
});

test('a harmonic voice gets its F0 within 2% across the speech range, without octave errors', () => {
  for (const f0 of [70, 110, 180, 260, 380]) {
    const { data } = analyseSignal(voice(f0), config);
    const found = 50 * 2 ** data[2 * 5]!;
    assert.ok(Math.abs(found - f0) / f0 < 0.02, `${f0} Hz read as ${found.toFixed(1)} Hz`);
    assert.ok(data[2 * 5 + 1]! > 0.9, 'a periodic frame is voiced');
  }
});

test('noise is unvoiced: F0 column 0 and low periodicity', () => {
  const random = seededRandom(4);
  const { data } = analyseSignal(Float32Array.from({ length: 8000 }, () => random() - 0.5), config);
  assert.equal(data[2 * 5], 0);
  assert.ok(data[2 * 5 + 1]! < 0.5);
});

test('the default feature config does not include pitch, so existing bundles keep their layout', () => {
  assert.ok(!DEFAULT_FEATURE_CONFIG.features.includes('pitch'));
});

test('the wasm-simd and js autocorrelation kernels give the same pitch and periodicity', async () => {
  const { pitch, pitchScratch } = await import('../src/features/extractors/pitch.js');
  const random = seededRandom(12);
  const simd = pitchScratch(512, 'wasm-simd');
  const js = pitchScratch(512, 'js');
  const a = new Float64Array(2), b = new Float64Array(2);
  const frames = [voice(95).subarray(0, 512), voice(310).subarray(1000, 1512), Float32Array.from({ length: 512 }, () => random() - 0.5), new Float32Array(512)];
  for (let k = 0; k < 50; k++) frames.push(Float32Array.from({ length: 512 }, (_, i) => Math.sin(i / (3 + k / 7)) * 0.4 + (random() - 0.5) * 0.2));
  for (const frame of frames) {
    pitch(frame, 512, 16000, simd, a, 0);
    pitch(frame, 512, 16000, js, b, 0);
    assert.ok(Math.abs(a[0]! - b[0]!) < 1e-9 && Math.abs(a[1]! - b[1]!) < 1e-9, `simd ${a.join(', ')} vs js ${b.join(', ')}`);
  }
});
