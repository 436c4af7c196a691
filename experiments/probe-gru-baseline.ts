/**
 * A probe, not a model kind: does the GRU member gain from a caller baseline as the MLP
 * member did? It trains the shipped GRU recipe (2×GRU32 over the prosody frame, 63 steps,
 * early stopping) on one speaker fold, with each step given beside its difference from the
 * mean frame of a few other windows of the same speaker (as `--call-baseline` does for the
 * MLP's functionals), and measures the held-out speakers the way `eval` does: each clip after
 * 3 other clips of its speaker in the same call, and each clip opening a call. With
 * `--baseline-windows 0` it is the recipe itself through the same loop: the control.
 * Nothing it trains is exported.
 *
 *   node dist/experiments/probe-gru-baseline.js --data ../shared/data/cremad --fold 0/5 [--baseline-windows 3]
 */
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { seededRandom, shuffleInPlace, stringSeed } from '../src/datasets/seeded-random.js';
import type { Normaliser } from '../src/features/normaliser.js';
import { argMax } from '../src/model/classifier.js';
import { sequenceInput } from '../src/model/gru/sequence-input.js';
import { sequenceLength } from '../src/features/sequence.js';
import { channelOf, type ClipWindows } from '../src/training/clip-windows.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { oversampleToBalance } from '../src/training/knn-trainer.js';
import { buildGruNetwork, fitSequenceNormaliser, stepsFor } from '../src/training/train-gru.js';
import { fitWithEarlyStopping, loadSequenceProbeFold } from './sequence-probe.js';

process.on('uncaughtException', (error) => {
  process.stderr.write(`probe-gru-baseline: ${error.message}\n`);
  process.exit(2);
});

const opts = exitTwoOnUsageError(new Command())
  .name('probe-gru-baseline')
  .description('Probe: does the GRU member gain from a caller baseline? Trains the shipped GRU recipe on one speaker fold with and without one; nothing is exported')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .option('--fold <i/k>', 'speaker fold to test on', '0/5')
  .option('--seed <n>', 'seed of the split (as cross-validate)', (v) => Number.parseInt(v, 10), 1)
  .option('--baseline-windows <n>', 'windows in the caller baseline; 0 = the recipe without one', (v) => Number.parseInt(v, 10), 3)
  .option('--epochs <n>', 'most epochs (patience 5)', (v) => Number.parseInt(v, 10), 25)
  .option('--cache <dir>', 'feature cache', 'var/cache/features')
  .parse()
  .opts<{ data: string[]; fold: string; seed: number; baselineWindows: number; epochs: number; cache: string }>();

const log = (line: string) => process.stderr.write(`${line}\n`);
const features = FEATURE_PRESETS.prosody;
const { split, set, test } = await loadSequenceProbeFold({ ...opts, features, log });

const K = opts.baselineWindows;
const labels = set.labels;
const steps = stepsFor(features);
const dim = set.train[0]!.dim;
const width = K > 0 ? 2 * dim : dim;
const normaliser = fitSequenceNormaliser(set.train, features);

/** A window's mean frame vector, standardised: what a baseline averages. */
function meanFrame(w: Float32Array, n: Normaliser): Float64Array {
  const frames = w.length / dim;
  const m = new Float64Array(dim);
  for (let f = 0; f < frames; f++) for (let d = 0; d < dim; d++) m[d]! += w[f * dim + d]! / frames;
  const out = Float32Array.from(m);
  n.apply(out);
  return Float64Array.from(out);
}

/** Model input of one window: the standardised steps, then (with a baseline) each non-padding step minus the baseline. */
function inputOf(w: Float32Array, baseline: Float64Array | null, out: Float32Array): void {
  // A reused buffer: the padding steps' relative part must be zero, as in training.
  out.fill(0);
  const seq = new Float32Array(steps * dim);
  sequenceInput(w, w.length / dim, dim, features, normaliser, steps, seq);
  const padding = Math.max(0, steps - sequenceLength(w.length / dim, features.sequenceStride));
  for (let t = 0; t < steps; t++) {
    out.set(seq.subarray(t * dim, (t + 1) * dim), t * width);
    if (K > 0 && baseline && t >= padding) for (let d = 0; d < dim; d++) out[t * width + dim + d] = seq[t * dim + d]! - baseline[d]!;
  }
}

