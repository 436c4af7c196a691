import * as tf from '@tensorflow/tfjs';
import { seededRandom, shuffleInPlace } from '../datasets/seeded-random.js';
import { frameVectorSize, type FeatureConfig } from '../features/feature-config.js';
import { FunctionalsPooler } from '../features/functionals.js';
import { fitNormaliser, type Normaliser } from '../features/normaliser.js';
import type { ManifestDraft } from '../model/bundle-manifest.js';
import type { Emotion } from '../model/emotions.js';
import { exportMlpBundle } from '../model/mlp/mlp-export.js';
import { CallerBaseline, mlpInputSize } from '../model/mlp/caller-baseline.js';
import { pitchColumnOf } from '../model/mlp/pooled-mlp-classifier.js';
import { clipOutcomes, type WindowRows } from './clip-outcomes.js';
import { channelOf, type ClipWindows } from './clip-windows.js';
import { computeMetrics, tuneUrgentThreshold, type EvalMetrics } from './evaluation.js';
import { oversampleToBalance } from './knn-trainer.js';
import { useTrainingBackend } from './train-gru.js';
import type { TrainingSet } from './training-set.js';

export interface MlpTrainOptions {
  name: string;
  version: string;
  features: FeatureConfig;
  seed: number;
  urgent: readonly Emotion[];
  /** Hidden ReLU layer widths. */
  hidden: number[];
  /**
   * Windows in a caller baseline (`CallerBaseline`): the bag then sees each window's
   * functionals and the same relative to the mean of a few other windows of the speaker;
   * absent or 0, the functionals alone.
   */
  callBaseline?: number;
  /**
   * Share of items whose baseline comes from clips of their own emotion only, as in a call
   * that is angry (or sad) from its first word; the rest draw from all of the speaker's
   * other clips. Default 0.
   */
  sameEmotionBaselines?: number;
  /** Networks in the bag, each from its own seed. */
  members: number;
  maxEpochs: number;
  batchSize: number;
  /** Epochs without a lower validation loss before a member stops (its best weights are kept). */
  patience?: number;
  learningRate?: number;
  /** L2 penalty on every kernel. */
  l2?: number;
  log?: (line: string) => void;
  /** Called after each epoch of each member: `member` from 1, `epoch` from 1. */
  onEpoch?: (member: number, epoch: number, status: string) => void;
  onDone?: () => void;
  provenance?: Record<string, unknown>;
}

/** Standardised functionals, one row per window, with the clip and speech frames of each. */
interface Rows extends WindowRows {
  x: Float32Array;
  y: Int32Array;
}

/**
 * Functionals of every window of `items`, through the same pooler the classifier runs;
 * with `baselines` (one per item), each row is followed by its copy relative to the
 * item's caller baseline, as `PooledMlpClassifier.predict` lays out a window within a call.
 */
export function functionalsOf(items: readonly ClipWindows[], labels: readonly Emotion[], pooler: FunctionalsPooler, baselines: readonly CallerBaseline[] | null): Rows {
  const count = items.reduce((n, i) => n + i.windows.length, 0);
  const size = pooler.size;
  const width = mlpInputSize(size, baselines !== null);
  const rows: Rows = { x: new Float32Array(count * width), y: new Int32Array(count), clip: new Int32Array(count), frames: new Float32Array(count), count };
  let r = 0;
  items.forEach((item, c) => {
    for (const w of item.windows) {
      const frames = w.length / item.dim;
      pooler.pool(w, frames, rows.x, r * width);
      if (baselines) baselines[c]!.relativeInto(rows.x.subarray(r * width, r * width + size), rows.x, r * width + size);
      rows.y[r] = labels.indexOf(item.clip.label);
      rows.clip[r] = c;
      rows.frames[r] = frames;
      r++;
    }
  });
  return rows;
}

/**
 * A caller baseline for each item, as a call would have built it by the time the item is
 * heard: from 0 to `windows` windows of other clips of the same speaker, heard over the same
 * channel (clean, telephone, noisy: the augmentation's kind), never the clip itself. Half
 * the items get a full baseline, the rest 0…windows−1 windows evenly: most windows of a call
 * come after its baseline is full, and the first few (down to the call's first, with none)
 * must still be judged well. Each copy an oversampled item has draws its own.
 */
