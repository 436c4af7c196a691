import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { DEFAULT_FEATURE_CONFIG, frameVectorSize, type FeatureConfig } from '../src/features/feature-config.js';
import type { ManifestDraft } from '../src/model/bundle-manifest.js';
import type { Emotion } from '../src/model/emotions.js';
import { exportGruBundle } from '../src/model/gru/gru-export.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { BundleError, writeBundle } from '../src/model/model-bundle.js';
import { selectTfBackend, tf } from '../src/model/tf-backend.js';
import { buildKnnModel } from '../src/training/knn-trainer.js';

const LABELS: Emotion[] = ['neutral', 'sad', 'angry'];

/** Three values per frame: a KNN over it pools 6, a GRU over it takes 3 per step. */
const SMALL_FEATURES: FeatureConfig = { ...DEFAULT_FEATURE_CONFIG, features: ['rms', 'zcr', 'centroid'] };

/** A KNN bundle's contents over random pooled vectors of `dim` values, whatever the features say. */
function knnDraft(dim: number, features: FeatureConfig = SMALL_FEATURES): { draft: ManifestDraft; files: Record<string, Uint8Array> } {
  const random = seededRandom(dim);
  const count = 12;
  const vectors = Float32Array.from({ length: count * dim }, () => random() * 4 - 2);
  const labels = Uint8Array.from({ length: count }, (_, i) => i % LABELS.length);
  return buildKnnModel({ vectors, labels, count, dim }, { name: 'shape-test', version: '0.0.1', labels: LABELS, features, k: 3, metric: 'l1' });
}

async function gruDraft(inputDim: number, steps: number, features: FeatureConfig): Promise<{ draft: ManifestDraft; files: Record<string, Uint8Array> }> {
  await selectTfBackend(['wasm', 'cpu']);
  const model = tf.sequential();
  model.add(tf.layers.gru({ units: 4, recurrentActivation: 'sigmoid', activation: 'tanh', inputShape: [steps, inputDim] }));
  model.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax' }));
  const random = seededRandom(inputDim);
  const bundle = exportGruBundle(model, {
    name: 'shape-test',
    version: '0.0.1',
    labels: LABELS,
    features,
    normaliser: { mean: new Array<number>(inputDim).fill(0), std: new Array<number>(inputDim).fill(1) },
    steps,
    metrics: {},
    selfTestInputs: [Float32Array.from({ length: steps * inputDim }, () => random() - 0.5)],
  });
  model.dispose();
  return bundle;
}

/** Writes the bundle to a fresh directory, runs `check` on it, and removes it. */
async function withBundle(bundle: { draft: ManifestDraft; files: Record<string, Uint8Array> }, check: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ser-bundle-input-'));
  try {
    await writeBundle(dir, bundle.draft, bundle.files);
    await check(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Asserts loading `dir` fails with a BundleError naming the directory and matching `message`. */
async function refused(dir: string, message: RegExp): Promise<void> {
  await assert.rejects(loadClassifier(dir), (err: Error) => {
    assert.ok(err instanceof BundleError, `a BundleError, not ${err.name}: ${err.message}`);
    assert.ok(err.message.includes(dir), `names the bundle directory: ${err.message}`);
    assert.match(err.message, message);
    return true;
  });
}

test('a KNN bundle whose feature configuration matches its references loads', async () => {
  assert.equal(frameVectorSize(SMALL_FEATURES), 3);
  await withBundle(knnDraft(6), async (dir) => {
    const classifier = await loadClassifier(dir);
    assert.equal(classifier.manifest.kind, 'knn');
  });
});

test('a KNN bundle whose references are not the pooled mean and std of its feature frames is refused, saying what was expected and found', async () => {
  await withBundle(knnDraft(8), (dir) => refused(dir, /knn\.dim is 8.*expected 2 × 3 = 6/));
});

test('a KNN bundle that declares sequence input is refused', async () => {
  const bundle = knnDraft(6);
  bundle.draft.input = 'sequence';
  await withBundle(bundle, (dir) => refused(dir, /input "sequence".*expected "pooled_mean_std"/));
});

test('a GRU bundle whose input width is not its feature frame vector size is refused, saying what was expected and found', async () => {
  const width = frameVectorSize(DEFAULT_FEATURE_CONFIG);
  await withBundle(await gruDraft(5, 4, DEFAULT_FEATURE_CONFIG), (dir) => refused(dir, new RegExp(`gru\\.inputDim is 5.*expected ${width}`)));
});

test('a GRU bundle whose feature configuration matches its input width loads', async () => {
  await withBundle(await gruDraft(3, 4, SMALL_FEATURES), async (dir) => {
    const classifier = await loadClassifier(dir);
    assert.equal(classifier.manifest.kind, 'gru');
  });
});

test('a KNN self-test vector of the wrong length is refused with its index, not a bare RangeError', async () => {
  const bundle = knnDraft(6);
  bundle.draft.selfTest[1]!.input.push(0, 0);
  await withBundle(bundle, (dir) => refused(dir, /selfTest\[1\]\.input has 8 values.*expected 6/));
});

test('a GRU self-test vector of the wrong length is refused with its index, not a bare RangeError', async () => {
  const bundle = await gruDraft(3, 4, SMALL_FEATURES);
  bundle.draft.selfTest[0]!.input.pop();
  await withBundle(bundle, (dir) => refused(dir, /selfTest\[0\]\.input has 11 values.*expected steps × inputDim = 4 × 3 = 12/));
});

test('a normaliser whose width differs from the model input is refused before any weights are read', async () => {
  const bundle = await gruDraft(3, 4, SMALL_FEATURES);
  bundle.draft.normaliser = { mean: [0, 0], std: [1, 1] };
  await withBundle(bundle, (dir) => refused(dir, /normaliser has 2 dimensions.*expected 3/));
});
