import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadModel } from '../src/daemon/load-model.js';
import type { ResolvedConfig } from '../src/config/load-daemon-config.js';
import { DEFAULT_FEATURE_CONFIG, frameVectorSize, type FeatureConfig } from '../src/features/feature-config.js';
import type { Emotion } from '../src/model/emotions.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { exportGruBundle } from '../src/model/gru/gru-export.js';
import { selectTfBackend, tf } from '../src/model/tf-backend.js';

const LABELS: Emotion[] = ['neutral', 'sad', 'angry'];
const STEPS = 6;
/** Four scalar features per frame, so the model's input fits the bundle's feature configuration. */
const FEATURES: FeatureConfig = { ...DEFAULT_FEATURE_CONFIG, features: ['rms', 'zcr', 'centroid', 'flatness'] };
const DIM = frameVectorSize(FEATURES);
let gruDir: string;

/** A tiny GRU bundle; built on the cpu backend so that the wasm backend starts only inside loadModel. */
before(async () => {
  await selectTfBackend(['cpu']);
  const model = tf.sequential();
  model.add(tf.layers.gru({ units: 5, recurrentActivation: 'sigmoid', activation: 'tanh', inputShape: [STEPS, DIM], kernelInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 1 }) }));
  model.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 2 }) }));
  const { draft, files } = exportGruBundle(model, {
    name: 'tiny-gru',
    version: '0.0.1',
    labels: LABELS,
    features: FEATURES,
    normaliser: { mean: new Array(DIM).fill(0), std: new Array(DIM).fill(1) },
    steps: STEPS,
    metrics: {},
    selfTestInputs: [Float32Array.from({ length: STEPS * DIM }, (_, i) => Math.sin(i))],
  });
  gruDir = await mkdtemp(join(tmpdir(), 'ser-edge-daemon-model-'));
  await writeBundle(gruDir, draft, files);
});

after(async () => {
  if (gruDir) await rm(gruDir, { recursive: true });
});

/** A pino logger whose lines are kept for the test to read. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

function modelConfig(overrides: Partial<ResolvedConfig['model']>): ResolvedConfig['model'] {
  // The tiny GRU is unsigned: signatures are test/model-trust.test.ts's subject.
  return { dir: gruDir, runtime: 'tfjs', backends: ['wasm', 'cpu'], threads: 1, trustedKeys: [], allowUnsigned: true, ...overrides };
}

test('with model.runtime "tfjs" a GRU bundle runs on the first of model.backends, not on TensorFlow.js\'s own preference', async () => {
  const { logger, lines } = recordingLogger();
  const classifier = await loadModel(modelConfig({ backends: ['cpu', 'wasm'], threads: 2 }), logger);
  try {
    assert.equal(classifier.backend, 'gru-tfjs-cpu');
    const line = lines.find((l) => String(l.msg).startsWith('model.threads 2 not applied'));
    assert.ok(line, `no line about model.threads in ${JSON.stringify(lines)}`);
    assert.match(String(line.msg), /the cpu backend runs 1 thread\(s\) here/);
    assert.equal(line.level, 40, 'a warning');
  } finally {
    classifier.dispose();
  }
});

test('model.threads reaches the wasm backend, and the log says how many threads it really runs', async () => {
  const { logger, lines } = recordingLogger();
  const classifier = await loadModel(modelConfig({ backends: ['wasm', 'cpu'], threads: 3 }), logger);
  try {
    assert.equal(classifier.backend, 'gru-tfjs-wasm');
    const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
    const inUse = getThreadsCount();
    const line = lines.find((l) => l.threadsInUse !== undefined);
    assert.ok(line, `no line about threads in ${JSON.stringify(lines)}`);
    assert.equal(line.threadsInUse, inUse);
    assert.equal(line.threads, 3);
    if (inUse === 3) assert.match(String(line.msg), /with 3 thread\(s\)/);
    else assert.match(String(line.msg), new RegExp(`^model\\.threads 3 not applied: the wasm backend runs ${inUse} thread\\(s\\) here`));
  } finally {
    classifier.dispose();
  }
});

test('a GRU bundle on the fused kernel says in the log that model.backends and model.threads are not used, and why', async () => {
  const { logger, lines } = recordingLogger();
  const classifier = await loadModel(modelConfig({ runtime: 'fused', threads: 4 }), logger);
  try {
    assert.match(classifier.backend, /^gru-fused-/);
    const line = lines.find((l) => String(l.msg).startsWith('model.backends and model.threads not used'));
    assert.ok(line, `no such line in ${JSON.stringify(lines)}`);
    assert.match(String(line.msg), /model\.runtime "tfjs"/);
    assert.equal(line.threads, 4);
  } finally {
    classifier.dispose();
  }
});
