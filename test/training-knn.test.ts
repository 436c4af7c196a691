import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import { buildKnnModel } from '../src/training/knn-trainer.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { writeSyntheticDataset } from './helpers/synthetic-dataset.js';
import { runSerEdge } from './helpers/program-process.js';

const dir = tempDir('ser-edge-train-');
let csv = '';

const serEdge = (...args: string[]) => runSerEdge(args, 600_000);

before(async () => {
  csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 6, perClass: 2 });
});

test('train --kind knn learns clearly separable synthetic classes, and eval --json measures it on held-out speakers', async () => {
  const model = join(dir, 'knn');
  const trained = await serEdge('train', '--data', csv, '--kind', 'knn', '--out', model, '--holdout', '0/3', '--validation-folds', '2', '--augment', 'noise', '--cache', join(dir, 'cache'), '--no-progress');
  assert.equal(trained.code, 0, trained.stderr);
  const manifest = JSON.parse(await readFile(join(model, 'manifest.json'), 'utf8'));
  assert.equal(manifest.kind, 'knn');
  assert.ok(manifest.knn.k >= 1 && manifest.knn.k <= 15);
  assert.equal(typeof manifest.metrics.urgentThreshold, 'number');
  assert.deepEqual(manifest.urgencyWeights, { neutral: 0, sad: 1, angry: 1 }, 'the bundle\'s urgency is P(urgent labels)');

  const evaluated = await serEdge('eval', '--data', csv, '--model', model, '--fold', '0/3', '--json', '--report', join(dir, 'report'));
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const result = JSON.parse(evaluated.stdout);
  for (const key of ['accuracy', 'macro_f1', 'per_class', 'confusion', 'urgent', 'n']) assert.ok(key in result, key);
  assert.equal(result.n, 12, 'fold 0 of 3 holds 2 of the 6 speakers');
  assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
  assert.ok('recall' in result.urgent && 'precision' in result.urgent);
  assert.deepEqual(Object.keys(result.per_gender).sort(), ['female', 'male']);
  await access(join(dir, 'report', 'report.md'));
  await access(join(dir, 'report', 'confusion.svg'));
});

test('eval --channel telephone runs the same clips through a simulated telephone line', async () => {
  const model = join(dir, 'knn');
  const { code, stdout } = await serEdge('eval', '--data', csv, '--model', model, '--fold', '0/3', '--channel', 'telephone', '--urgent', 'angry', '--urgent-threshold', 'top', '--json');
  assert.equal(code, 0);
  const result = JSON.parse(stdout);
  assert.equal(result.channel, 'telephone');
  assert.equal(result.n, 12);
  assert.deepEqual(result.urgent.labels, ['angry']);
  assert.equal(result.urgent.rule, 'top');
});

test('eval refuses to measure a held-out-fold model on speakers it was trained on', async () => {
  const all = await serEdge('eval', '--data', csv, '--model', join(dir, 'knn'), '--json');
  assert.equal(all.code, 2);
  assert.match(all.stderr, /trained with fold 0\/3 held out.*--fold 0\/3 --seed 1 --split speaker/);
  const other = await serEdge('eval', '--data', csv, '--model', join(dir, 'knn'), '--fold', '1/3', '--json');
  assert.equal(other.code, 2);
  assert.match(other.stderr, /would include speakers it was trained on/);
});

test('train refuses bad numbers and unit lists by option name before reading any data', async () => {
  const units = await serEdge('train', '--data', csv, '--out', join(dir, 'never'), '--kind', 'gru', '--units', '32,x');
  assert.notEqual(units.code, 0);
  assert.match(units.stderr, /--units <list>' argument '32,x' is invalid/);
  const folds = await serEdge('train', '--data', csv, '--out', join(dir, 'never'), '--validation-folds', '1');
  assert.match(folds.stderr, /--validation-folds <k>' argument '1' is invalid/);
  const many = await serEdge('train', '--data', csv, '--out', join(dir, 'never'), '--validation-folds', '9', '--no-progress');
  assert.equal(many.code, 2);
  assert.match(many.stderr, /6 training speakers cannot make 9 validation folds: use --validation-folds 6 or fewer/);
});

test('eval names an unknown urgent label and a missing model clearly', async () => {
  const bad = await serEdge('eval', '--data', csv, '--model', join(dir, 'knn'), '--urgent', 'furious');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /furious/);
  const missing = await serEdge('eval', '--data', csv, '--model', join(dir, 'nope'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /manifest\.json/);
});

test('every KNN bundle carries urgency weights: angry and sad 1, the daemon defaults for its other labels', () => {
  const labels = ['neutral', 'sad', 'angry', 'fearful'] as const;
  const vectors = Float32Array.from({ length: 8 * 4 }, (_, i) => Math.sin(i));
  const model = buildKnnModel({ vectors, labels: Uint8Array.from([0, 1, 2, 3, 0, 1, 2, 3]), count: 8, dim: 4 }, { name: 'w', version: '0.0.1', labels: [...labels], features: DEFAULT_FEATURE_CONFIG, k: 3, metric: 'l1' });
  assert.deepEqual(model.draft.urgencyWeights, { neutral: 0, sad: 1, angry: 1, fearful: 0.5 });
});

test('urgency weights given to the KNN builder are the ones its bundle carries', () => {
  const vectors = Float32Array.from({ length: 4 * 2 }, (_, i) => i);
  const model = buildKnnModel(
    { vectors, labels: Uint8Array.from([0, 1, 0, 1]), count: 4, dim: 2 },
    { name: 'w', version: '0.0.1', labels: ['neutral', 'angry'], features: DEFAULT_FEATURE_CONFIG, k: 1, metric: 'l1', urgencyWeights: { neutral: 0, angry: 0.8 } },
  );
  assert.deepEqual(model.draft.urgencyWeights, { neutral: 0, angry: 0.8 });
});
