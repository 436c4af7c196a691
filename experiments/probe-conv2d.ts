/**
 * A probe, not a model kind (issue #14): does a small 2-D convolutional network over
 * log-mel patches beat the shipped MLP recipe on speaker-disjoint 6-class accuracy? It
 * trains, on one speaker fold, the sequence probes' data (noise and telephone copies,
 * balanced, early stopping on the same validation speakers) with a frame of 40 log-mel
 * bands alone (`log-mel`, the default config's bands at its 3-frame stride: a 3 s window
 * is a patch of 63 steps × 40 bands, each band standardised on the training rows) through
 *   two blocks of a 3×3 convolution (ReLU) and a 2×2 max pool, a global average pool,
 *   dropout and a softmax over the labels,
 * and measures the held-out speakers as probe-sequence-heads does (a clip's verdict is
 * the frame-weighted mean of its windows' probabilities), clean and, unless
 * `--no-telephone`, through the telephone band of `eval --channel telephone`.
 * Nothing it trains is exported.
 *
 *   node dist/experiments/probe-conv2d.js --data ../shared/data/cremad ../shared/data/cremad-extra --fold 0/5
 */
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import type { LabelledClip } from '../src/datasets/labelled-clip.js';
import { seededRandom, shuffleInPlace } from '../src/datasets/seeded-random.js';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../src/features/feature-config.js';
import { argMax } from '../src/model/classifier.js';
import { sequenceInput } from '../src/model/gru/sequence-input.js';
import { loadMono, streamWindows } from '../src/pipeline/file-features.js';
import { telephoneBand } from '../src/training/augment.js';
import type { ClipWindows } from '../src/training/clip-windows.js';
import { oversampleToBalance } from '../src/training/knn-trainer.js';
import { fitSequenceNormaliser, stepsFor } from '../src/training/train-gru.js';
import { fitWithEarlyStopping, loadSequenceProbeFold } from './sequence-probe.js';

process.on('uncaughtException', (error) => {
  process.stderr.write(`probe-conv2d: ${error.message}\n`);
  process.exit(2);
});

/** The default config's 40 log-mel bands and nothing else, at the sequence presets' stride. */
const LOG_MEL: FeatureConfig = { ...DEFAULT_FEATURE_CONFIG, features: ['log_mel'], sequenceStride: 3 };

const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
  return n;
};
const opts = exitTwoOnUsageError(new Command())
  .name('probe-conv2d')
  .description('Probe: a small 2-D convolutional network over log-mel patches of each 3 s window, on one speaker fold, clean and telephone band; nothing is exported')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .option('--fold <i/k>', 'speaker fold to test on', '0/5')
  .option('--seed <n>', 'seed of the split (as cross-validate)', (v) => Number.parseInt(v, 10), 1)
  .option('--filters <a,b>', 'filters of the two 3×3 convolutions', (v) => v.split(',').map((f) => Number.parseInt(f, 10)), [8, 16])
  .option('--epochs <n>', 'most epochs', (v) => Number.parseInt(v, 10), 25)
  .option('--patience <n>', 'epochs past the best validation loss before stopping', (v) => Number.parseInt(v, 10), 5)
  .option('--batch-size <n>', 'training batch', (v) => Number.parseInt(v, 10), 64)
  .option('--learning-rate <x>', 'Adam learning rate', positive, 0.002)
  .option('--max-train-windows <n>', 'a seeded subsample of the balanced training windows, to fit a time budget', (v) => Number.parseInt(v, 10))
  .option('--no-telephone', 'skip the telephone-band test (it extracts the held-out clips again, uncached)')
  .option('--cache <dir>', 'feature cache', 'var/cache/features')
  .parse()
  .opts<{ data: string[]; fold: string; seed: number; filters: number[]; epochs: number; patience: number; batchSize: number; learningRate: number; maxTrainWindows?: number; telephone: boolean; cache: string }>();

