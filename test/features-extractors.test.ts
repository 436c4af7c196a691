import { test } from 'node:test';
import assert from 'node:assert/strict';
import meydaModule from 'meyda';
import { DEFAULT_FEATURE_CONFIG, featureLayout, type FeatureConfig, type FeatureName } from '../src/features/feature-config.js';
import { FrameAnalyser } from '../src/features/frame-analyser.js';
import { RealFft } from '../src/features/fft.js';
import { analysisWindow } from '../src/features/window.js';
import { contrastBands, spectralContrast } from '../src/features/extractors/spectral-contrast.js';
import { TONNETZ_BASIS, tonnetz } from '../src/features/extractors/tonnetz.js';
import { seededRandom } from '../src/datasets/seeded-random.js';

// meyda's typings describe its ESM build, but under Node the package resolves to its
// CommonJS build, whose module.exports is the Meyda object itself.
type MeydaApi = (typeof meydaModule)['default'];
const Meyda = meydaModule as unknown as MeydaApi;

const config: FeatureConfig = DEFAULT_FEATURE_CONFIG;
const N = config.frameSize;
const SR = config.sampleRate;

const random = seededRandom;

/** A voiced-speech-like frame: 140 Hz harmonics with falling amplitude plus a little noise. */
function speechLikeFrame(seed = 1): Float32Array {
  const next = random(seed);
  const x = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    let v = 0;
    for (let h = 1; h <= 20; h++) v += Math.sin((2 * Math.PI * 140 * h * i) / SR + h) / h;
    x[i] = 0.2 * v + 0.02 * (next() * 2 - 1);
  }
  return x;
}

function tone(hz: number, amplitude = 0.5): Float32Array {
  return new Float32Array(N).map((_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / SR));
}

function whiteNoise(seed: number): Float32Array {
  const next = random(seed);
  return new Float32Array(N).map(() => next() * 2 - 1);
}

/** Our frame vector for one frame, split by feature name. */
function ours(frame: Float32Array, cfg: FeatureConfig = config): Record<FeatureName, number[]> {
  const analyser = new FrameAnalyser(cfg);
  const out = new Float32Array(analyser.dim);
  analyser.push(frame, () => analyser.extract(out));
  const result = {} as Record<FeatureName, number[]>;
  for (const f of featureLayout(cfg)) result[f.name] = Array.from(out.subarray(f.offset, f.offset + f.width));
  return result;
}

function meyda(frame: Float32Array) {
  Meyda.bufferSize = N;
  Meyda.sampleRate = SR;
  Meyda.melBands = config.melBands;
  Meyda.numberOfMFCCCoefficients = config.mfccCount;
  Meyda.windowingFunction = 'hanning';
  const r = Meyda.extract(['mfcc', 'melBands', 'chroma', 'rms', 'zcr', 'spectralCentroid', 'spectralRolloff', 'spectralFlatness', 'amplitudeSpectrum'], frame);
  assert.ok(r);
  return r as Required<NonNullable<typeof r>> & { melBands: number[] };
}

