import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../src/features/feature-config.js';
import { FunctionalsPooler, functionalsSize } from '../src/features/functionals.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { Normaliser } from '../src/features/normaliser.js';
import { CallerBaseline } from '../src/model/mlp/caller-baseline.js';
import { pitchColumnOf } from '../src/model/mlp/pooled-mlp-classifier.js';
import type { ClipWindows } from '../src/training/clip-windows.js';
import { functionalsOf } from '../src/training/train-mlp.js';
import { classifyClips } from '../src/training/evaluate-model.js';
import { scanDataset } from '../src/datasets/scan-dataset.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { writeSyntheticDataset } from './helpers/synthetic-dataset.js';
import type { Emotion } from '../src/model/emotions.js';
import { runSelfTest } from '../src/model/classifier.js';
import { classifierFromBundle, loadClassifier } from '../src/model/load-classifier.js';
import { MANIFEST_FILE } from '../src/model/bundle-manifest.js';
import { loadBundle, writeBundle } from '../src/model/model-bundle.js';
import { exportMlpBundle, MLP_WEIGHTS_FILE } from '../src/model/mlp/mlp-export.js';
import { selectTfBackend, tf } from '../src/model/tf-backend.js';

const LABELS: Emotion[] = ['neutral', 'sad', 'angry'];
/** 3 MFCCs and F0/periodicity per frame: 5 values, 36 functionals. */
const FEATURES: FeatureConfig = { ...DEFAULT_FEATURE_CONFIG, features: ['mfcc', 'pitch'], mfccCount: 3 };
const INPUT = functionalsSize(5);

function randomMember(hidden: number[], seed: number, input = INPUT): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dropout({ rate: 0.2, inputShape: [input] }));
  hidden.forEach((units, i) => model.add(tf.layers.dense({ units, activation: 'relu', kernelInitializer: tf.initializers.randomUniform({ minval: -0.4, maxval: 0.4, seed: seed + i }), biasInitializer: tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed + 10 + i }) })));
  model.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: seed + 30 }) }));
  return model;
}

function randomInputs(count: number, length: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length }, () => (random() * 2 - 1) * 2));
}

