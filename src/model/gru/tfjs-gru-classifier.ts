import { Normaliser } from '../../features/normaliser.js';
import type { BundleManifest } from '../bundle-manifest.js';
import type { Classifier } from '../classifier.js';
import type { Emotion } from '../emotions.js';
import type { ModelBundle } from '../model-bundle.js';
import { selectTfBackend, tf, type TfBackendName } from '../tf-backend.js';
import { readGruBundleWeights } from './fused-gru-classifier.js';
import type { GruWeights } from './gru-weights.js';
import { sequenceInput } from './sequence-input.js';

/**
 * The tf.sequential a GRU bundle describes, with the given (dequantised) weights: stacked
 * GRUs (sigmoid gates, tanh, no reset_after — the only GRU TensorFlow.js has) and a dense
 * softmax head. Training builds its model the same way, so the two cannot drift.
 */
export function buildTfGruModel(w: GruWeights): tf.Sequential {
  const model = tf.sequential();
  w.layers.forEach((l, i) =>
    model.add(
      tf.layers.gru({
        units: l.units,
        recurrentActivation: 'sigmoid',
        activation: 'tanh',
        returnSequences: i < w.layers.length - 1,
        // Overwritten by setWeights below; zeros skip the orthogonal initialiser's work.
        kernelInitializer: 'zeros',
        recurrentInitializer: 'zeros',
        ...(i === 0 ? { inputShape: [w.steps, w.inputDim] } : {}),
      }),
    ),
  );
  model.add(tf.layers.dense({ units: w.labels, activation: 'softmax', kernelInitializer: 'zeros' }));
  const tensors = [
    ...w.layers.flatMap((l) => [tf.tensor2d(l.kernel, [l.inputDim, 3 * l.units]), tf.tensor2d(l.recurrentKernel, [l.units, 3 * l.units]), tf.tensor1d(l.bias)]),
    tf.tensor2d(w.denseKernel, [w.layers[w.layers.length - 1]!.units, w.labels]),
    tf.tensor1d(w.denseBias),
  ];
  model.setWeights(tensors);
  tf.dispose(tensors);
  return model;
}

export interface TfjsGruOptions {
  /** Backend preference; the first that loads is used (see tf-backend.ts). */
  tfBackends?: readonly TfBackendName[];
}

/**
 * The reference runtime: the bundle's dequantised weights in a TensorFlow.js model. Slower
 * than the fused kernel for models this small, but it is the framework the model was
 * trained in, so it is what the fused kernel is checked against.
 */
export class TfjsGruClassifier implements Classifier {
  readonly labels: readonly Emotion[];
  private readonly normaliser: Normaliser;
  private readonly input: Float32Array;

  private constructor(
    readonly manifest: BundleManifest,
    private readonly weights: GruWeights,
    private readonly model: tf.Sequential,
    readonly backend: string,
  ) {
    this.labels = manifest.labels;
    this.normaliser = Normaliser.fromJSON(manifest.normaliser, `model ${manifest.name}`);
    this.input = new Float32Array(weights.steps * weights.inputDim);
  }

  static async create(manifest: BundleManifest, weights: GruWeights, options: TfjsGruOptions = {}): Promise<TfjsGruClassifier> {
    const backend = await selectTfBackend(options.tfBackends);
    return new TfjsGruClassifier(manifest, weights, buildTfGruModel(weights), `gru-tfjs-${backend}`);
  }

  static fromBundle(bundle: ModelBundle, options: TfjsGruOptions = {}): Promise<TfjsGruClassifier> {
    return TfjsGruClassifier.create(bundle.manifest, readGruBundleWeights(bundle), options);
  }

  modelInput(rows: Float32Array, frames: number): Float32Array {
    const out = new Float32Array(this.input.length);
    return sequenceInput(rows, frames, this.weights.inputDim, this.manifest.features, this.normaliser, this.weights.steps, out);
  }

  /** Every window is judged on its own: no per-call state. */
  newCallContext(): null {
    return null;
  }

  predict(rows: Float32Array, frames: number, out: Float32Array): Float32Array {
    sequenceInput(rows, frames, this.weights.inputDim, this.manifest.features, this.normaliser, this.weights.steps, this.input);
    return this.predictModelInput(this.input, out);
  }

  predictModelInput(input: Float32Array, out: Float32Array): Float32Array {
    const probs = tf.tidy(() => (this.model.predict(tf.tensor3d(input, [1, this.weights.steps, this.weights.inputDim])) as tf.Tensor).dataSync());
    out.set(probs);
    return out;
  }

  dispose(): void {
    this.model.dispose();
  }
}
