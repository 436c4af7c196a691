/**
 * A probe, not a model kind: would another network over the GRU member's input do better?
 * It trains, on one speaker fold, the GRU recipe's data (63 steps of the prosody frame, or
 * of another preset's with `--features`; noise and telephone copies, balanced, early
 * stopping with patience 5 on the same validation speakers) through one of three
 * networks, and measures the held-out speakers as `eval` does a model without a caller
 * baseline (a clip's verdict is the frame-weighted mean of its windows' probabilities):
 *   - `last`: the recipe, 2×GRU32 and its last state (the control);
 *   - `attention`: the same GRUs, their states pooled by a learned attention over time;
 *   - `conv`: a small 1-D convolutional front end (2 × 32 filters of 5 steps, ReLU, as
 *     step stacking and a dense layer), pooled by mean and max over time.
 * Nothing it trains is exported.
 *
 *   node dist/experiments/probe-sequence-heads.js --data ../shared/data/cremad --fold 0/5 --head attention
 */
import * as tf from '@tensorflow/tfjs';
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { argMax } from '../src/model/classifier.js';
import { sequenceInput } from '../src/model/gru/sequence-input.js';
import type { ClipWindows } from '../src/training/clip-windows.js';
import { FEATURE_PRESETS } from '../src/training/feature-presets.js';
import { oversampleToBalance } from '../src/training/knn-trainer.js';
import { buildGruNetwork, fitSequenceNormaliser, stepsFor } from '../src/training/train-gru.js';
import { fitWithEarlyStopping, loadSequenceProbeFold } from './sequence-probe.js';

process.on('uncaughtException', (error) => {
  process.stderr.write(`probe-sequence-heads: ${error.message}\n`);
  process.exit(2);
});

const HEADS = ['last', 'attention', 'conv'] as const;
type Head = (typeof HEADS)[number];

const opts = exitTwoOnUsageError(new Command())
  .name('probe-sequence-heads')
  .description('Probe: the GRU recipe\'s input through another network (last state, attention pooling, a convolutional front end) on one speaker fold; nothing is exported')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .option('--fold <i/k>', 'speaker fold to test on', '0/5')
  .option('--seed <n>', 'seed of the split (as cross-validate)', (v) => Number.parseInt(v, 10), 1)
  .addOption(new Option('--head <kind>', 'network over the steps').choices(HEADS).default('attention'))
  .addOption(new Option('--features <preset>', 'frame features').choices(Object.keys(FEATURE_PRESETS)).default('prosody'))
  .option('--epochs <n>', 'most epochs (patience 5)', (v) => Number.parseInt(v, 10), 25)
  .option('--cache <dir>', 'feature cache', 'var/cache/features')
  .parse()
  .opts<{ data: string[]; fold: string; seed: number; head: Head; features: keyof typeof FEATURE_PRESETS; epochs: number; cache: string }>();

const log = (line: string) => process.stderr.write(`${line}\n`);
const features = FEATURE_PRESETS[opts.features];
const { split, set, test } = await loadSequenceProbeFold({ ...opts, features, log });

const labels = set.labels;
const steps = stepsFor(features);
const dim = set.train[0]!.dim;
const normaliser = fitSequenceNormaliser(set.train, features);

function tensorise(items: ClipWindows[]): { x: Float32Array; y: Int32Array; count: number } {
  const count = items.reduce((n, it) => n + it.windows.length, 0);
  const x = new Float32Array(count * steps * dim);
  const y = new Int32Array(count);
  let r = 0;
  for (const it of items)
    for (const w of it.windows) {
      sequenceInput(w, w.length / dim, dim, features, normaliser, steps, x.subarray(r * steps * dim, (r + 1) * steps * dim));
      y[r++] = labels.indexOf(it.clip.label);
    }
  return { x, y, count };
}

/**
 * Each step with its neighbours side by side (zeros past either end): with a dense layer
 * after it, a 'same' 1-D convolution. The wasm backend has no gradient kernel for conv1d;
 * pad, slice and concat it has.
 */
class StackSteps extends tf.layers.Layer {
  static readonly className = 'StackSteps';
  constructor(private readonly width: number) {
    super({});
  }
  override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = shape as tf.Shape;
    return [s[0]!, s[1]!, s[2]! * this.width];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor3D;
      const half = (this.width - 1) / 2;
      const padded = tf.pad(x, [[0, 0], [half, half], [0, 0]]);
      const parts = Array.from({ length: this.width }, (_, o) => tf.slice(padded, [0, o, 0], [-1, x.shape[1], -1]));
      return tf.concat(parts, 2);
    });
  }
}

