import { featureLayout, frameVectorSize } from '../../features/feature-config.js';
import { FunctionalsPooler } from '../../features/functionals.js';
import { Normaliser } from '../../features/normaliser.js';
import type { BundleManifest } from '../bundle-manifest.js';
import type { CallContext, Classifier } from '../classifier.js';
import type { Emotion } from '../emotions.js';
import { packPanels, pad4, softmaxInto, type GruKernelName } from '../gru/fused-gru-classifier.js';
import { wasmBase64 as gruWasm } from '../kernels/gru.wasm.js';
import { instantiateKernel, kernelModule } from '../../wasm/kernel-loader.js';
import { bundleFile, BundleError, type ModelBundle } from '../model-bundle.js';
import { CallerBaseline, mlpInputSize } from './caller-baseline.js';
import { decodeMlpWeights, type DenseLayer, type MlpWeights } from './mlp-weights.js';

/** The F0 column of a frame vector, or -1 when the features have no pitch. */
export function pitchColumnOf(features: BundleManifest['features']): number {
  return featureLayout(features).find((f) => f.name === 'pitch')?.offset ?? -1;
}

/** Windows a model's caller baseline takes from a call (an ensemble's largest member's), or 0 without one. */
export function callBaselineWindows(manifest: BundleManifest): number {
  const members = manifest.ensemble?.members ?? [];
  return Math.max(manifest.mlp?.callBaseline?.windows ?? 0, ...members.map((m) => m.mlp?.callBaseline?.windows ?? 0));
}

/**
 * A bag of small MLPs over the functionals of a window's frames (`FunctionalsPooler`):
 * pool, standardise with the bundle's normaliser, run each member's dense layers (ReLU,
 * softmax head) and average their probabilities.
 *
 * The members' first layers, nearly all the arithmetic, run as one f32x4 matrix-vector
 * product on the GRU's wasm kernel where the runtime has SIMD; the small layers after
 * them, and everything without SIMD, in JS with double accumulation. Weights are
 * dequantised once at load (int8 is the storage format, as for the GRU); every buffer is
 * allocated at construction, so a window allocates nothing.
 */
export class PooledMlpClassifier implements Classifier {
  /** `mlp-int8-wasm-simd` (the first layer of every member on gru.wat's matvec) or `mlp-int8-js`. */
  readonly backend: string;
  readonly labels: readonly Emotion[];
  private readonly pooler: FunctionalsPooler;
  private readonly normaliser: Normaliser;
  private readonly input: Float32Array;
  /** Windows in a caller baseline, or 0 for a bag over the functionals alone. */
  private readonly baselineWindows: number;
  /** Two activation buffers the layers alternate between, as wide as the widest layer. */
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly logits: Float64Array;
  private readonly memberOut: Float32Array;
  /** The members' first layers as one SIMD matrix-vector product, when the runtime has SIMD. */
  private readonly firstLayers: WasmFirstLayers | null;

  constructor(
    readonly manifest: BundleManifest,
    private readonly weights: MlpWeights,
    options: { kernel?: 'auto' | GruKernelName } = {},
  ) {
    this.labels = manifest.labels;
    this.normaliser = Normaliser.fromJSON(manifest.normaliser, `model ${manifest.name}`);
    this.pooler = new FunctionalsPooler(frameVectorSize(manifest.features), pitchColumnOf(manifest.features));
    this.baselineWindows = manifest.mlp?.callBaseline?.windows ?? 0;
    const inputDim = mlpInputSize(this.pooler.size, this.baselineWindows > 0);
    if (inputDim !== weights.inputDim) throw new Error(`model ${manifest.name}: functionals${this.baselineWindows > 0 ? ' and their caller-relative copy' : ''} have ${inputDim} values, the MLP input ${weights.inputDim}`);
    if (this.normaliser.dim !== weights.inputDim) throw new Error(`model ${manifest.name}: normaliser has ${this.normaliser.dim} dimensions, the MLP input ${weights.inputDim}`);
    const want = options.kernel ?? 'auto';
    this.firstLayers = want === 'js' ? null : WasmFirstLayers.create(weights);
    if (want === 'wasm-simd' && !this.firstLayers)
      throw new Error(weights.hidden.length === 0 ? 'the wasm-simd MLP kernel runs hidden layers, and this bag has none' : 'the wasm-simd MLP kernel needs WebAssembly SIMD, which this runtime lacks');
    this.backend = `mlp-int8-${this.firstLayers ? 'wasm-simd' : 'js'}`;
    // With the wasm kernel the pooled input is written straight into its memory.
    this.input = this.firstLayers?.input ?? new Float32Array(weights.inputDim);
    const widest = Math.max(weights.inputDim, ...weights.hidden, weights.labels);
    this.a = new Float64Array(widest);
    this.b = new Float64Array(widest);
    this.logits = new Float64Array(weights.labels);
    this.memberOut = new Float32Array(weights.labels);
  }

