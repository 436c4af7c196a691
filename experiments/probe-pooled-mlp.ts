/**
 * A probe, not a model kind: how far does a small MLP over pooled functionals of the full
 * frame (all features plus pitch) get on one speaker-disjoint fold, alone, averaged with a
 * cross-validated GRU, or with each speaker's features taken relative to a baseline of their
 * own speech? It answers "what would be tried next" in the model card with numbers; nothing
 * it trains is exported. Same folds, validation speakers, augmentation and feature cache as
 * `train` and `cross-validate`, so its figures sit beside theirs.
 *
 *   node dist/experiments/probe-pooled-mlp.js --data ../shared/data/cremad --fold 0/5 [--ensemble-with var/cv/gru] [--baseline calm]
 *
 * --baseline speaker: minus the mean vector of the speaker's other clean clips (the
 * classic speaker normalisation; it needs every emotion of the speaker, which a live call
 * never has). --baseline calm: minus the mean of the speaker's other *neutral* clips,
 * standing for the calm opening of a call. Both leave the clip itself out of its baseline.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { foldOf, parseFold, scanAll } from '../src/datasets/select-clips.js';
import { seededRandom, shuffleInPlace } from '../src/datasets/seeded-random.js';
import { frameVectorSize, type FeatureConfig } from '../src/features/feature-config.js';
import { FunctionalsPooler } from '../src/features/functionals.js';
import { pitchColumnOf } from '../src/model/mlp/pooled-mlp-classifier.js';
import { argMax } from '../src/model/classifier.js';
import type { Emotion } from '../src/model/emotions.js';
import { probabilityRecord } from '../src/pipeline/window-verdict.js';
import { parseAugmentations } from '../src/training/augment.js';
import { extractClipWindows, type ClipWindows } from '../src/training/clip-windows.js';
import { computeMetrics, parseUrgentLabels, type ClipOutcome } from '../src/training/evaluation.js';
import { oversampleToBalance } from '../src/training/knn-trainer.js';
import { useTrainingBackend } from '../src/training/train-gru.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { buildTrainingSet } from '../src/training/training-set.js';

process.on('uncaughtException', (error) => {
  process.stderr.write(`probe-pooled-mlp: ${error.message}\n`);
  process.exit(2);
});

const opts = exitTwoOnUsageError(new Command())
  .name('probe-pooled-mlp')
  .description('Probe: a small MLP over pooled functionals on one speaker fold, alone, averaged with a GRU, or relative to a speaker baseline; nothing is exported')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .option('--fold <i/k>', 'speaker fold to test on', '0/5')
  .option('--seed <n>', 'seed of the split (as cross-validate)', (v) => Number.parseInt(v, 10), 1)
  .option('--hidden <n>', 'hidden units of the MLP', (v) => Number.parseInt(v, 10), 64)
  .addOption(new Option('--features <preset>', 'frame features: every one the analyser has plus pitch, or the GRU\'s').choices(['full', 'prosody']).default('full'))
  .option('--seeds <n>', 'MLPs trained from different seeds, probabilities averaged', (v) => Number.parseInt(v, 10), 1)
  .option('--augment <list>', 'training augmentation', 'noise,telephone')
  .addOption(new Option('--baseline <kind>', 'features relative to the speaker').choices(['none', 'speaker', 'calm']).default('none'))
  .option('--baseline-clips <n>', 'clips drawn per item for its baseline; 0 = every other one', (v) => Number.parseInt(v, 10), 0)
  .option('--with-absolute', 'give the MLP the absolute vector beside the relative one')
  .option('--ensemble-with <dir>', 'a cross-validate --out whose fold-N/outcomes.json is averaged in')
  .option('--urgent <labels>', 'urgent emotions', 'angry,sad')
  .option('--cache <dir>', 'feature cache', 'var/cache/features')
  .parse()
  .opts<{ data: string[]; fold: string; seed: number; hidden: number; features: 'full' | 'prosody'; seeds: number; augment: string; baseline: 'none' | 'speaker' | 'calm'; baselineClips: number; withAbsolute?: boolean; ensembleWith?: string; urgent: string; cache: string }>();

const features: FeatureConfig = FEATURE_PRESETS[opts.features === 'prosody' ? 'prosody' : 'full-pitch'];
const dim = frameVectorSize(features);
const log = (line: string) => process.stderr.write(`${line}\n`);

// The model kind's own pooler: the probe measures the functionals `--kind mlp` ships.
const pooler = new FunctionalsPooler(dim, pitchColumnOf(features));
const pooled = new Float32Array(pooler.size);
function functionals(rows: Float32Array): Float64Array {
  return Float64Array.from(pooler.pool(rows, rows.length / dim, pooled));
}

interface Row { x: Float64Array; label: number; item: number; frames: number }

function rowsOf(items: ClipWindows[], labels: readonly Emotion[]): Row[] {
  return items.flatMap((it, item) => it.windows.map((w) => ({ x: functionals(w), label: labels.indexOf(it.clip.label), item, frames: w.length / dim })));
}

/**
 * Takes each row relative to its speaker's baseline: the mean over the speaker's clean
 * baseline clips (every clip for `speaker`, neutral ones for `calm`) other than the row's
 * own, or over `clips` of those drawn at random per item when `clips` > 0 (a call's first
 * few utterances). With `keepAbsolute` the relative vector is appended to the absolute one.
 */