export function drawCallerBaselines(items: readonly ClipWindows[], pooler: FunctionalsPooler, windows: number, random: () => number, sameEmotion = 0): CallerBaseline[] {
  const pools = new Map<string, { path: string; label: string; pooled: Float32Array }[]>();
  const seen = new Set<ClipWindows>();
  for (const item of items) {
    // Oversampled copies are the same object: their windows join the pool once.
    if (seen.has(item)) continue;
    seen.add(item);
    const key = `${item.clip.speaker}\u0000${channelOf(item)}`;
    const pool = pools.get(key) ?? [];
    for (const w of item.windows) pool.push({ path: item.clip.path, label: item.clip.label, pooled: pooler.pool(w, w.length / item.dim, new Float32Array(pooler.size)) });
    pools.set(key, pool);
  }
  return items.map((item) => {
    const baseline = new CallerBaseline(null, 'training', pooler.size, windows);
    const want = random() < 0.5 ? windows : Math.floor(random() * windows);
    const same = sameEmotion > 0 && random() < sameEmotion;
    const others = (pools.get(`${item.clip.speaker}\u0000${channelOf(item)}`) ?? []).filter((p) => p.path !== item.clip.path && (!same || p.label === item.clip.label));
    // A partial Fisher–Yates: `want` distinct windows at random.
    for (let i = 0; i < Math.min(want, others.length); i++) {
      const j = i + Math.floor(random() * (others.length - i));
      [others[i], others[j]] = [others[j]!, others[i]!];
      baseline.observe(others[i]!.pooled);
    }
    return baseline;
  });
}

/** One member: input dropout 0.1, hidden ReLU layers with dropout 0.5, softmax head, L2 on every kernel. */
function buildMember(inputDim: number, hidden: readonly number[], classes: number, seed: number, l2: number): tf.Sequential {
  const model = tf.sequential();
  // No layer seeds on dropout: a seeded tfjs dropout layer draws the same mask for every
  // batch. Masks come from Math.random, which fitMlp seeds for the run.
  model.add(tf.layers.dropout({ rate: 0.1, inputShape: [inputDim] }));
  hidden.forEach((units, i) => {
    model.add(tf.layers.dense({ units, activation: 'relu', kernelRegularizer: tf.regularizers.l2({ l2 }), kernelInitializer: tf.initializers.glorotUniform({ seed: seed + i }) }));
    model.add(tf.layers.dropout({ rate: 0.5 }));
  });
  model.add(tf.layers.dense({ units: classes, activation: 'softmax', kernelRegularizer: tf.regularizers.l2({ l2 }), kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 50 }) }));
  return model;
}

export interface FittedMlp {
  members: tf.LayersModel[];
  normaliser: Normaliser;
  validation: EvalMetrics;
  urgentThreshold: number;
  bestEpochs: number[];
  selfTestInputs: Float32Array[];
}

/**
 * Trains a bag of MLPs over window functionals: the normaliser from the (class-balanced)
 * training rows, each member with Adam and early stopping on the validation speakers'
 * loss, the urgent threshold tuned on the bag's validation verdicts. Seeded throughout
 * (the shuffle, the initialisers, and Math.random for the dropout masks), so a rerun
 * with the same seed gives the same bundle.
 */
