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
