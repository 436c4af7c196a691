import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { scanDataset } from '../src/datasets/scan-dataset.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { buildTrainingSet } from '../src/training/training-set.js';
import { fitGru, trainGru } from '../src/training/train-gru.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { writeSyntheticDataset } from './helpers/synthetic-dataset.js';

test('a small GRU learns clearly separable synthetic classes and exports a bundle that loads and passes its self-test', async () => {
  const dir = tempDir('ser-edge-gru-');
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 6, perClass: 2 });
  const features = FEATURE_PRESETS.compact;
  const set = await buildTrainingSet(await scanDataset(csv), { features, augmentations: [], validationFolds: 3, seed: 3 });
  const model = await trainGru(set, { name: 'tiny-gru', version: '0.0.1', features, seed: 3, urgent: ['angry', 'sad'], units: [12, 8], maxEpochs: 20, batchSize: 8, learningRate: 0.01 });
  assert.ok(model.validation.accuracy >= 0.9, `validation accuracy ${model.validation.accuracy}`);
  await writeBundle(join(dir, 'bundle'), model.draft, model.files);
  const classifier = await loadClassifier(join(dir, 'bundle'));
  assert.deepEqual([...classifier.labels], ['neutral', 'sad', 'angry']);
  assert.equal(classifier.manifest.kind, 'gru');
  classifier.dispose();
});

test('early stopping keeps the weights of the best validation epoch', async () => {
  const dir = tempDir('ser-edge-gru-es-');
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 3, perClass: 1, seconds: 1.5 });
  const features = FEATURE_PRESETS.compact;
  const set = await buildTrainingSet(await scanDataset(csv), { features, augmentations: [], validationFolds: 3, seed: 5 });
  const statuses: string[] = [];
  const fitted = await fitGru(set, { name: 't', version: '0.0.1', features, seed: 5, urgent: ['angry'], units: [4], maxEpochs: 40, batchSize: 4, learningRate: 0.3, patience: 2, onEpoch: (_e, _n, s) => statuses.push(s) });
  assert.ok(fitted.bestEpoch >= 1 && fitted.bestEpoch <= statuses.length);
  assert.ok(statuses.length === 40 || statuses.length - fitted.bestEpoch === 2, 'stops `patience` epochs after the best one');
  fitted.model.dispose();
});

test('masking zeroes one span of steps and one band of features per sequence, within the limits', async () => {
  const { maskSequences } = await import('../src/training/train-gru.js');
  const { seededRandom } = await import('../src/datasets/seeded-random.js');
  const steps = 20, dim = 10, count = 50;
  const x = new Float32Array(count * steps * dim).fill(1);
  maskSequences(x, count, steps, dim, { maxSteps: 4, maxDims: 3 }, seededRandom(1));
  for (let n = 0; n < count; n++) {
    const seq = x.subarray(n * steps * dim, (n + 1) * steps * dim);
    const zeroSteps = Array.from({ length: steps }, (_, t) => seq.subarray(t * dim, (t + 1) * dim).every((v) => v === 0)).filter(Boolean).length;
    const zeroDims = Array.from({ length: dim }, (_, d) => Array.from({ length: steps }, (_, t) => seq[t * dim + d]).every((v) => v === 0)).filter(Boolean).length;
    assert.ok(zeroSteps <= 4 || zeroDims === dim, `sequence ${n}: ${zeroSteps} masked steps`);
    assert.ok(zeroDims <= 3 || zeroSteps === steps, `sequence ${n}: ${zeroDims} masked features`);
  }
  assert.ok(x.some((v) => v === 0) && x.some((v) => v === 1), 'some values are masked, most are kept');
  const untouched = new Float32Array(steps * dim).fill(1);
  maskSequences(untouched, 1, steps, dim, { maxSteps: 0, maxDims: 0 }, seededRandom(2));
  assert.ok(untouched.every((v) => v === 1), 'zero limits mask nothing');
});
