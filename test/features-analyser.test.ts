import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FEATURE_CONFIG, featureLayout, frameVectorSize, type FeatureConfig } from '../src/features/feature-config.js';
import { FrameAnalyser, analyseSignal, fillDeltas, frameCount } from '../src/features/frame-analyser.js';
import { htkDeltas } from '../src/features/extractors/deltas.js';
import { seededRandom } from '../src/datasets/seeded-random.js';

const config: FeatureConfig = DEFAULT_FEATURE_CONFIG;

const random = seededRandom;

/** Two seconds of a vibrato tone interrupted by noise bursts. */
function testSignal(): Float32Array {
  const next = random(42);
  const sr = config.sampleRate;
  const x = new Float32Array(2 * sr);
  let phase = 0;
  for (let i = 0; i < x.length; i++) {
    phase += (2 * Math.PI * (150 + 10 * Math.sin((2 * Math.PI * 5 * i) / sr))) / sr;
    const burst = Math.floor(i / 3000) % 3 === 2 ? 0.3 * (next() * 2 - 1) : 0;
    x[i] = 0.3 * Math.sin(phase) + 0.1 * Math.sin(3 * phase) + burst;
  }
  return x;
}

test('the analyser gives identical frame vectors whether the signal arrives in one block or in ragged blocks', () => {
  const signal = testSignal();
  const whole = analyseSignal(signal, config);

  const analyser = new FrameAnalyser(config);
  const data = new Float32Array(whole.frames * analyser.dim);
  const next = random(5);
  let seen = 0;
  for (let at = 0; at < signal.length; ) {
    const size = Math.min(signal.length - at, Math.floor(next() * 1500));
    analyser.push(signal.subarray(at, at + size), (_frame, index) => {
      assert.equal(index, seen++);
      analyser.extract(data, index * analyser.dim);
    });
    at += size;
  }
  fillDeltas(data, seen, config);
  assert.equal(seen, whole.frames);
  assert.deepEqual(data, whole.data);
});

test('frames start every hop from the first sample, and the tail after the last full frame is not a frame', () => {
  assert.equal(frameCount(511, config), 0);
  assert.equal(frameCount(512, config), 1);
  assert.equal(frameCount(767, config), 1);
  assert.equal(frameCount(768, config), 2);
  const analyser = new FrameAnalyser(config);
  const firstSamples: number[] = [];
  const ramp = new Float32Array(1024).map((_, i) => i);
  analyser.push(ramp, (frame) => firstSamples.push(frame[0]!));
  assert.deepEqual(firstSamples, [0, 256, 512]);
});

test('a frame completed by the end of a block stays available to extract after push returns', () => {
  const analyser = new FrameAnalyser(config);
  const inside = new Float32Array(analyser.dim);
  const after = new Float32Array(analyser.dim);
  analyser.push(testSignal().subarray(0, 768), () => analyser.extract(inside));
  assert.ok(analyser.hasFrame);
  analyser.extract(after);
  assert.deepEqual(after, inside);
  analyser.push(new Float32Array(1), () => assert.fail('one sample completes no frame'));
  assert.equal(analyser.hasFrame, false);
});

test('extract from a kept copy of an earlier frame gives that frame\'s vector', () => {
  const withPitch: FeatureConfig = { ...config, features: [...config.features, 'pitch'] };
  const analyser = new FrameAnalyser(withPitch);
  const direct: Float32Array[] = [];
  const copies: Float32Array[] = [];
  analyser.push(testSignal(), (frame) => {
    const row = new Float32Array(analyser.dim);
    analyser.extract(row);
    direct.push(row);
    copies.push(frame.slice());
  });
  // Later, with other frames in the analyser's buffer, as a backdated utterance onset is.
  copies.forEach((copy, i) => {
    const row = new Float32Array(analyser.dim);
    analyser.extract(row, 0, copy);
    assert.deepEqual(row, direct[i], `frame ${i}`);
  });
});