function relativeToSpeaker(rows: Row[], items: ClipWindows[], kind: 'speaker' | 'calm', clips: number, keepAbsolute: boolean, random: () => number): Row[] {
  // Each clean baseline clip's vector: the frame-weighted mean of its windows' vectors.
  const sums = new Map<string, { speaker: string; sum: Float64Array; frames: number }>();
  // Oversampled copies repeat an item (the same object) at later indices; its first copy is enough.
  const firstIndex = new Map<ClipWindows, number>();
  items.forEach((it, i) => firstIndex.has(it) || firstIndex.set(it, i));
  for (const r of rows) {
    const it = items[r.item]!;
    if ((it.variant ?? 'clean') !== 'clean' || (kind === 'calm' && it.clip.label !== 'neutral')) continue;
    if (firstIndex.get(it) !== r.item) continue;
    const entry = sums.get(it.clip.path) ?? { speaker: it.clip.speaker, sum: new Float64Array(r.x.length), frames: 0 };
    r.x.forEach((v, k) => (entry.sum[k]! += v * r.frames));
    entry.frames += r.frames;
    sums.set(it.clip.path, entry);
  }
  const bySpeaker = new Map<string, Map<string, Float64Array>>();
  for (const [path, { speaker, sum, frames }] of sums) {
    if (!bySpeaker.has(speaker)) bySpeaker.set(speaker, new Map());
    bySpeaker.get(speaker)!.set(path, sum.map((v) => v / frames));
  }
  const chosen = new Map<number, Float64Array>();
  const baselineOf = (item: number): Float64Array => {
    const cached = chosen.get(item);
    if (cached) return cached;
    const it = items[item]!;
    const pool = [...(bySpeaker.get(it.clip.speaker) ?? new Map<string, Float64Array>()).entries()].filter(([path]) => path !== it.clip.path).map(([, x]) => x);
    if (pool.length === 0) throw new Error(`speaker ${it.clip.speaker} has no other ${kind === 'calm' ? 'neutral ' : ''}clip to make a baseline from`);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    const picked = clips > 0 ? pool.slice(0, clips) : pool;
    const mean = new Float64Array(picked[0]!.length);
    for (const x of picked) x.forEach((v, k) => (mean[k]! += v / picked.length));
    chosen.set(item, mean);
    return mean;
  };
  // Baselines come from the absolute vectors, so every row's is drawn before any row changes.
  const baselines = rows.map((r) => baselineOf(r.item));
  return rows.map((r, i) => {
    const relative = r.x.map((v, k) => v - baselines[i]![k]!);
    if (!keepAbsolute) return { ...r, x: relative };
    const both = new Float64Array(r.x.length * 2);
    both.set(r.x);
    both.set(relative, r.x.length);
    return { ...r, x: both };
  });
}

