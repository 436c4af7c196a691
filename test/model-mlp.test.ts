import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../src/features/feature-config.js';
import { functionalsSize } from '../src/features/functionals.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
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

function randomMember(hidden: number[], seed: number): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dropout({ rate: 0.2, inputShape: [INPUT] }));
  hidden.forEach((units, i) => model.add(tf.layers.dense({ units, activation: 'relu', kernelInitializer: tf.initializers.randomUniform({ minval: -0.4, maxval: 0.4, seed: seed + i }), biasInitializer: tf.initializers.randomUniform({ minval: -0.2, maxval: 0.2, seed: seed + 10 + i }) })));
  model.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: seed + 30 }) }));
  return model;
}

function randomInputs(count: number, length: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length }, () => (random() * 2 - 1) * 2));
}

async function exportedBag(hidden: number[], members: number, seed: number): Promise<{ dir: string; models: tf.Sequential[] }> {
  await selectTfBackend(['wasm', 'cpu']);
  const models = Array.from({ length: members }, (_, m) => randomMember(hidden, seed + 100 * m));
  const { draft, files } = exportMlpBundle(models, {
    name: 'test-mlp',
    version: '0.0.1',
    labels: LABELS,
    features: FEATURES,
    normaliser: { mean: Array.from({ length: INPUT }, (_, i) => i / 10), std: Array.from({ length: INPUT }, (_, i) => 1 + i / 20) },
    metrics: {},
    selfTestInputs: randomInputs(4, INPUT, seed),
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