test('a kept copy carries the pitch the detector estimated: extract from it reuses that and gives the same vector', () => {
  const withPitch: FeatureConfig = { ...config, features: ['rms', 'pitch'] };
  const analyser = new FrameAnalyser(withPitch);
  const pitchColumn = featureLayout(withPitch).find((f) => f.name === 'pitch')!.offset;
  const direct: Float32Array[] = [];
  const kept: { copy: Float32Array; pitch: Float64Array; asked: boolean }[] = [];
  let frameNo = 0;
  analyser.push(testSignal(), (frame) => {
    const row = new Float32Array(analyser.dim);
    // The detector asks for every other frame's pitch only, as it skips frames at the floor.
    const asked = frameNo++ % 2 === 0;
    if (asked) analyser.currentPitch();
    const pitch = new Float64Array(2);
    analyser.copyEstimatedPitch(pitch);
    assert.equal(Number.isNaN(pitch[0]!), !asked, 'NaN exactly when the pitch was not estimated');
    analyser.extract(row);
    direct.push(row);
    kept.push({ copy: frame.slice(), pitch, asked });
  });
  kept.forEach(({ copy, pitch }, i) => {
    const row = new Float32Array(analyser.dim);
    analyser.extract(row, 0, copy, pitch);
    assert.deepEqual(row, direct[i], `frame ${i}`);
  });
  // The carried values are what extract writes: a wrong one shows (no recomputation behind it).
  const { copy, pitch } = kept.find((k) => k.asked && k.pitch[0]! > 0)!;
  const row = new Float32Array(analyser.dim);
  analyser.extract(row, 0, copy, Float64Array.of(1.5, 0.25));
  assert.equal(row[pitchColumn], 1.5);
  assert.equal(row[pitchColumn + 1], 0.25);
  assert.ok(pitch[0]! > 0);
});

test('the pitch the voice-activity detector asks for is the pitch column extract writes', () => {
  const withPitch: FeatureConfig = { ...config, features: ['rms', 'pitch'] };
  const analyser = new FrameAnalyser(withPitch);
  const pitchColumn = featureLayout(withPitch).find((f) => f.name === 'pitch')!.offset;
  const row = new Float32Array(analyser.dim);
  let voiced = 0;
  analyser.push(testSignal(), () => {
    const asked = analyser.currentPitch();
    analyser.extract(row);
    assert.equal(Math.fround(asked), row[pitchColumn]);
    if (asked > 0) voiced++;
  });
  assert.ok(voiced > 20, `${voiced} voiced frames in a vibrato tone`);
  // Without pitch among the features the detector still gets the same estimate.
  const plain = new FrameAnalyser({ ...config, features: ['rms'] });
  const asked: number[] = [];
  plain.push(testSignal(), () => asked.push(plain.currentPitch()));
  const reference = new FrameAnalyser(withPitch);
  const columns: number[] = [];
  reference.push(testSignal(), () => {
    reference.extract(row);
    columns.push(row[pitchColumn]!);
  });
  assert.deepEqual(asked.map(Math.fround), columns);
});

test('extract before any frame is complete says so', () => {
  const analyser = new FrameAnalyser(config);
  analyser.push(new Float32Array(100), () => assert.fail('no frame yet'));
  assert.throws(() => analyser.extract(new Float32Array(analyser.dim)), /no completed frame/);
});

test('frame energy is 0 dBFS for a full-scale square wave, about −3 dB for a full-scale sine and −100 dB for silence', () => {
  const analyser = new FrameAnalyser(config);
  const levels: number[] = [];
  const square = new Float32Array(512).map((_, i) => (i % 32 < 16 ? 1 : -1));
  const sine = new Float32Array(512).map((_, i) => Math.sin((2 * Math.PI * i) / 32));
  analyser.push(square, () => levels.push(analyser.frameEnergyDb()));
  analyser.reset();
  analyser.push(sine, () => levels.push(analyser.frameEnergyDb()));
  analyser.reset();
  analyser.push(new Float32Array(512), () => levels.push(analyser.frameEnergyDb()));
  assert.ok(Math.abs(levels[0]!) < 1e-9);
  assert.ok(Math.abs(levels[1]! + 3.0103) < 1e-3);
  assert.equal(levels[2], -100);
});