const clips = await scanAll(opts.data, 'auto');
const fold = parseFold(opts.fold);
const split = foldOf(clips, fold, opts.seed);
const set = await buildTrainingSet(split.train, { features, augmentations: parseAugmentations(opts.augment), validationFolds: 5, seed: opts.seed, cacheDir: opts.cache, progress: process.stderr.isTTY, log });
const test = await extractClipWindows(split.test, { features, cacheDir: opts.cache });
const labels = set.labels;
const train = oversampleToBalance(set.train, seededRandom(opts.seed));
let [trainRows, validationRows, testRows] = [rowsOf(train, labels), rowsOf(set.validation, labels), rowsOf(test, labels)];
if (opts.baseline !== 'none') {
  const kind = opts.baseline, random = seededRandom(opts.seed + 7);
  trainRows = relativeToSpeaker(trainRows, train, kind, opts.baselineClips, opts.withAbsolute === true, random);
  validationRows = relativeToSpeaker(validationRows, set.validation, kind, opts.baselineClips, opts.withAbsolute === true, random);
  testRows = relativeToSpeaker(testRows, test, kind, opts.baselineClips, opts.withAbsolute === true, random);
}

// Standardised with the training rows' statistics.
const width = trainRows[0]!.x.length;
const mean = new Float64Array(width), std = new Float64Array(width);
for (const r of trainRows) r.x.forEach((v, k) => (mean[k]! += v / trainRows.length));
for (const r of trainRows) r.x.forEach((v, k) => (std[k]! += (v - mean[k]!) ** 2 / trainRows.length));
std.forEach((v, k) => (std[k] = Math.sqrt(v) || 1));
const tensorOf = (rows: Row[]) => tf.tensor2d(Float32Array.from(rows.flatMap((r) => Array.from(r.x, (v, k) => (v - mean[k]!) / std[k]!))), [rows.length, width]);
const oneHot = (rows: Row[]) => tf.oneHot(tf.tensor1d(rows.map((r) => r.label), 'int32'), labels.length).toFloat();

await useTrainingBackend();
const [xTrain, yTrain, xValidation, yValidation, xTest] = [tensorOf(trainRows), oneHot(trainRows), tensorOf(validationRows), oneHot(validationRows), tensorOf(testRows)];

/** One MLP from `seed`, early-stopped on validation loss (patience 8, best weights kept, as train does for the GRU); its test probabilities. */
async function trainOne(seed: number): Promise<{ probabilities: Float32Array; bestEpoch: number }> {
  const model = tf.sequential();
  // No layer seeds: a seeded tfjs dropout layer draws the same mask for every batch. Its
  // masks come from Math.random instead, seeded below for the run.
  model.add(tf.layers.dropout({ rate: 0.1, inputShape: [width] }));
  model.add(tf.layers.dense({ units: opts.hidden, activation: 'relu', kernelRegularizer: tf.regularizers.l2({ l2: 3e-3 }), kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
  model.add(tf.layers.dropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: labels.length, activation: 'softmax', kernelRegularizer: tf.regularizers.l2({ l2: 3e-3 }), kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }));
  model.compile({ optimizer: tf.train.adam(3e-4), loss: 'categoricalCrossentropy' });
  let best = { loss: Infinity, epoch: 0, weights: [] as tf.Tensor[] };
  Math.random = seededRandom(seed + 13); // dropout masks, repeatable per seed (a script: nothing else relies on it)
  const order = Array.from({ length: trainRows.length }, (_, i) => i);
  const shuffleRandom = seededRandom(seed + 11);
  for (let epoch = 0; epoch < 80 && epoch - best.epoch < 8; epoch++) {
    // Own seeded shuffle (tfjs's draws from Math.random), so a run repeats exactly.
    shuffleInPlace(order, shuffleRandom);
    const index = tf.tensor1d(order, 'int32');
    const [x, y] = [tf.gather(xTrain, index), tf.gather(yTrain, index)];
    await model.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 });
    tf.dispose([index, x, y]);
    const loss = (model.evaluate(xValidation, yValidation) as tf.Scalar).dataSync()[0]!;
    if (loss < best.loss) {
      best.weights.forEach((w) => w.dispose());
      best = { loss, epoch, weights: model.getWeights().map((w) => w.clone()) };
    }
  }
  model.setWeights(best.weights);
  const probabilities = (model.predict(xTest) as tf.Tensor).dataSync() as Float32Array;
  model.dispose();
  return { probabilities, bestEpoch: best.epoch };
}