if (opts.filters.length !== 2 || opts.filters.some((f) => !(f > 0))) throw new Error(`--filters takes two positive counts, got ${opts.filters.join(',')}`);

const log = (line: string) => process.stderr.write(`${line}\n`);
const wall0 = Date.now();
const features = LOG_MEL;
const { split, set, test } = await loadSequenceProbeFold({ ...opts, features, log });

const labels = set.labels;
const steps = stepsFor(features);
const bands = set.train[0]!.dim;
const normaliser = fitSequenceNormaliser(set.train, features);

interface Windows {
  x: Float32Array;
  y: Int32Array;
  count: number;
  /** Index of each window's clip in the list it came from, and its frames (the clip mean's weight). */
  item: Int32Array;
  frames: Float32Array;
}

function tensorise(items: ClipWindows[]): Windows {
  const count = items.reduce((n, it) => n + it.windows.length, 0);
  const w = { x: new Float32Array(count * steps * bands), y: new Int32Array(count), count, item: new Int32Array(count), frames: new Float32Array(count) };
  let r = 0;
  items.forEach((it, i) => {
    for (const rows of it.windows) {
      sequenceInput(rows, rows.length / bands, bands, features, normaliser, steps, w.x.subarray(r * steps * bands, (r + 1) * steps * bands));
      w.y[r] = labels.indexOf(it.clip.label);
      w.item[r] = i;
      w.frames[r++] = rows.length / bands;
    }
  });
  return w;
}

/** A seeded subset of `n` windows (in their original order), for `--max-train-windows`. */
function subsample(w: Windows, n: number, random: () => number): Windows {
  if (n >= w.count) return w;
  const keep = shuffleInPlace(Array.from({ length: w.count }, (_, i) => i), random).slice(0, n).sort((a, b) => a - b);
  const size = steps * bands;
  const out = { x: new Float32Array(n * size), y: new Int32Array(n), count: n, item: new Int32Array(n), frames: new Float32Array(n) };
  keep.forEach((k, r) => {
    out.x.set(w.x.subarray(k * size, (k + 1) * size), r * size);
    out.y[r] = w.y[k]!;
    out.item[r] = w.item[k]!;
    out.frames[r] = w.frames[k]!;
  });
  return out;
}

/**
 * Every position's 3×3 neighbourhood side by side on the channel axis (zeros past the
 * edges): with a dense layer after it, a 'same' 3×3 convolution. The wasm backend has no
 * Conv2DBackpropFilter kernel, so tf.layers.conv2d cannot train on it; pad, slice and
 * concat it has, and the dense layer is a matrix product it runs fast.
 */
class Patches3x3 extends tf.layers.Layer {
  static readonly className = 'Patches3x3';
  override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = shape as tf.Shape;
    return [s[0]!, s[1]!, s[2]!, s[3]! * 9];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor4D;
      const [, h, w] = x.shape;
      const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
      const parts: tf.Tensor[] = [];
      for (const dy of [0, 1, 2]) for (const dx of [0, 1, 2]) parts.push(tf.slice(padded, [0, dy, dx, 0], [-1, h, w, -1]));
      return tf.concat(parts, 3);
    });
  }
}

function buildNetwork(filters: number[], seed: number): tf.LayersModel {
  const glorot = (s: number) => tf.initializers.glorotUniform({ seed: seed + s });
  const input = tf.input({ shape: [steps, bands] });
  let h = tf.layers.reshape({ targetShape: [steps, bands, 1] }).apply(input) as tf.SymbolicTensor;
  filters.forEach((units, i) => {
    h = tf.layers.dense({ units, activation: 'relu', kernelInitializer: glorot(i) }).apply(new Patches3x3({}).apply(h) as tf.SymbolicTensor) as tf.SymbolicTensor;
    h = tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }).apply(h) as tf.SymbolicTensor;
  });
  const pooled = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
  // Seeded as the sequence probes' head dropout is.
  const dropped = tf.layers.dropout({ rate: 0.3, seed: seed + 200 }).apply(pooled) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: labels.length, activation: 'softmax', kernelInitializer: glorot(300) }).apply(dropped) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}

