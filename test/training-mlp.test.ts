import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { scanDataset } from '../src/datasets/scan-dataset.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { buildTrainingSet } from '../src/training/training-set.js';
import { drawCallerBaselines, trainMlp } from '../src/training/train-mlp.js';
import type { ClipWindows } from '../src/training/clip-windows.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { frameVectorSize } from '../src/features/feature-config.js';
import { FunctionalsPooler, functionalsSize } from '../src/features/functionals.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { writeSyntheticDataset } from './helpers/synthetic-dataset.js';
import { runSerEdge } from './helpers/program-process.js';

test('a small MLP bag learns clearly separable synthetic classes, reproducibly, and exports a bundle that loads and passes its self-test', async () => {
  const dir = tempDir('ser-edge-mlp-');
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 6, perClass: 2 });
  const features = FEATURE_PRESETS.prosody;
  const set = await buildTrainingSet(await scanDataset(csv), { features, augmentations: [], validationFolds: 3, seed: 3 });
  const options = { name: 'tiny-mlp', version: '0.0.1', features, seed: 3, urgent: ['angry', 'sad'] as const, hidden: [16], members: 2, maxEpochs: 40, batchSize: 8, learningRate: 0.01 };
  const epochs: string[] = [];
  const model = await trainMlp(set, { ...options, urgent: [...options.urgent], onEpoch: (m, e) => epochs.push(`${m}:${e}`) });
  assert.ok(model.validation.accuracy >= 0.9, `validation accuracy ${model.validation.accuracy}`);
  assert.ok(epochs.includes('1:1') && epochs.includes('2:1'), 'both members trained');
  await writeBundle(join(dir, 'bundle'), model.draft, model.files);
  const classifier = await loadClassifier(join(dir, 'bundle'));
  assert.deepEqual([...classifier.labels], ['neutral', 'sad', 'angry']);
  assert.equal(classifier.manifest.kind, 'mlp');
  assert.equal(classifier.manifest.mlp?.members, 2);
  classifier.dispose();
  const again = await trainMlp(set, { ...options, urgent: [...options.urgent] });
  assert.deepEqual(again.files, model.files, 'the same seed trains the same weights');
});

const pick = (r: { callWarmup: number; n: number }) => ({ callWarmup: r.callWarmup, n: r.n });

const serEdge = (...args: string[]) => runSerEdge(args, 600_000);

test('train --kind mlp writes a bundle eval can measure on its held-out fold, and refuses a bag over the size budget or too many members', async () => {
  const dir = tempDir('ser-edge-mlp-cli-');
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 6, perClass: 2 });
  const common = ['--data', csv, '--kind', 'mlp', '--validation-folds', '2', '--augment', 'none', '--cache', join(dir, 'cache'), '--no-progress'];
  const trained = await serEdge('train', ...common, '--out', join(dir, 'mlp'), '--members', '2', '--hidden', '8', '--epochs', '15', '--holdout', '0/3');
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stderr, /member 2\/2 epoch 1 /);
  assert.match(trained.stderr, /\(mlp\), \d+ bytes of weights/);
  const measured = await serEdge('eval', '--data', csv, '--model', join(dir, 'mlp'), '--fold', '0/3', '--json');
  assert.equal(measured.code, 0, measured.stderr);
  assert.equal((JSON.parse(measured.stdout) as { n: number }).n, 12);
  const budget = await serEdge('train', ...common, '--out', join(dir, 'never'), '--max-bytes', '131072');
  assert.equal(budget.code, 2);
  assert.match(budget.stderr, /an MLP bag of 5 × 64 hidden units takes \d+ bytes of weights, over the --max-bytes budget of 131072/);
  const members = await serEdge('train', ...common, '--out', join(dir, 'never'), '--members', '17');
  assert.notEqual(members.code, 0);
  assert.match(members.stderr, /--members <n>' argument '17' is invalid.*at most 16/);
});

test("train --call-baseline gives the bag each window relative to the caller's first windows; eval hears each clip after others of its speaker", async () => {
  const dir = tempDir('ser-edge-mlp-call-');
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 6, perClass: 2 });
  const common = ['--data', csv, '--kind', 'mlp', '--validation-folds', '2', '--augment', 'none', '--cache', join(dir, 'cache'), '--no-progress', '--holdout', '0/3'];
  const trained = await serEdge('train', ...common, '--out', join(dir, 'mlp'), '--members', '2', '--hidden', '8', '--epochs', '15', '--call-baseline', '2');
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stderr, /caller baseline of 2 windows/);
  const classifier = await loadClassifier(join(dir, 'mlp'));
  assert.deepEqual(classifier.manifest.mlp?.callBaseline, { windows: 2 });
  assert.equal(classifier.manifest.mlp?.inputDim, 2 * functionalsSize(frameVectorSize(classifier.manifest.features)));
  classifier.dispose();
  const warm = await serEdge('eval', '--data', csv, '--model', join(dir, 'mlp'), '--fold', '0/3', '--json');
  assert.equal(warm.code, 0, warm.stderr);
  assert.deepEqual(pick(JSON.parse(warm.stdout)), { callWarmup: 3, n: 12 });
  const cold = await serEdge('eval', '--data', csv, '--model', join(dir, 'mlp'), '--fold', '0/3', '--json', '--call-warmup', '0');
  assert.equal(cold.code, 0, cold.stderr);
  assert.deepEqual(pick(JSON.parse(cold.stdout)), { callWarmup: 0, n: 12 });
  const text = await serEdge('eval', '--data', csv, '--model', join(dir, 'mlp'), '--fold', '0/3', '--call-warmup', '1');
  assert.match(text.stdout, /each clip after 1 of its speaker's other clips in the same call/);
  const gru = await serEdge('train', ...common.filter((a) => a !== 'mlp' && a !== '--kind'), '--kind', 'gru', '--out', join(dir, 'never'), '--call-baseline', '2');
  assert.equal(gru.code, 2);
  assert.match(gru.stderr, /--call-baseline is for --kind mlp/);
});