/** The probe's networks; `last` is the shipped recipe's. */
function buildNetwork(head: Head, seed: number): tf.LayersModel {
  if (head === 'last') return buildGruNetwork(steps, dim, [32, 32], labels.length, seed);
  const glorot = (s: number) => tf.initializers.glorotUniform({ seed: seed + s });
  const input = tf.input({ shape: [steps, dim] });
  let pooled: tf.SymbolicTensor;
  if (head === 'attention') {
    let h = input as tf.SymbolicTensor;
    for (const i of [0, 1]) h = tf.layers.gru({ units: 32, returnSequences: true, recurrentActivation: 'sigmoid', dropout: 0.2, kernelInitializer: glorot(i), recurrentInitializer: glorot(100 + i) }).apply(h) as tf.SymbolicTensor;
    // One score per step (a tanh layer, then a linear one, so scores are not bounded), a
    // softmax over time, then the states' weighted sum. tfjs takes a softmax over the last
    // axis only, hence the permute to 1 × steps.
    const hidden = tf.layers.dense({ units: 16, activation: 'tanh', kernelInitializer: glorot(400) }).apply(h) as tf.SymbolicTensor;
    const score = tf.layers.dense({ units: 1, kernelInitializer: glorot(401) }).apply(hidden) as tf.SymbolicTensor;
    const weights = tf.layers.softmax({ axis: -1 }).apply(tf.layers.permute({ dims: [2, 1] }).apply(score) as tf.SymbolicTensor) as tf.SymbolicTensor;
    pooled = tf.layers.flatten().apply(tf.layers.dot({ axes: [2, 1] }).apply([weights, h]) as tf.SymbolicTensor) as tf.SymbolicTensor;
  } else {
    let h = tf.layers.dropout({ rate: 0.2 }).apply(input) as tf.SymbolicTensor;
    // A convolution as its im2col: 5 neighbouring steps side by side, then a dense layer.
    for (const i of [0, 1]) h = tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: glorot(i) }).apply(new StackSteps(5).apply(h) as tf.SymbolicTensor) as tf.SymbolicTensor;
    const mean = tf.layers.globalAveragePooling1d().apply(h) as tf.SymbolicTensor;
    const max = tf.layers.globalMaxPooling1d().apply(h) as tf.SymbolicTensor;
    pooled = tf.layers.concatenate().apply([mean, max]) as tf.SymbolicTensor;
  }
  // Seeded as the recipe's head dropout is (a fixed mask, see buildGruNetwork), so the
  // comparison with `last` is of the pooling alone.
  const dropped = tf.layers.dropout({ rate: 0.3, seed: seed + 200 }).apply(pooled) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: labels.length, activation: 'softmax', kernelInitializer: glorot(300) }).apply(dropped) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output });
}

const train = tensorise(oversampleToBalance(set.train, seededRandom(opts.seed)));
const val = tensorise(set.validation);
log(`${opts.head} over ${steps} steps × ${dim}; ${train.count} training windows, ${val.count} validation windows`);

const model = buildNetwork(opts.head, opts.seed);
model.compile({ optimizer: tf.train.adam(0.002), loss: 'categoricalCrossentropy' });
const xVal = tf.tensor3d(val.x, [val.count, steps, dim]);
const yVal = tf.oneHot(tf.tensor1d(val.y, 'int32'), labels.length);
const xAll = tf.tensor3d(train.x, [train.count, steps, dim]);
const yAll = tf.tensor1d(train.y, 'int32');
const t0 = Date.now();
const best = await fitWithEarlyStopping(model, xAll, yAll, xVal, yVal, labels.length, { maxEpochs: opts.epochs, patience: 5, batchSize: 64, shuffle: seededRandom(opts.seed + 7), log });

/** Clip accuracy on the held-out speakers; clips without a speech window count as errors, as in eval. */
function accuracy(): number {
  let right = 0;
  const x = new Float32Array(steps * dim);
  for (const it of test) {
    const sum = new Float64Array(labels.length);
    for (const w of it.windows) {
      sequenceInput(w, w.length / dim, dim, features, normaliser, steps, x);
      const p = tf.tidy(() => (model.predict(tf.tensor3d(x, [1, steps, dim])) as tf.Tensor).dataSync());
      const frames = w.length / dim;
      p.forEach((v, l) => (sum[l]! += v * frames));
    }
    if (labels[argMax(sum)] === it.clip.label) right++;
  }
  return right / split.test.length;
}

process.stdout.write(`${JSON.stringify({ fold: opts.fold, head: opts.head, features: opts.features, bestEpoch: best.epoch, accuracy: +accuracy().toFixed(4), trainSeconds: Math.round((Date.now() - t0) / 1000), testClips: split.test.length })}\n`);