/** |a − e| ≤ rel·(|e| + max|expected|·1e-2): relative, with a floor for entries near 0. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= rel * (Math.abs(e) + 1e-2 * scale), `${what}[${i}]: ${a} vs meyda ${e}`);
  }
}

for (const [name, frame] of [
  ['a speech-like frame', speechLikeFrame()],
  ['white noise', whiteNoise(7)],
  ['a 1 kHz tone', tone(1000)],
] as const) {
  test(`MFCCs and log mel bands match meyda on ${name}`, () => {
    const o = ours(frame);
    const m = meyda(frame);
    assertClose(o.mfcc, m.mfcc, 1e-4, 'mfcc');
    assertClose(o.log_mel, m.melBands, 1e-4, 'log_mel');
  });

  test(`chroma matches meyda on ${name}`, () => {
    assertClose(ours(frame).chroma, meyda(frame).chroma, 1e-4, 'chroma');
  });

  test(`rms, zero-crossing rate, centroid and flatness match meyda on ${name}`, () => {
    const o = ours(frame);
    const m = meyda(frame);
    assertClose(o.rms, [m.rms], 1e-5, 'rms');
    assertClose([o.zcr[0]! * N], [m.zcr], 1e-5, 'zcr × frameSize');
    assertClose(o.centroid, [m.spectralCentroid], 1e-4, 'centroid');
    assertClose(o.flatness, [m.spectralFlatness], 1e-4, 'flatness');
  });

  test(`spectral rolloff matches meyda on ${name} within one bin`, () => {
    const binHz = SR / (2 * (N / 2 - 1));
    const o = ours(frame).rolloff[0]!;
    const m = meyda(frame).spectralRolloff;
    assert.ok(Math.abs(o - m) <= binHz * 1.0001, `${o} vs meyda ${m}`);
  });
}

test('the amplitude spectrum behind every feature equals meyda’s', () => {
  const frame = speechLikeFrame(3);
  const w = analysisWindow('hann', N);
  const x = new Float64Array(N).map((_, i) => frame[i]! * w[i]!);
  const fft = new RealFft(N);
  fft.forward(x);
  const power = new Float64Array(N / 2 + 1);
  fft.powerSpectrum(power);
  assertClose(Array.from(power.subarray(0, N / 2), Math.sqrt), meyda(frame).amplitudeSpectrum, 1e-5, 'amplitude');
});

test('a 440 Hz sine puts the chroma peak at A (index 9, C at 0)', () => {
  const c = ours(tone(440)).chroma;
  assert.equal(c.indexOf(Math.max(...c)), 9);
  assert.equal(Math.max(...c), 1);
});

test('silence gives finite values for every feature', () => {
  const o = ours(new Float32Array(N));
  for (const [name, values] of Object.entries(o)) for (const v of values) assert.ok(Number.isFinite(v), `${name}: ${v}`);
  assert.equal(o.rms[0], 0);
  assert.equal(o.zcr[0], 0);
  assert.equal(o.centroid[0], 0);
  assert.deepEqual(o.contrast, new Array(config.contrastBands).fill(0));
  assert.deepEqual(o.tonnetz, [0, 0, 0, 0, 0, 0]);
});

test('white noise has a spectral flatness between 0.75 and 0.95', () => {
  // The amplitude spectrum of white noise is Rayleigh distributed, whose geometric/arithmetic
  // mean ratio is e^(−γ/2)·2/√π ≈ 0.847 (a Hann window's correlation of neighbouring bins
  // hardly changes it); measured over several frames.
  let sum = 0;
  for (let seed = 1; seed <= 20; seed++) sum += ours(whiteNoise(seed)).flatness[0]!;
  const mean = sum / 20;
  assert.ok(mean > 0.75 && mean < 0.95, `mean flatness ${mean}`);
});

test('a pure tone has a low spectral flatness', () => {
  assert.ok(ours(tone(1000)).flatness[0]! < 0.1);
});

test('a bin-centred tone’s spectral centroid sits at its bin', () => {
  const bin = 40;
  const c = ours(tone((bin * SR) / N)).centroid[0]!;
  assert.ok(Math.abs(c - bin) < 0.5, `centroid ${c}`);
});

/** librosa's spectral_contrast for one magnitude column, with its sort (no top_db). */
function librosaContrast(magnitude: Float64Array, nBands: number): number[] {
  const fftSize = 2 * (magnitude.length - 1);
  const freq = Array.from(magnitude, (_, k) => (k * SR) / fftSize);
  const octa = [0];
  for (let i = 0; i <= nBands; i++) octa.push(200 * 2 ** i);
  const out: number[] = [];
  for (let k = 0; k <= nBands; k++) {
    const band = freq.map((f) => f >= octa[k]! && f <= octa[k + 1]!);
    const idx = band.flatMap((b, i) => (b ? [i] : []));
    if (k > 0) band[idx[0]! - 1] = true;
    if (k === nBands) for (let i = idx[idx.length - 1]! + 1; i < band.length; i++) band[i] = true;
    let sub = Array.from(magnitude).filter((_, i) => band[i]);
    if (k < nBands) sub = sub.slice(0, -1);
    const selected = band.filter(Boolean).length;
    const raw = 0.02 * selected;
    const rint = Math.abs(raw % 1) === 0.5 ? 2 * Math.round(raw / 2) : Math.round(raw);
    const q = Math.max(1, rint);
    sub.sort((a, b) => a - b);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const db = (x: number) => 10 * Math.log10(Math.max(1e-10, x));
    out.push(db(mean(sub.slice(-q))) - db(mean(sub.slice(0, q))));
  }
  return out;
}

for (const fftSize of [512, 2048]) {
  test(`spectral contrast equals librosa's sort-based definition at fftSize ${fftSize}`, () => {
    const next = random(fftSize);
    const bins = fftSize / 2 + 1;
    const bands = contrastBands(SR, fftSize, 7);
    const top = new Float64Array(bands.maxQuantileBins);
    const bottom = new Float64Array(bands.maxQuantileBins);
    for (let trial = 0; trial < 5; trial++) {
      const magnitude = new Float64Array(bins).map(() => next() * 10);
      const out = new Float64Array(7);
      spectralContrast(magnitude, bands, top, bottom, out, 0);
      const expected = librosaContrast(magnitude, 6);
      for (let b = 0; b < 7; b++) assert.ok(Math.abs(out[b]! - expected[b]!) < 1e-9, `band ${b}: ${out[b]} vs ${expected[b]}`);
    }
    if (fftSize === 2048) assert.ok(bands.maxQuantileBins > 1, 'the 2048 case exercises quantiles of more than one bin');
  });
}

test('spectral contrast bands that would reach Nyquist are refused with advice', () => {
  assert.throws(() => new FrameAnalyser({ ...config, contrastBands: 8 }), /Nyquist.*use fewer contrastBands/);
});

test('the tonnetz of a single pitch class lies on the three circles with radii 1, 1 and 0.5', () => {
  const chroma = new Float64Array(12);
  chroma[0] = 1;
  const out = new Float64Array(6);
  tonnetz(chroma, out, 0);
  // Pitch class C (index 0): the sin rows are sin(0)=0... written as cos(−π/2); the cos rows cos(0)·r.
  assertClose(Array.from(out), [0, 1, 0, 1, 0, 0.5], 1e-12, 'tonnetz of C');
  assert.equal(TONNETZ_BASIS.length, 72);
});

test('the tonnetz of A matches the Harte angles 7π/6, 3π/2 and 2π/3 per semitone', () => {
  const chroma = new Float64Array(12);
  chroma[9] = 0.5;
  const out = new Float64Array(6);
  tonnetz(chroma, out, 0);
  const a = (step: number) => 9 * step;
  const expected = [
    Math.sin(a((7 * Math.PI) / 6)),
    Math.cos(a((7 * Math.PI) / 6)),
    Math.sin(a((3 * Math.PI) / 2)),
    Math.cos(a((3 * Math.PI) / 2)),
    0.5 * Math.sin(a((2 * Math.PI) / 3)),
    0.5 * Math.cos(a((2 * Math.PI) / 3)),
  ];
  for (let p = 0; p < 6; p++) assert.ok(Math.abs(out[p]! - expected[p]!) < 1e-12, `row ${p}`);
});
