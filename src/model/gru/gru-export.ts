import type { FeatureConfig } from '../../features/feature-config.js';
import { Normaliser, type NormaliserJson } from '../../features/normaliser.js';
import type { ManifestDraft } from '../bundle-manifest.js';
import type { Emotion } from '../emotions.js';
import { tf } from '../tf-backend.js';
import { encodeGruWeights, GRU_CELL, type GruLayerWeights, type GruWeights } from './gru-weights.js';
import { buildTfGruModel } from './tfjs-gru-classifier.js';

export const GRU_WEIGHTS_FILE = 'weights.i8';

export interface GruExportOptions {
  name: string;
  version: string;
  labels: Emotion[];
  features: FeatureConfig;
  /** The training normaliser, as an instance or as its manifest JSON. */
  normaliser: NormaliserJson | Normaliser;
  steps: number;
  metrics: Record<string, unknown>;
  description?: string;
  /** Normalised model inputs (steps × dim each), as `sequenceInput` makes them. */
  selfTestInputs: Float32Array[];
}

type LayerConfig = Record<string, unknown>;

function refuse(layer: number, what: string): never {
  throw new Error(`exportGruBundle: layer ${layer} ${what}; the bundle format holds tf.sequential([GRU…, Dense softmax]) with sigmoid gates, tanh, biases, no dropout at inference`);
}

/** The float weights of a trained model, after checking it is the architecture the bundle format describes. */
export function gruWeightsOfModel(model: tf.LayersModel, steps: number, labels: number): GruWeights {
  const layers = model.layers;
  if (layers.length < 2) refuse(0, `is one of ${layers.length} layers`);
  const grus: GruLayerWeights[] = [];
  let inputDim = 0;
  for (let i = 0; i < layers.length - 1; i++) {
    const layer = layers[i]!;
    const c = layer.getConfig() as LayerConfig;
    if (layer.getClassName() !== 'GRU') refuse(i, `is a ${layer.getClassName()}, not a GRU`);
    if (c['recurrentActivation'] !== 'sigmoid') refuse(i, `has recurrentActivation ${String(c['recurrentActivation'])}`);
    if (c['activation'] !== 'tanh') refuse(i, `has activation ${String(c['activation'])}`);
    if (c['useBias'] === false) refuse(i, 'has no bias');
    if (c['resetAfter'] === true) refuse(i, 'uses reset_after');
    if (c['goBackwards'] === true || c['stateful'] === true) refuse(i, 'runs backwards or statefully');
    if (Boolean(c['returnSequences']) !== i < layers.length - 2) refuse(i, `has returnSequences ${String(c['returnSequences'])}`);
    const [kernel, recurrent, bias] = layer.getWeights();
    const units = c['units'] as number;
    const dim = kernel!.shape[0]!;
    if (i === 0) inputDim = dim;
    grus.push({ units, inputDim: dim, kernel: kernel!.dataSync() as Float32Array, recurrentKernel: recurrent!.dataSync() as Float32Array, bias: bias!.dataSync() as Float32Array });
  }
  const dense = layers[layers.length - 1]!;
  const dc = dense.getConfig() as LayerConfig;
  if (dense.getClassName() !== 'Dense' || dc['activation'] !== 'softmax') refuse(layers.length - 1, `is a ${dense.getClassName()} (${String(dc['activation'])}), not a Dense softmax`);
  if (dc['units'] !== labels) refuse(layers.length - 1, `has ${String(dc['units'])} outputs for ${labels} labels`);
  const [dk, db] = dense.getWeights();
  return { inputDim, steps, layers: grus, denseKernel: dk!.dataSync() as Float32Array, denseBias: db!.dataSync() as Float32Array, labels };
}

/**
 * A GRU bundle (manifest draft and files, for `writeBundle`) from a trained
 * tf.sequential of GRU layers and a Dense softmax head. Weights ship as int8 with
 * per-column scales; the self-test expectations are computed by TensorFlow.js on the
 * DEQUANTISED weights — the model that ships — so every runtime is held to the bundle, not
 * to the float model it came from.
 */
export function exportGruBundle(model: tf.LayersModel, opts: GruExportOptions): { draft: ManifestDraft; files: Record<string, Uint8Array> } {
  const weights = gruWeightsOfModel(model, opts.steps, opts.labels.length);
  const normaliser = opts.normaliser instanceof Normaliser ? opts.normaliser.toJSON() : opts.normaliser;
  if (normaliser.mean.length !== weights.inputDim) throw new Error(`exportGruBundle: normaliser has ${normaliser.mean.length} dimensions, the model input ${weights.inputDim}`);
  const { bytes, tensors, dequantised } = encodeGruWeights(weights);
  const shipped = buildTfGruModel(dequantised);
  const selfTest = opts.selfTestInputs.map((input, i) => {
    if (input.length !== opts.steps * weights.inputDim) throw new Error(`exportGruBundle: selfTestInputs[${i}] has ${input.length} values, expected steps × dim = ${opts.steps * weights.inputDim}`);
    const expected = tf.tidy(() => (shipped.predict(tf.tensor3d(input, [1, opts.steps, weights.inputDim])) as tf.Tensor).dataSync());
    return { input: Array.from(input), expected: Array.from(expected) };
  });
  shipped.dispose();
  const draft: ManifestDraft = {
    name: opts.name,
    version: opts.version,
    kind: 'gru',
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    labels: opts.labels,
    features: opts.features,
    input: 'sequence',
    normaliser,
    metrics: opts.metrics,
    createdAt: new Date().toISOString(),
    selfTest,
    gru: {
      units: weights.layers.map((l) => l.units),
      inputDim: weights.inputDim,
      steps: opts.steps,
      cell: GRU_CELL,
      head: { activation: 'softmax' },
      weightsFile: GRU_WEIGHTS_FILE,
      tensors,
    },
  };
  return { draft, files: { [GRU_WEIGHTS_FILE]: bytes } };
}