  static fromBundle(bundle: ModelBundle, options: { kernel?: 'auto' | GruKernelName } = {}): PooledMlpClassifier {
    return new PooledMlpClassifier(bundle.manifest, readMlpBundleWeights(bundle), options);
  }

  newCallContext(): CallerBaseline | null {
    return this.baselineWindows > 0 ? new CallerBaseline(this, this.manifest.name, this.pooler.size, this.baselineWindows) : null;
  }

  /** The model input of a window that opens a call (a zero caller-relative part, if the bag has one). */
  modelInput(rows: Float32Array, frames: number): Float32Array {
    const out = new Float32Array(this.weights.inputDim);
    this.pooler.pool(rows, frames, out);
    this.normaliser.apply(out);
    return out;
  }

  predict(rows: Float32Array, frames: number, out: Float32Array, call?: CallContext | null): Float32Array {
    // The raw functionals go straight into the input's first part; the relative part
    // (and the baseline) are made from them before the normaliser changes them.
    const size = this.pooler.size;
    this.pooler.pool(rows, frames, this.input);
    if (this.baselineWindows > 0) {
      const baseline = this.callBaseline(call);
      if (baseline) {
        baseline.relativeInto(this.input, this.input, size);
        baseline.observe(this.input);
      } else {
        this.input.fill(0, size);
      }
    }
    this.normaliser.apply(this.input);
    return this.run(out);
  }

  /** This bag's caller baseline from a call context; another model's context is a caller's bug. */
  private callBaseline(call: CallContext | null | undefined): CallerBaseline | null {
    if (call === undefined || call === null) return null;
    if (!(call instanceof CallerBaseline) || call.owner !== this)
      throw new TypeError(`model ${this.manifest.name}: the call context passed to predict was made by model ${call.model}, not by this one`);
    return call;
  }

  predictModelInput(input: Float32Array, out: Float32Array): Float32Array {
    if (input.length !== this.input.length) throw new RangeError(`MLP input has ${input.length} values, the model takes ${this.input.length}`);
    this.input.set(input);
    return this.run(out);
  }

  private run(out: Float32Array): Float32Array {
    const { members, labels } = this.weights;
    out.fill(0, 0, labels);
    const first = this.firstLayers?.run() ?? null;
    for (let m = 0; m < members.length; m++) {
      const layers = members[m]!;
      let x = this.a, y = this.b;
      let l = 0;
      if (first && layers.length > 1) {
        // The first layer came from the kernel: this member's columns, through ReLU.
        const cols = layers[0]!.cols;
        for (let j = 0, o = this.firstLayers!.offsets[m]!; j < cols; j++) x[j] = first[o + j]! > 0 ? first[o + j]! : 0;
        l = 1;
      } else {
        for (let i = 0; i < this.input.length; i++) x[i] = this.input[i]!;
      }
      for (; l < layers.length; l++) {
        dense(layers[l]!, x, y, l < layers.length - 1);
        [x, y] = [y, x];
      }
      for (let c = 0; c < labels; c++) this.logits[c] = x[c]!;
      softmaxInto(this.logits, this.memberOut);
      for (let c = 0; c < labels; c++) out[c]! += this.memberOut[c]! / members.length;
    }
    return out;
  }