/** A bag of random members; with `callBaseline`, over the functionals and their caller-relative copy. */
async function exportedBag(hidden: number[], members: number, seed: number, callBaseline?: number): Promise<{ dir: string; models: tf.Sequential[] }> {
  await selectTfBackend(['wasm', 'cpu']);
  const input = callBaseline ? 2 * INPUT : INPUT;
  const models = Array.from({ length: members }, (_, m) => randomMember(hidden, seed + 100 * m, input));
  const { draft, files } = exportMlpBundle(models, {
    name: 'test-mlp',
    version: '0.0.1',
    labels: LABELS,
    features: FEATURES,
    normaliser: { mean: Array.from({ length: input }, (_, i) => (i % INPUT) / 10), std: Array.from({ length: input }, (_, i) => 1 + i / 20) },
    ...(callBaseline ? { callBaseline: { windows: callBaseline } } : {}),
    metrics: {},
    selfTestInputs: randomInputs(4, input, seed),
  });
  const dir = await mkdtemp(join(tmpdir(), 'ser-mlp-'));
  await writeBundle(dir, draft, files);
  return { dir, models };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('an MLP bag loads, passes the self-test TensorFlow.js computed on its int8 weights, and averages its members', async () => {
  const { dir, models } = await exportedBag([7, 5], 3, 1);
  try {
    const c = await loadClassifier(dir);
    assert.equal(c.manifest.kind, 'mlp');
    assert.match(c.backend, /^mlp-int8-(wasm-simd|js)$/);
    const out = new Float32Array(LABELS.length);
    for (const input of randomInputs(6, INPUT, 9)) {
      // The float bag, averaged: the int8 bundle stays within quantisation error of it.
      const float = tf.tidy(() => tf.addN(models.map((m) => m.predict(tf.tensor2d(input, [1, INPUT])) as tf.Tensor)).div(models.length).dataSync());
      const got = c.predictModelInput(input, out);
      assert.ok(maxDiff(got, float) < 0.03, `int8 vs float: ${maxDiff(got, float)}`);
      assert.ok(Math.abs(got.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'probabilities sum to 1');
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('predict on window rows equals predictModelInput on the functionals input, and allocates no new state between windows', async () => {
  const { dir } = await exportedBag([6], 2, 2);
  try {
    const c = await loadClassifier(dir);
    const random = seededRandom(4);
    for (const frames of [40, 3, 190]) {
      const rows = Float32Array.from({ length: frames * 5 }, (_, i) => (i % 5 === 3 && random() < 0.3 ? 0 : random() * 4 - 2));
      const a = c.predict(rows, frames, new Float32Array(LABELS.length));
      const b = c.predictModelInput(c.modelInput(rows, frames), new Float32Array(LABELS.length));
      assert.ok(maxDiff(a, b) < 1e-6, `${frames} frames: ${maxDiff(a, b)}`);
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('the wasm-simd first layers and the plain JS path agree, and each passes the self-test', async () => {
  const { dir } = await exportedBag([9, 5], 3, 7);
  try {
    const bundle = await loadBundle(dir);
    const [simd, js] = (['wasm-simd', 'js'] as const).map((kernel) => classifierFromBundle(bundle, { kernel }));
    assert.equal(simd!.backend, 'mlp-int8-wasm-simd');
    assert.equal(js!.backend, 'mlp-int8-js');
    for (const c of [simd!, js!]) assert.ok(runSelfTest(c).passed, `${c.backend} self-test`);
    for (const input of randomInputs(8, INPUT, 21)) {
      const a = simd!.predictModelInput(input, new Float32Array(LABELS.length));
      const b = js!.predictModelInput(input, new Float32Array(LABELS.length));
      assert.ok(maxDiff(a, b) < 1e-5, `simd vs js: ${maxDiff(a, b)}`);
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('an MLP bundle whose weights file was altered is refused', async () => {
  const { dir } = await exportedBag([4], 1, 3);
  try {
    await writeFile(join(dir, MLP_WEIGHTS_FILE), new Uint8Array(10));
    await assert.rejects(loadClassifier(dir), /weights\.i8/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('an MLP bundle whose input does not fit its features is refused at load with both numbers', async () => {
  const { dir } = await exportedBag([4], 1, 5);
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8'));
    manifest.features.mfccCount = 4;
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
    await assert.rejects(loadClassifier(dir), /mlp\.inputDim is 36, expected 7 × 6 \+ 1 = 43/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a bundle pooled with other statistics is refused rather than misread', async () => {
  const { dir } = await exportedBag([4], 1, 6);
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8'));
    manifest.mlp.pooling.statistics = ['mean', 'std', 'p10', 'p50', 'p90', 'slope', 'kurtosis'];
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
    await assert.rejects(loadClassifier(dir), /mlp\.pooling\.statistics/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('members of different shapes, or a head of the wrong width, cannot be exported', async () => {
  await selectTfBackend(['wasm', 'cpu']);
  const base = { name: 'x', version: '0.0.1', labels: LABELS, features: FEATURES, normaliser: { mean: new Array(INPUT).fill(0), std: new Array(INPUT).fill(1) }, metrics: {}, selfTestInputs: [] };
  assert.throws(() => exportMlpBundle([randomMember([4], 1), randomMember([5], 2)], base), /member 1 is .* a bag's members share one architecture/);
  assert.throws(() => exportMlpBundle([randomMember([4], 1)], { ...base, labels: ['neutral', 'angry'] }), /2 labels/);
  const tanh = tf.sequential();
  tanh.add(tf.layers.dense({ units: 4, activation: 'tanh', inputShape: [INPUT] }));
  tanh.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax' }));
  assert.throws(() => exportMlpBundle([tanh], base), /activation tanh, expected relu/);
});

/** Window rows of `frames` frames of 5 values, pitch column zero now and then (unvoiced). */
function windowRows(frames: number, random: () => number): Float32Array {
  return Float32Array.from({ length: frames * 5 }, (_, i) => (i % 5 === 3 && random() < 0.3 ? 0 : random() * 4 - 2));
}

test('with a caller baseline, each window of a call is judged beside its difference from the mean of the call\'s first windows', async () => {
  const { dir } = await exportedBag([6], 2, 5, 2);
  try {
    const c = await loadClassifier(dir);
    assert.equal(c.manifest.mlp?.callBaseline?.windows, 2);
    assert.equal(c.manifest.mlp?.inputDim, 2 * INPUT);
    assert.ok(runSelfTest(c).passed, 'self-test on the doubled input');
    const normaliser = Normaliser.fromJSON(c.manifest.normaliser!, 'test');
    const pooler = new FunctionalsPooler(5, pitchColumnOf(FEATURES));
    const random = seededRandom(12);
    const windows = [50, 80, 60, 70].map((frames) => ({ frames, rows: windowRows(frames, random) }));
    const f = windows.map((w) => pooler.pool(w.rows, w.frames, new Float32Array(INPUT)));
    /** The model input by hand: [functionals, functionals − baseline], standardised. */
    const expected = (k: number, baseline: Float32Array | null) => {
      const x = new Float32Array(2 * INPUT);
      x.set(f[k]!);
      if (baseline) for (let i = 0; i < INPUT; i++) x[INPUT + i] = f[k]![i]! - baseline[i]!;
      normaliser.apply(x);
      return c.predictModelInput(x, new Float32Array(LABELS.length));
    };
    const mean = (a: Float32Array, b: Float32Array) => a.map((v, i) => (v + b[i]!) / 2);
    const call = c.newCallContext();
    assert.ok(call !== null);
    const got = windows.map((w) => Array.from(c.predict(w.rows, w.frames, new Float32Array(LABELS.length), call)));
    // The first window has nothing before it; the second is relative to the first; the
    // third and fourth to the first two (the baseline is full and does not take the third in).
    const want = [expected(0, null), expected(1, f[0]!), expected(2, mean(f[0]!, f[1]!)), expected(3, mean(f[0]!, f[1]!))];
    got.forEach((p, k) => assert.ok(maxDiff(p, want[k]!) < 1e-5, `window ${k}: ${maxDiff(p, want[k]!)}`));
    // Without a call, a window is judged as the first of one: the model input with a zero relative part.
    const alone = c.predict(windows[3]!.rows, windows[3]!.frames, new Float32Array(LABELS.length));
    assert.ok(maxDiff(alone, expected(3, null)) < 1e-5);
    assert.ok(maxDiff(alone, c.predictModelInput(c.modelInput(windows[3]!.rows, windows[3]!.frames), new Float32Array(LABELS.length))) < 1e-6);
    assert.ok(maxDiff(got[3]!, alone) > 1e-4, 'the baseline changes the verdict');
    // A window of NaN features (a broken frame) leaves the call's baseline as it was.
    const broken = c.newCallContext();
    c.predict(windows[0]!.rows, windows[0]!.frames, new Float32Array(LABELS.length), broken);
    c.predict(new Float32Array(windows[1]!.rows.length).fill(Number.NaN), windows[1]!.frames, new Float32Array(LABELS.length), broken);
    c.predict(windows[1]!.rows, windows[1]!.frames, new Float32Array(LABELS.length), broken);
    const after = c.predict(windows[2]!.rows, windows[2]!.frames, new Float32Array(LABELS.length), broken);
    assert.ok(maxDiff(after, want[2]!) < 1e-5, 'the baseline is the two good windows, as without the broken one');
    // Another caller starts afresh.
    const next = c.newCallContext();
    assert.ok(maxDiff(c.predict(windows[3]!.rows, windows[3]!.frames, new Float32Array(LABELS.length), next), alone) < 1e-6);
    c.dispose();
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("a call context is the model's own: another bag's is refused, and a bag without a baseline keeps none", async () => {
  const [withBaseline, other, plain] = [await exportedBag([6], 1, 6, 3), await exportedBag([6], 1, 7, 2), await exportedBag([6], 1, 8)];
  try {
    const [a, b, p] = [await loadClassifier(withBaseline.dir), await loadClassifier(other.dir), await loadClassifier(plain.dir)];
    assert.equal(p.newCallContext(), null);
    const rows = windowRows(40, seededRandom(3));
    assert.throws(() => a.predict(rows, 40, new Float32Array(LABELS.length), b.newCallContext()), /call context .* made by model test-mlp, not by this one/);
    assert.throws(() => a.predict(rows, 40, new Float32Array(LABELS.length), { model: 'elsewhere' }), /made by model elsewhere/);
    // The same bundle loaded twice is two models: a context stays with the one that made it.
    const twin = await loadClassifier(withBaseline.dir);
    assert.throws(() => twin.predict(rows, 40, new Float32Array(LABELS.length), a.newCallContext()), /not by this one/);
    [a, b, p, twin].forEach((c) => c.dispose());
  } finally {
    for (const d of [withBaseline, other, plain]) await rm(d.dir, { recursive: true });
  }
});

test('a caller-baseline bag whose input is the functionals alone is refused at load with both numbers', async () => {
  const { dir } = await exportedBag([6], 1, 9);
  try {
    const path = join(dir, MANIFEST_FILE);
    const manifest = JSON.parse(await readFile(path, 'utf8')) as { mlp: Record<string, unknown> };
    manifest.mlp['callBaseline'] = { windows: 3 };
    await writeFile(path, JSON.stringify(manifest));
    await assert.rejects(loadBundle(dir), new RegExp(`mlp\\.inputDim is ${INPUT}, expected 2 × \\(7 × 5 \\+ 1\\) = ${2 * INPUT} .*relative to the caller baseline`));
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a caller baseline is the mean of its first windows, never grows past them, starts at zero and skips a non-finite window', () => {
  const b = new CallerBaseline(null, 'm', 3, 2);
  const out = new Float32Array(5).fill(9);
  b.relativeInto([1, 2, 3], out, 1);
  assert.deepEqual(Array.from(out), [9, 0, 0, 0, 9]);
  b.observe([1, 2, 3]);
  b.observe([4, Number.NaN, 0]);
  assert.equal(b.count, 1, 'a window with NaN is not taken in');
  b.observe([3, 2, 1]);
  b.observe([100, 100, 100]);
  assert.equal(b.count, 2);
  b.relativeInto([5, 1, 0], out, 0);
  assert.deepEqual(Array.from(out.subarray(0, 3)), [3, -1, -2]);
  assert.throws(() => new CallerBaseline(null, 'm', 3, 0), /at least 1 window/);
});

test('training lays out a window within a call exactly as the classifier does: the same model input, the same verdict', async () => {
  const { dir } = await exportedBag([6], 2, 11, 2);
  try {
    const c = await loadClassifier(dir);
    const random = seededRandom(31);
    const [first, second, judged] = [55, 70, 64].map((frames) => ({ frames, rows: windowRows(frames, random) }));
    const pooler = new FunctionalsPooler(5, pitchColumnOf(FEATURES));
    // Training's row for the judged window, with a baseline of the two windows before it…
    const baseline = new CallerBaseline(null, 'training', pooler.size, 2);
    for (const w of [first!, second!]) baseline.observe(pooler.pool(w.rows, w.frames, new Float32Array(pooler.size)));
    const item: ClipWindows = { clip: { path: 'a.wav', label: 'sad', speaker: 's', corpus: 'csv' }, windows: [judged!.rows], dim: 5 };
    const rows = functionalsOf([item], LABELS, pooler, [baseline]);
    Normaliser.fromJSON(c.manifest.normaliser!, 'test').apply(rows.x);
    const trained = c.predictModelInput(rows.x, new Float32Array(LABELS.length));
    // …and the classifier, in a call whose first two windows were those.
    const call = c.newCallContext();
    for (const w of [first!, second!]) c.predict(w.rows, w.frames, new Float32Array(LABELS.length), call);
    const live = c.predict(judged!.rows, judged!.frames, new Float32Array(LABELS.length), call);
    assert.ok(maxDiff(trained, live) < 1e-6, `training vs live: ${maxDiff(trained, live)}`);
    // Without a baseline, training's row has a zero relative part, as the first window of a call.
    const cold = functionalsOf([item], LABELS, pooler, [new CallerBaseline(null, 'training', pooler.size, 2)]);
    Normaliser.fromJSON(c.manifest.normaliser!, 'test').apply(cold.x);
    assert.ok(maxDiff(c.predictModelInput(cold.x, new Float32Array(LABELS.length)), c.predict(judged!.rows, judged!.frames, new Float32Array(LABELS.length), c.newCallContext())) < 1e-6);
    c.dispose();
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("eval's call warm-up: each clip is judged after other clips of its speaker, in the clips' order, whatever order they were listed in", async () => {
  const root = tempDir('ser-mlp-warmup-');
  const [withBaseline, plain] = [await exportedBag([6], 2, 13, 2), await exportedBag([6], 2, 14)];
  try {
    const clips = await scanDataset(await writeSyntheticDataset(join(root, 'data'), { speakers: 3, perClass: 2, seconds: 1.5 }));
    const c = await loadClassifier(withBaseline.dir);
    const judge = (list: typeof clips, callWarmup: number, model = c) => classifyClips(list, model, { urgent: ['angry', 'sad'], callWarmup, seed: 1 });
    const [cold, warm] = [await judge(clips, 0), await judge(clips, 2)];
    assert.deepEqual(warm.map((o) => [o.truth, o.speaker]), clips.map((k) => [k.label, k.speaker]), 'outcomes in the clips\' order');
    const changed = warm.filter((o, i) => JSON.stringify(o.probabilities) !== JSON.stringify(cold[i]!.probabilities)).length;
    assert.ok(changed > clips.length / 2, `the warm-up changed ${changed} of ${clips.length} verdicts`);
    const reversed = await judge([...clips].reverse(), 2);
    assert.deepEqual(reversed.reverse(), warm, 'a clip\'s warm-up does not depend on the listing order');
    // A model without a baseline judges every clip on its own either way.
    const p = await loadClassifier(plain.dir);
    assert.deepEqual(await judge(clips, 2, p), await judge(clips, 0, p));
    [c, p].forEach((m) => m.dispose());
  } finally {
    for (const d of [withBaseline.dir, plain.dir, root]) await rm(d, { recursive: true, force: true });
  }
});