/** Baselines as training draws them for the MLP: 0…K windows of the speaker's other clips on the same channel, half of them full. */
function trainingBaselines(items: ClipWindows[], random: () => number): (Float64Array | null)[] {
  const pools = new Map<string, { path: string; mean: Float64Array }[]>();
  for (const it of new Set(items)) {
    const key = `${it.clip.speaker}/${channelOf(it)}`;
    pools.set(key, [...(pools.get(key) ?? []), ...it.windows.map((w) => ({ path: it.clip.path, mean: meanFrame(w, normaliser) }))]);
  }
  return items.map((it) => {
    const want = random() < 0.5 ? K : Math.floor(random() * K);
    const others = shuffleInPlace((pools.get(`${it.clip.speaker}/${channelOf(it)}`) ?? []).filter((p) => p.path !== it.clip.path), random).slice(0, want);
    if (others.length === 0) return null;
    const b = new Float64Array(dim);
    for (const o of others) o.mean.forEach((v, d) => (b[d]! += v / others.length));
    return b;
  });
}

function tensorise(items: ClipWindows[], baselines: (Float64Array | null)[]): { x: Float32Array; y: Int32Array; count: number } {
  const count = items.reduce((n, it) => n + it.windows.length, 0);
  const x = new Float32Array(count * steps * width);
  const y = new Int32Array(count);
  let r = 0;
  items.forEach((it, i) => {
    for (const w of it.windows) {
      inputOf(w, baselines[i] ?? null, x.subarray(r * steps * width, (r + 1) * steps * width));
      y[r++] = labels.indexOf(it.clip.label);
    }
  });
  return { x, y, count };
}

const random = seededRandom(opts.seed);
const trainItems = oversampleToBalance(set.train, random);
const train = tensorise(trainItems, K > 0 ? trainingBaselines(trainItems, seededRandom(opts.seed + 29)) : trainItems.map(() => null));
const val = tensorise(set.validation, K > 0 ? trainingBaselines(set.validation, seededRandom(opts.seed + 31)) : set.validation.map(() => null));
log(`GRU 32×32 over ${steps} steps × ${width}; ${train.count} training windows, ${val.count} validation windows`);

const model = buildGruNetwork(steps, width, [32, 32], labels.length, opts.seed);
model.compile({ optimizer: tf.train.adam(0.002), loss: 'categoricalCrossentropy' });
const xVal = tf.tensor3d(val.x, [val.count, steps, width]);
const yVal = tf.oneHot(tf.tensor1d(val.y, 'int32'), labels.length);
const xAll = tf.tensor3d(train.x, [train.count, steps, width]);
const yAll = tf.tensor1d(train.y, 'int32');
const best = await fitWithEarlyStopping(model, xAll, yAll, xVal, yVal, labels.length, { maxEpochs: opts.epochs, patience: 5, batchSize: 64, shuffle: seededRandom(opts.seed + 7), log });

/** Clip accuracy on the held-out speakers: each clip after `warmup` other clips of its speaker (their first K windows make the baseline). */
function accuracy(warmup: number): number {
  let right = 0;
  const bySpeaker = new Map<string, ClipWindows[]>();
  for (const it of test) bySpeaker.set(it.clip.speaker, [...(bySpeaker.get(it.clip.speaker) ?? []), it]);
  const x = new Float32Array(steps * width);
  for (const it of test) {
    let baseline: Float64Array | null = null;
    if (K > 0 && warmup > 0) {
      const others = shuffleInPlace((bySpeaker.get(it.clip.speaker) ?? []).filter((o) => o !== it), seededRandom(stringSeed(it.clip.path) ^ opts.seed)).slice(0, warmup);
      const windows = others.flatMap((o) => o.windows).slice(0, K);
      if (windows.length > 0) {
        baseline = new Float64Array(dim);
        for (const w of windows) meanFrame(w, normaliser).forEach((v, d) => (baseline![d]! += v / windows.length));
      }
    }
    const sum = new Float64Array(labels.length);
    for (const w of it.windows) {
      inputOf(w, baseline, x);
      const p = tf.tidy(() => (model.predict(tf.tensor3d(x, [1, steps, width])) as tf.Tensor).dataSync());
      const frames = w.length / dim;
      p.forEach((v, l) => (sum[l]! += v * frames));
    }
    if (labels[argMax(sum)] === it.clip.label) right++;
  }
  // Clips without a speech window count as errors, as in eval.
  return right / split.test.length;
}

process.stdout.write(`${JSON.stringify({ fold: opts.fold, baselineWindows: K, bestEpoch: best.epoch, warm: +accuracy(3).toFixed(4), cold: +accuracy(0).toFixed(4), testClips: split.test.length })}\n`);