  dispose(): void {}
}

/** y = x·K + b (ReLU when `relu`), rows of K outer so the kernel is read in order. */
function dense(layer: DenseLayer, x: Float64Array, y: Float64Array, relu: boolean): void {
  const { rows, cols, kernel, bias } = layer;
  for (let j = 0; j < cols; j++) y[j] = bias[j]!;
  for (let i = 0, row = 0; i < rows; i++, row += cols) {
    const v = x[i]!;
    if (v === 0) continue; // ReLU zeros are common: skip their row.
    for (let j = 0; j < cols; j++) y[j]! += v * kernel[row + j]!;
  }
  if (relu) for (let j = 0; j < cols; j++) if (y[j]! < 0) y[j] = 0;
}

/**
 * Every member's first (widest) layer as one matrix, inputDim × Σ units padded to a
 * multiple of 4, on gru.wat's panel-major `matvec` (f32x4, float accumulation): most of an
 * MLP's arithmetic, 4 lanes at a time. The input, biases and output live in its memory.
 */
class WasmFirstLayers {
  private constructor(
    readonly input: Float32Array,
    private readonly output: Float32Array,
    readonly offsets: number[],
    private readonly call: () => void,
  ) {}

  static create(w: MlpWeights): WasmFirstLayers | null {
    // A bag of single-layer members has no hidden layer to share: the head stays in JS.
    if (w.members.some((layers) => layers.length < 2)) return null;
    const module = kernelModule(gruWasm);
    if (!module) return null;
    const firsts = w.members.map((layers) => layers[0]!);
    const offsets: number[] = [];
    let cols = 0;
    for (const l of firsts) {
      offsets.push(cols);
      cols += l.cols;
    }
    const padded = pad4(cols);
    // In floats: the panels, the biases, the input, the output.
    const wAt = 0, biasAt = w.inputDim * padded, xAt = biasAt + padded, yAt = xAt + pad4(w.inputDim);
    const { exports, memory } = instantiateKernel(module, (yAt + padded) * 4);
    const f32 = new Float32Array(memory.buffer);
    const owner = new Int32Array(padded).fill(-1);
    firsts.forEach((l, m) => owner.fill(m, offsets[m]!, offsets[m]! + l.cols));
    packPanels(f32, wAt, w.inputDim, padded, (i, j) => (owner[j]! >= 0 ? firsts[owner[j]!]!.kernel[i * firsts[owner[j]!]!.cols + (j - offsets[owner[j]!]!)]! : 0));
    for (let j = 0; j < padded; j++) f32[biasAt + j] = owner[j]! >= 0 ? firsts[owner[j]!]!.bias[j - offsets[owner[j]!]!]! : 0;
    const matvec = exports['matvec'] as (w: number, x: number, nIn: number, init: number, y: number, nOut: number) => number;
    return new WasmFirstLayers(new Float32Array(memory.buffer, xAt * 4, w.inputDim), new Float32Array(memory.buffer, yAt * 4, padded), offsets, () => {
      matvec(wAt * 4, xAt * 4, w.inputDim, biasAt * 4, yAt * 4, padded);
    });
  }

  run(): Float32Array {
    this.call();
    return this.output;
  }
}

/** A bundle's MLP weights in float32, with errors that name the bundle. */
export function readMlpBundleWeights(bundle: ModelBundle): MlpWeights {
  const m = bundle.manifest;
  const section = m.mlp;
  if (!section) throw new BundleError(bundle.dir, 'has no mlp section');
  try {
    return decodeMlpWeights(section, m.labels.length, bundleFile(bundle, section.weightsFile));
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError(bundle.dir, (err as Error).message);
  }
}
