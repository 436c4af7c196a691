/** What the sequence probes (probe-gru-baseline, probe-sequence-heads, probe-conv2d) share: their fold and their training loop. */
import * as tf from '@tensorflow/tfjs';
import { foldOf, parseFold, scanAll } from '../src/datasets/select-clips.js';
import { seededRandom, shuffleInPlace } from '../src/datasets/seeded-random.js';
import type { FeatureConfig } from '../src/features/feature-config.js';
import { parseAugmentations } from '../src/training/augment.js';
import { extractClipWindows } from '../src/training/clip-windows.js';
import { useTrainingBackend } from '../src/training/train-gru.js';
import { buildTrainingSet } from '../src/training/training-set.js';

/**
 * One speaker fold as the GRU recipe trains on it: the training side with noise and
 * telephone copies and its validation speakers, the held-out clips' windows, the training
 * backend, and Math.random seeded for the dropout masks (a script: nothing else relies on it).
 */
export async function loadSequenceProbeFold(options: { data: string[]; fold: string; seed: number; cache: string; features: FeatureConfig; log: (line: string) => void }) {
  const { features, seed, cache } = options;
  const split = foldOf(await scanAll(options.data, 'auto'), parseFold(options.fold), seed);
  const set = await buildTrainingSet(split.train, { features, augmentations: parseAugmentations('noise,telephone'), validationFolds: 5, seed, cacheDir: cache, log: options.log });
  const test = await extractClipWindows(split.test, { features, cacheDir: cache });
  await useTrainingBackend();
  Math.random = seededRandom(seed + 11);
  return { split, set, test };
}

export interface ProbeFitOptions {
  maxEpochs: number;
  /** Epochs past the best validation loss before stopping. */
  patience: number;
  batchSize: number;
  /** The shuffle's own seeded random: tfjs's would draw from Math.random, shared with the dropout masks. */
  shuffle: () => number;
  log: (line: string) => void;
}

/**
 * The sequence probes' training loop: one epoch at a time over a seeded shuffle, the
 * validation loss after each, and the weights of the best epoch put back at the end (as
 * `train --kind gru` does), so a probe measures its network the way the recipe is measured.
 * `labels` are class indices; returns the best epoch (from 1) and its validation loss.
 */
export async function fitWithEarlyStopping(model: tf.LayersModel, x: tf.Tensor, labels: tf.Tensor1D, xVal: tf.Tensor, yVal: tf.Tensor, classes: number, options: ProbeFitOptions): Promise<{ epoch: number; loss: number }> {
  const order = Array.from({ length: x.shape[0] }, (_, i) => i);
  const t0 = Date.now();
  let best = { epoch: 0, loss: Infinity, weights: [] as tf.Tensor[] };
  for (let epoch = 1; epoch <= options.maxEpochs && epoch - best.epoch <= options.patience; epoch++) {
    shuffleInPlace(order, options.shuffle);
    const index = tf.tensor1d(order, 'int32');
    const [xs, ys] = [tf.gather(x, index), tf.tidy(() => tf.oneHot(tf.gather(labels, index), classes))];
    await model.fit(xs, ys, { epochs: 1, batchSize: options.batchSize, shuffle: false, verbose: 0 });
    tf.dispose([index, xs, ys]);
    const loss = tf.tidy(() => (model.evaluate(xVal, yVal, { batchSize: 256 }) as tf.Scalar).dataSync()[0]!);
    if (loss < best.loss) {
      best.weights.forEach((w) => w.dispose());
      best = { epoch, loss, weights: model.getWeights().map((w) => w.clone()) };
    }
    options.log(`epoch ${epoch} val_loss ${loss.toFixed(3)} (best ${best.loss.toFixed(3)} @${best.epoch}) ${Math.round((Date.now() - t0) / 1000)} s`);
  }
  model.setWeights(best.weights);
  best.weights.forEach((w) => w.dispose());
  return { epoch: best.epoch, loss: best.loss };
}