export async function fitMlp(set: TrainingSet, options: MlpTrainOptions): Promise<FittedMlp> {
  await useTrainingBackend();
  const log = options.log ?? (() => {});
  const labels = set.labels;
  const pooler = new FunctionalsPooler(frameVectorSize(options.features), pitchColumnOf(options.features));
  const baselineWindows = options.callBaseline ?? 0;
  const width = mlpInputSize(pooler.size, baselineWindows > 0);
  const rowsOf = (items: ClipWindows[], seed: number) =>
    functionalsOf(items, labels, pooler, baselineWindows > 0 ? drawCallerBaselines(items, pooler, baselineWindows, seededRandom(seed), options.sameEmotionBaselines ?? 0) : null);
  const train = rowsOf(oversampleToBalance(set.train, seededRandom(options.seed)), options.seed + 29);
  const val = rowsOf(set.validation, options.seed + 31);
  const normaliser = fitNormaliser(train.x, width);
  normaliser.apply(train.x);
  normaliser.apply(val.x);
  log(`MLP bag of ${options.members} × (${[width, ...options.hidden, labels.length].join('→')})${baselineWindows > 0 ? `, caller baseline of ${baselineWindows} windows` : ''}; ${train.count} training windows, ${val.count} validation windows`);

  const xTrain = tf.tensor2d(train.x, [train.count, width]);
  const yTrain = tf.oneHot(tf.tensor1d(train.y, 'int32'), labels.length).toFloat();
  const xVal = tf.tensor2d(val.x, [val.count, width]);
  const yVal = tf.oneHot(tf.tensor1d(val.y, 'int32'), labels.length).toFloat();
  const members: tf.LayersModel[] = [];
  const bestEpochs: number[] = [];
  const mathRandom = Math.random;
  try {
    for (let m = 0; m < options.members; m++) {
      const seed = options.seed + 101 * m;
      Math.random = seededRandom(seed + 13);
      const model = buildMember(width, options.hidden, labels.length, seed, options.l2 ?? 3e-3);
      model.compile({ optimizer: tf.train.adam(options.learningRate ?? 3e-4), loss: 'categoricalCrossentropy' });
      const order = Array.from({ length: train.count }, (_, i) => i);
      const shuffle = seededRandom(seed + 11);
      let best = { loss: Infinity, epoch: 0, weights: [] as tf.Tensor[] };
      for (let epoch = 1; epoch <= options.maxEpochs && epoch - best.epoch <= (options.patience ?? 8); epoch++) {
        // Own seeded shuffle: tfjs's draws from Math.random, shared with the dropout masks.
        shuffleInPlace(order, shuffle);
        const index = tf.tensor1d(order, 'int32');
        const [x, y] = [tf.gather(xTrain, index), tf.gather(yTrain, index)];
        const h = await model.fit(x, y, { epochs: 1, batchSize: options.batchSize, shuffle: false, verbose: 0 });
        tf.dispose([index, x, y]);
        const loss = tf.tidy(() => (model.evaluate(xVal, yVal, { batchSize: 1024 }) as tf.Scalar).dataSync()[0]!);
        if (loss < best.loss) {
          best.weights.forEach((w) => w.dispose());
          best = { loss, epoch, weights: model.getWeights().map((w) => w.clone()) };
        }
        options.onEpoch?.(m + 1, epoch, `loss ${Number(h.history['loss']![0]).toFixed(3)} val_loss ${loss.toFixed(3)} (best ${best.loss.toFixed(3)} @${best.epoch})`);
      }
      model.setWeights(best.weights);
      best.weights.forEach((w) => w.dispose());
      members.push(model);
      bestEpochs.push(best.epoch);
    }
  } finally {
    Math.random = mathRandom;
    tf.dispose([xTrain, yTrain, yVal]);
  }
  options.onDone?.();

  const probs = tf.tidy(() => tf.addN(members.map((m) => m.predict(xVal, { batchSize: 1024 }) as tf.Tensor)).div(members.length).dataSync() as Float32Array);
  xVal.dispose();
  const outcomes = clipOutcomes(set.validation, val, probs, labels);
  const urgentThreshold = tuneUrgentThreshold(outcomes, options.urgent);
  const validation = computeMetrics(outcomes, labels, options.urgent, urgentThreshold);
  log(`best epochs ${bestEpochs.join(', ')}; validation (${set.validation.length} clips): accuracy ${(validation.accuracy * 100).toFixed(1)}% macro-F1 ${validation.macro_f1}; urgent P ≥ ${urgentThreshold}: recall ${validation.urgent.recall} precision ${validation.urgent.precision}`);
  const picks = [...new Set([0, Math.floor(val.count / 3), Math.floor((2 * val.count) / 3), val.count - 1])].filter((r) => r >= 0);
  const selfTestInputs = picks.map((r) => val.x.slice(r * width, (r + 1) * width));
  return { members, normaliser, validation, urgentThreshold, bestEpochs, selfTestInputs };
}

/** `fitMlp`, then the bundle: int8 weights, metrics and self-test vectors. */
export async function trainMlp(set: TrainingSet, options: MlpTrainOptions): Promise<{ draft: ManifestDraft; files: Record<string, Uint8Array>; validation: EvalMetrics }> {
  const fitted = await fitMlp(set, options);
  const width = fitted.normaliser.dim;
  const exported = exportMlpBundle(fitted.members, {
    name: options.name,
    version: options.version,
    labels: set.labels,
    features: options.features,
    normaliser: fitted.normaliser,
    ...(options.callBaseline ? { callBaseline: { windows: options.callBaseline } } : {}),
    description: `MLP bag of ${options.members} (${[width, ...options.hidden, set.labels.length].join('→')}, ReLU, softmax) over window functionals${options.callBaseline ? `, as they are and relative to the caller's first ${options.callBaseline} windows` : ''}, int8 weights`,
    metrics: {
      ...(options.provenance ?? {}),
      urgentThreshold: fitted.urgentThreshold,
      urgentLabels: options.urgent,
      validation: { speakers: set.validationSpeakers, clips: set.validation.length, accuracy: fitted.validation.accuracy, macro_f1: fitted.validation.macro_f1, urgent: fitted.validation.urgent },
      bestEpochs: fitted.bestEpochs,
    },
    selfTestInputs: fitted.selfTestInputs,
  });
  fitted.members.forEach((m) => m.dispose());
  return { ...exported, validation: fitted.validation };
}