const balanced = tensorise(oversampleToBalance(set.train, seededRandom(opts.seed)));
const train = opts.maxTrainWindows === undefined ? balanced : subsample(balanced, opts.maxTrainWindows, seededRandom(opts.seed + 13));
const val = tensorise(set.validation);
const model = buildNetwork(opts.filters, opts.seed);
log(`conv2d ${opts.filters.join('→')} over ${steps} steps × ${bands} log-mel bands (${model.countParams()} weights); ${train.count} of ${balanced.count} training windows, ${val.count} validation windows`);

model.compile({ optimizer: tf.train.adam(opts.learningRate), loss: 'categoricalCrossentropy' });
const xVal = tf.tensor3d(val.x, [val.count, steps, bands]);
const yVal = tf.oneHot(tf.tensor1d(val.y, 'int32'), labels.length);
const xAll = tf.tensor3d(train.x, [train.count, steps, bands]);
const yAll = tf.tensor1d(train.y, 'int32');
const t0 = Date.now();
const best = await fitWithEarlyStopping(model, xAll, yAll, xVal, yVal, labels.length, { maxEpochs: opts.epochs, patience: opts.patience, batchSize: opts.batchSize, shuffle: seededRandom(opts.seed + 7), log });
const trainSeconds = (Date.now() - t0) / 1000;
// The loop stops after the epoch `patience` past the best one, or at the last.
const epochsRun = Math.min(opts.epochs, best.epoch + opts.patience);
tf.dispose([xVal, yVal, xAll, yAll]);

/** Clip accuracy on the held-out speakers; clips without a speech window count as errors, as in eval. */
function accuracy(items: ClipWindows[]): number {
  const w = tensorise(items);
  const sums = items.map(() => new Float64Array(labels.length));
  for (let at = 0; at < w.count; at += 256) {
    const n = Math.min(256, w.count - at);
    const p = tf.tidy(() => (model.predict(tf.tensor3d(w.x.subarray(at * steps * bands, (at + n) * steps * bands), [n, steps, bands])) as tf.Tensor).dataSync());
    for (let r = 0; r < n; r++) for (let l = 0; l < labels.length; l++) sums[w.item[at + r]!]![l]! += p[r * labels.length + l]! * w.frames[at + r]!;
  }
  const right = items.filter((it, i) => labels[argMax(sums[i]!)] === it.clip.label).length;
  return right / split.test.length;
}

/** The held-out clips through `eval --channel telephone`'s band (no cache: eval keeps none for it). */
async function telephoneWindows(clips: LabelledClip[]): Promise<ClipWindows[]> {
  const out: ClipWindows[] = [];
  for (const clip of clips) {
    const samples = telephoneBand((await loadMono(clip.path, features.sampleRate)).samples, features.sampleRate);
    const windows: Float32Array[] = [];
    streamWindows(samples, { features, windowing: DEFAULT_WINDOWING }, (w) => windows.push(w.rows.slice(0, w.frames * w.dim)));
    if (windows.length > 0) out.push({ clip, windows, dim: bands, variant: 'telephone' });
  }
  return out;
}

const clean = accuracy(test);
const telephone = opts.telephone ? accuracy(await telephoneWindows(split.test)) : undefined;
process.stdout.write(
  `${JSON.stringify({
    fold: opts.fold,
    filters: opts.filters,
    weights: model.countParams(),
    trainWindows: train.count,
    bestEpoch: best.epoch,
    epochs: epochsRun,
    accuracy: +clean.toFixed(4),
    ...(telephone === undefined ? {} : { telephone: +telephone.toFixed(4) }),
    windowsPerSecond: Math.round((train.count * epochsRun) / trainSeconds),
    trainSeconds: Math.round(trainSeconds),
    wallSeconds: Math.round((Date.now() - wall0) / 1000),
    testClips: split.test.length,
  })}\n`,
);
