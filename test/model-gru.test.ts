import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import { Normaliser } from '../src/features/normaliser.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import type { Emotion } from '../src/model/emotions.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { exportGruBundle, GRU_WEIGHTS_FILE } from '../src/model/gru/gru-export.js';
import { FusedGruClassifier } from '../src/model/gru/fused-gru-classifier.js';
import { sequenceInput } from '../src/model/gru/sequence-input.js';
import { selectTfBackend, tf } from '../src/model/tf-backend.js';

const LABELS: Emotion[] = ['neutral', 'happy', 'sad', 'angry'];

/** A small random tf.sequential of the bundle's architecture, deterministic per seed. */
function randomGruModel(units: number[], steps: number, dim: number, seed: number): tf.Sequential {
  const model = tf.sequential();
  units.forEach((u, i) =>
    model.add(
      tf.layers.gru({
        units: u,
        recurrentActivation: 'sigmoid',
        activation: 'tanh',
        returnSequences: i < units.length - 1,
        kernelInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + i }),
        recurrentInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 10 + i }),
        biasInitializer: tf.initializers.randomUniform({ minval: -0.3, maxval: 0.3, seed: seed + 20 + i }),
        ...(i === 0 ? { inputShape: [steps, dim] } : {}),
      }),
    ),
  );
  model.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: seed + 30 }) }));
  return model;
}

function randomInputs(count: number, length: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length }, () => (random() * 2 - 1) * 2));
}

async function exportedBundle(units: number[], steps: number, dim: number, seed: number): Promise<{ dir: string; model: tf.Sequential }> {
  await selectTfBackend(['wasm', 'cpu']);
  const model = randomGruModel(units, steps, dim, seed);
  const { draft, files } = exportGruBundle(model, {
    name: 'test-gru',
    version: '0.0.1',
    labels: LABELS,
    // A bundle's input width must be its frame vector size: `dim` MFCCs per frame.
    features: { ...DEFAULT_FEATURE_CONFIG, features: ['mfcc'], mfccCount: dim },
    normaliser: { mean: Array.from({ length: dim }, (_, i) => i / 10), std: Array.from({ length: dim }, (_, i) => 1 + i / 20) },
    steps,
    metrics: {},
    selfTestInputs: randomInputs(3, steps * dim, seed),
  });
  const dir = await mkdtemp(join(tmpdir(), 'ser-gru-'));
  await writeBundle(dir, draft, files);
  return { dir, model };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const kernel of ['wasm-simd', 'js'] as const) {
  test(`the fused GRU (${kernel}) passes the self-test computed by TensorFlow.js on the shipped weights`, async () => {
    const { dir } = await exportedBundle([12, 8], 20, 10, 1);
    try {
      const c = await loadClassifier(dir, { kernel });
      assert.equal(c.backend, `gru-fused-${kernel}`);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test(`the fused GRU (${kernel}) matches the tfjs runtime within 1e-3 on random inputs, unit counts not multiples of 4 or 16`, async () => {
    const { dir } = await exportedBundle([7, 21, 18], 15, 9, 2);
    try {
      const fused = await loadClassifier(dir, { kernel });
      const ref = await loadClassifier(dir, { gruRuntime: 'tfjs', tfBackends: ['wasm', 'cpu'] });
      assert.match(ref.backend, /^gru-tfjs-(wasm|cpu)$/);
      const a = new Float32Array(LABELS.length);
      const b = new Float32Array(LABELS.length);
      for (const input of randomInputs(10, 15 * 9, 7)) {
        assert.ok(maxDiff(fused.predictModelInput(input, a), ref.predictModelInput(input, b)) < 1e-3);
      }
      ref.dispose();
    } finally {
      await rm(dir, { recursive: true });
    }
  });
}

test('the int8 bundle predicts what the float model does, to within quantisation error', async () => {
  const { dir, model } = await exportedBundle([16, 16], 12, 8, 3);
  try {
    const c = await loadClassifier(dir);
    const out = new Float32Array(LABELS.length);
    for (const input of randomInputs(5, 12 * 8, 11)) {
      const float = tf.tidy(() => (model.predict(tf.tensor3d(input, [1, 12, 8])) as tf.Tensor).dataSync());
      assert.ok(maxDiff(c.predictModelInput(input, out), float) < 0.05);
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a GRU bundle whose weights file was altered is refused', async () => {
  const { dir } = await exportedBundle([4], 5, 3, 4);
  try {
    await writeFile(join(dir, GRU_WEIGHTS_FILE), new Uint8Array(10));
    await assert.rejects(loadClassifier(dir), /weights\.i8/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('a model with a non-sigmoid recurrent activation cannot be exported', () => {
  const model = tf.sequential();
  model.add(tf.layers.gru({ units: 4, inputShape: [5, 3] }));
  model.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax' }));
  assert.throws(
    () => exportGruBundle(model, { name: 'x', version: '0.0.1', labels: LABELS, features: DEFAULT_FEATURE_CONFIG, normaliser: { mean: [0, 0, 0], std: [1, 1, 1] }, steps: 5, metrics: {}, selfTestInputs: [] }),
    /recurrentActivation hardSigmoid/,
  );
});

test('predict on window rows equals predictModelInput on the sequence input', async () => {
  const { dir } = await exportedBundle([8], 6, 4, 5);
  try {
    const c = (await loadClassifier(dir)) as FusedGruClassifier;
    const rows = Float32Array.from({ length: 20 * 4 }, (_, i) => Math.sin(i));
    const a = c.predict(rows, 20, new Float32Array(LABELS.length));
    const b = c.predictModelInput(c.modelInput(rows, 20), new Float32Array(LABELS.length));
    assert.deepEqual(Array.from(a), Array.from(b));
  } finally {
    await rm(dir, { recursive: true });
  }
});

const identity = new Normaliser([0, 0], [1, 1]);

test('a sequence longer than the model steps keeps its last steps', () => {
  // 8 frames, stride 2 → 4 steps (frame value = its index); keep the last 2.
  const rows = Float32Array.from({ length: 16 }, (_, i) => Math.floor(i / 2));
  const out = sequenceInput(rows, 8, 2, { sequenceStride: 2 }, identity, 2, new Float32Array(4));
  assert.deepEqual(Array.from(out), [4.5, 4.5, 6.5, 6.5]);
});

test('a sequence shorter than the model steps is pre-padded with zeros after normalising', () => {
  const rows = Float32Array.from([3, 3, 5, 5]);
  const norm = new Normaliser([1, 1], [2, 2]);
  const out = sequenceInput(rows, 2, 2, { sequenceStride: 1 }, norm, 4, new Float32Array(8));
  assert.deepEqual(Array.from(out), [0, 0, 0, 0, 1, 1, 2, 2]);
});

test('the last step of a sequence averages the frames left over by the stride', () => {
  const rows = Float32Array.from([1, 1, 3, 3, 8, 8]);
  const out = sequenceInput(rows, 3, 2, { sequenceStride: 2 }, identity, 2, new Float32Array(4));
  assert.deepEqual(Array.from(out), [2, 2, 8, 8]);
});