test('caller baselines for training come from other clips of the same speaker over the same channel, full for half the items', () => {
  // Every frame of a clip holds one value, so the baseline's first functional (a mean) tells which clips it took.
  const clip = (speaker: string, n: number, value: number, variant: string): ClipWindows => ({
    clip: { path: `${speaker}-${n}.wav`, label: 'neutral', speaker, corpus: 'csv' },
    windows: [new Float32Array(4 * 2).fill(value)],
    dim: 2,
    variant,
  });
  const a = [1, 2, 3, 4].map((v, n) => clip('a', n, v, 'clean'));
  const aPhone = [101, 102, 103, 104].map((v, n) => clip('a', n, v, 'telephone:20:7'));
  const b = [1001, 1002].map((v, n) => clip('b', n, v, 'clean'));
  // Oversampled copies are the same objects again.
  const items = [...a, ...aPhone, ...b, ...Array.from({ length: 400 }, (_, i) => a[i % 4]!)];
  const pooler = new FunctionalsPooler(2, -1);
  const baselines = drawCallerBaselines(items, pooler, 3, seededRandom(5));
  const counts = [0, 0, 0, 0];
  const zero = new Float32Array(pooler.size);
  const out = new Float32Array(pooler.size);
  baselines.forEach((baseline, i) => {
    const item = items[i]!;
    counts[baseline.count]!++;
    if (baseline.count === 0) return;
    baseline.relativeInto(zero, out, 0);
    const mean = -out[0]!;
    const own = item.windows[0]![0]!;
    const others = [...a, ...aPhone, ...b].filter((o) => o.clip.speaker === item.clip.speaker && o.variant === item.variant && o !== item).map((o) => o.windows[0]![0]!);
    assert.ok(mean >= Math.min(...others) - 1e-4 && mean <= Math.max(...others) + 1e-4, `item ${i} (${own}): baseline ${mean} from outside ${others}`);
    if (baseline.count === others.length) assert.ok(Math.abs(mean - others.reduce((x, y) => x + y, 0) / others.length) < 1e-4, 'all the others, never itself');
  });
  assert.ok(counts[3]! > 150 && counts[3]! < 260, `full baselines: ${counts}`);
  assert.ok(counts[0]! > 40 && counts[1]! > 40 && counts[2]! > 40, `partial baselines: ${counts}`);
});

test('a GRU and an MLP trained with the same --holdout combine with `ensemble`, and eval measures the ensemble on that fold only', async () => {
  const dir = tempDir('ser-edge-ens-cli-');
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 6, perClass: 2 });
  const common = ['--data', csv, '--validation-folds', '2', '--augment', 'none', '--cache', join(dir, 'cache'), '--no-progress', '--holdout', '0/3'];
  const gru = await serEdge('train', ...common, '--kind', 'gru', '--units', '8', '--epochs', '5', '--out', join(dir, 'gru'));
  assert.equal(gru.code, 0, gru.stderr);
  const mlp = await serEdge('train', ...common, '--kind', 'mlp', '--members', '2', '--hidden', '8', '--epochs', '5', '--out', join(dir, 'mlp'));
  assert.equal(mlp.code, 0, mlp.stderr);
  const combined = await serEdge('ensemble', '--members', join(dir, 'gru'), join(dir, 'mlp'), '--out', join(dir, 'both'), '--name', 'pair');
  assert.equal(combined.code, 0, combined.stderr);
  const wrongFold = await serEdge('eval', '--data', csv, '--model', join(dir, 'both'), '--fold', '1/3', '--json');
  assert.equal(wrongFold.code, 2);
  assert.match(wrongFold.stderr, /trained with fold 0\/3 .*held out/);
  const measured = await serEdge('eval', '--data', csv, '--model', join(dir, 'both'), '--fold', '0/3', '--json');
  assert.equal(measured.code, 0, measured.stderr);
  const result = JSON.parse(measured.stdout) as { n: number; model: string };
  assert.equal(result.n, 12);
  assert.match(JSON.stringify(result.model), /pair/);
});
