import type { FeatureConfig } from '../../features/feature-config.js';
import { FUNCTIONAL_STATISTICS } from '../../features/functionals.js';
import { Normaliser, type NormaliserJson } from '../../features/normaliser.js';
import type { ManifestDraft } from '../bundle-manifest.js';
import type { Emotion } from '../emotions.js';
import { tf } from '../tf-backend.js';
import { encodeMlpWeights, type DenseLayer, type MlpWeights } from './mlp-weights.js';

export const MLP_WEIGHTS_FILE = 'weights.i8';

export interface MlpExportOptions {
  name: string;
  version: string;
  labels: Emotion[];
  features: FeatureConfig;
  normaliser: NormaliserJson | Normaliser;
  /** Set when the input is the functionals and their copy relative to a caller baseline of this many windows. */
  callBaseline?: { windows: number };
  metrics: Record<string, unknown>;
  description?: string;
  /** Standardised model inputs (functionals), as `PooledMlpClassifier.modelInput` makes them. */
  selfTestInputs: Float32Array[];
}

/**
 * The dense layers of a trained member, checked to be what the bundle format holds: Dense
 * layers with biases, ReLU on all but the last, softmax on the last; dropout layers (which
 * only act in training) are passed over, anything else is refused.
 */
export function denseLayersOfModel(model: tf.LayersModel, member: number): DenseLayer[] {
  const dense = model.layers.filter((l) => l.getClassName() !== 'Dropout');
  const refuse = (what: string): never => {
    throw new Error(`exportMlpBundle: member ${member} ${what}; the bundle format holds Dense ReLU layers and a Dense softmax head (dropout allowed in training)`);
  };
  if (dense.length === 0) refuse('has no layers');
  return dense.map((layer, i) => {
    const c = layer.getConfig();
    if (layer.getClassName() !== 'Dense') refuse(`has a ${layer.getClassName()} layer`);
    const want = i === dense.length - 1 ? 'softmax' : 'relu';
    if (c['activation'] !== want) refuse(`layer ${i} has activation ${String(c['activation'])}, expected ${want}`);
    if (c['useBias'] === false) refuse(`layer ${i} has no bias`);
    const [kernel, bias] = layer.getWeights();
    return { rows: kernel!.shape[0]!, cols: kernel!.shape[1]!, kernel: kernel!.dataSync() as Float32Array, bias: bias!.dataSync() as Float32Array };
  });
}

/** A member as TensorFlow.js layers, for reference outputs: the arithmetic every runtime is held to. */
export function buildTfMlpMember(layers: readonly DenseLayer[]): tf.Sequential {
  const model = tf.sequential();
  layers.forEach((l, i) => model.add(tf.layers.dense({ units: l.cols, activation: i === layers.length - 1 ? 'softmax' : 'relu', kernelInitializer: 'zeros', ...(i === 0 ? { inputShape: [l.rows] } : {}) })));
  const tensors = layers.flatMap((l) => [tf.tensor2d(l.kernel, [l.rows, l.cols]), tf.tensor1d(l.bias)]);
  model.setWeights(tensors);
  tf.dispose(tensors);
  return model;
}

/** A bag on TensorFlow.js, its members' outputs averaged: the reference a bag's self-test expectations come from. */
export function tfMlpBag(w: MlpWeights): { predict(input: Float32Array): number[]; dispose(): void } {
  const members = w.members.map(buildTfMlpMember);
  return {
    predict: (input) =>
      Array.from(tf.tidy(() => {
        const x = tf.tensor2d(input, [1, w.inputDim]);
        return tf.addN(members.map((m) => m.predict(x) as tf.Tensor)).div(members.length).dataSync();
      })),
    dispose: () => members.forEach((m) => m.dispose()),
  };
}

/**
 * An MLP bundle (manifest draft and files, for `writeBundle`) from the trained members of
 * a bag. Weights ship as int8 with per-column scales; the self-test expectations are the
 * mean of TensorFlow.js's outputs on the DEQUANTISED members, so the JS runtime is held to
 * the bundle, not to the float models it came from.
 */
export function exportMlpBundle(members: tf.LayersModel[], opts: MlpExportOptions): { draft: ManifestDraft; files: Record<string, Uint8Array> } {
  const layers = members.map((m, i) => denseLayersOfModel(m, i));
  const first = layers[0]!;
  const inputDim = first[0]!.rows;
  const hidden = first.slice(0, -1).map((l) => l.cols);
  layers.forEach((ls, i) => {
    const shape = ls.map((l) => `${l.rows}×${l.cols}`).join(',');
    if (shape !== first.map((l) => `${l.rows}×${l.cols}`).join(',')) throw new Error(`exportMlpBundle: member ${i} is ${shape}, member 0 another shape: a bag's members share one architecture`);
  });
  if (first[first.length - 1]!.cols !== opts.labels.length) throw new Error(`exportMlpBundle: the head has ${first[first.length - 1]!.cols} outputs for ${opts.labels.length} labels`);
  const normaliser = opts.normaliser instanceof Normaliser ? opts.normaliser.toJSON() : opts.normaliser;
  if (normaliser.mean.length !== inputDim) throw new Error(`exportMlpBundle: normaliser has ${normaliser.mean.length} dimensions, the model input ${inputDim}`);
  const weights: MlpWeights = { inputDim, hidden, labels: opts.labels.length, members: layers };
  const { bytes, tensors, dequantised } = encodeMlpWeights(weights);
  const shipped = tfMlpBag(dequantised);
  const selfTest = opts.selfTestInputs.map((input, i) => {
    if (input.length !== inputDim) throw new Error(`exportMlpBundle: selfTestInputs[${i}] has ${input.length} values, expected ${inputDim}`);
    return { input: Array.from(input), expected: shipped.predict(input) };
  });
  shipped.dispose();
  const draft: ManifestDraft = {
    name: opts.name,
    version: opts.version,
    kind: 'mlp',
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    labels: opts.labels,
    features: opts.features,
    input: 'pooled_functionals',
    normaliser,
    metrics: opts.metrics,
    createdAt: new Date().toISOString(),
    selfTest,
    mlp: {
      members: members.length,
      hidden,
      activation: 'relu',
      head: { activation: 'softmax' },
      pooling: { statistics: [...FUNCTIONAL_STATISTICS], voicedShare: true },
      ...(opts.callBaseline ? { callBaseline: opts.callBaseline } : {}),
      inputDim,
      weightsFile: MLP_WEIGHTS_FILE,
      tensors,
    },
  };
  return { draft, files: { [MLP_WEIGHTS_FILE]: bytes } };
}