// The first seed is --seed itself, so --seeds 1 repeats earlier single-model runs.
const runs = [];
for (let s = 0; s < opts.seeds; s++) runs.push(await trainOne(opts.seed + 101 * s));
const probabilities = new Float32Array(runs[0]!.probabilities.length);
for (const r of runs) r.probabilities.forEach((v, i) => (probabilities[i]! += v / runs.length));
const best = { epoch: runs.map((r) => r.bestEpoch).join(',') };

/** Clip verdicts: frame-weighted mean of window probabilities, as the classify path. */
const sums = test.map(() => new Float64Array(labels.length));
const weights = new Float64Array(test.length);
testRows.forEach((r, i) => {
  for (let l = 0; l < labels.length; l++) sums[r.item]![l]! += probabilities[i * labels.length + l]! * r.frames;
  weights[r.item]! += r.frames;
});
const mlpVerdicts = new Map(test.map((it, i) => [it.clip.path, sums[i]!.map((v) => v / weights[i]!)]));

const urgent = parseUrgentLabels(opts.urgent);
const outcome = (truth: Emotion, p: Float64Array, gender?: ClipOutcome['gender']): ClipOutcome => ({ truth, predicted: labels[argMax(p)]!, probabilities: probabilityRecord(labels, p), ...(gender ? { gender } : {}) });
const scored = split.test.filter((c) => mlpVerdicts.has(c.path));
const report: Record<string, unknown> = { fold: opts.fold, baseline: opts.baseline, baselineClips: opts.baselineClips, withAbsolute: opts.withAbsolute === true, hidden: opts.hidden, features: opts.features, seeds: opts.seeds, bestEpoch: best.epoch, testClips: scored.length };
const summary = (outcomes: ClipOutcome[]) => {
  const m = computeMetrics(outcomes, labels, urgent);
  return { accuracy: +m.accuracy.toFixed(4), macro_f1: +m.macro_f1.toFixed(4), urgent_recall: +m.urgent.recall.toFixed(4), urgent_precision: +m.urgent.precision.toFixed(4) };
};
report['mlp'] = summary(scored.map((c) => outcome(c.label, mlpVerdicts.get(c.path)!, c.gender)));

if (opts.ensembleWith) {
  // cross-validate classifies the fold's clips in split order; the truth of each is checked.
  const file = join(opts.ensembleWith, `fold-${fold.index}`, 'outcomes.json');
  const gru = (JSON.parse(await readFile(file, 'utf8')) as { outcomes: { clean: ClipOutcome[] } }).outcomes.clean;
  if (gru.length !== split.test.length) throw new Error(`${file} has ${gru.length} verdicts, the fold ${split.test.length} clips: made with another split or seed`);
  const pairs = split.test.map((c, i) => {
    if (gru[i]!.truth !== c.label) throw new Error(`${file} verdict ${i} is for a ${gru[i]!.truth} clip, the fold's is ${c.label}: made with another split or seed`);
    return { clip: c, gru: Float64Array.from(labels, (l) => gru[i]!.probabilities[l] ?? 0), mlp: mlpVerdicts.get(c.path) };
  });
  report['gru'] = summary(pairs.map((p) => outcome(p.clip.label, p.gru, p.clip.gender)));
  report['ensemble'] = summary(pairs.map((p) => outcome(p.clip.label, p.mlp ? p.gru.map((v, l) => (v + p.mlp![l]!) / 2) : p.gru, p.clip.gender)));
  report['ensembleClips'] = pairs.length;
}
process.stdout.write(`${JSON.stringify(report)}\n`);