test('a configuration with only time-domain features needs no spectrum and fills only its columns', () => {
  const small: FeatureConfig = { ...config, features: ['rms', 'zcr'] };
  const { frames, dim, data } = analyseSignal(testSignal(), small);
  assert.equal(dim, 2);
  assert.ok(frames > 0);
  for (const v of data) assert.ok(Number.isFinite(v));
});

test('the analyser refuses an invalid configuration once, at construction, naming the key', () => {
  assert.throws(() => new FrameAnalyser({ ...config, fftSize: 256 }), /FrameAnalyser: feature config fftSize must be ≥ frameSize/);
});

test('the deltas of a constant are 0', () => {
  const dim = 3;
  const frames = 10;
  const rows = new Float32Array(frames * dim);
  for (let t = 0; t < frames; t++) rows[t * dim] = 4.5;
  htkDeltas(rows, frames, dim, 0, 1, 1, 2);
  for (let t = 0; t < frames; t++) assert.equal(rows[t * dim + 1], 0);
});

test('the deltas of a linear ramp are its slope away from the edges', () => {
  const dim = 2;
  const frames = 12;
  const rows = new Float32Array(frames * dim);
  for (let t = 0; t < frames; t++) rows[t * dim] = 1 + 0.25 * t;
  for (const width of [1, 2, 3, 4]) {
    htkDeltas(rows, frames, dim, 0, 1, 1, width);
    for (let t = width; t < frames - width; t++) assert.ok(Math.abs(rows[t * dim + 1]! - 0.25) < 1e-6, `width ${width}, frame ${t}: ${rows[t * dim + 1]}`);
  }
});

test('whole-signal analysis fills the mfcc_delta columns from the mfcc columns', () => {
  const { frames, dim, data } = analyseSignal(testSignal(), config);
  const layout = featureLayout(config);
  const mfcc = layout.find((f) => f.name === 'mfcc')!;
  const delta = layout.find((f) => f.name === 'mfcc_delta')!;
  const copy = data.slice();
  htkDeltas(copy, frames, dim, mfcc.offset, delta.offset, delta.width, config.deltaWidth);
  assert.deepEqual(copy, data);
  let nonZero = 0;
  for (let t = 0; t < frames; t++) if (data[t * dim + delta.offset] !== 0) nonZero++;
  assert.ok(nonZero > frames / 2);
  assert.equal(dim, frameVectorSize(config));
});

/** Frame vectors of the test signal as `extract` writes them: mfcc_delta columns still 0. */
function rawFrames(analyser: FrameAnalyser): { rows: Float32Array; frames: number } {
  const signal = testSignal();
  const frames = frameCount(signal.length, analyser.config);
  const rows = new Float32Array(frames * analyser.dim);
  analyser.push(signal, (_frame, index) => analyser.extract(rows, index * analyser.dim));
  return { rows, frames };
}

test('the analyser fills a window\'s deltas exactly as fillDeltas does with its configuration', () => {
  const analyser = new FrameAnalyser(config);
  const { rows, frames } = rawFrames(analyser);
  const expected = rows.slice();
  fillDeltas(expected, frames, config);
  analyser.fillDeltas(rows, frames);
  assert.deepEqual(rows, expected);
});

test('the analyser leaves rows untouched when its configuration has no mfcc_delta', () => {
  const analyser = new FrameAnalyser({ ...config, features: ['mfcc', 'rms'] });
  const { rows, frames } = rawFrames(analyser);
  const before = rows.slice();
  analyser.fillDeltas(rows, frames);
  assert.deepEqual(rows, before);
});

test('the analyser refuses to fill deltas over rows shorter than the frames it is told of', () => {
  const analyser = new FrameAnalyser(config);
  assert.throws(() => analyser.fillDeltas(new Float32Array(analyser.dim), 2), /2 frames of \d+ need/);
});
