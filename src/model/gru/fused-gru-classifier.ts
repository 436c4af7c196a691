import { Normaliser } from '../../features/normaliser.js';
import type { BundleManifest } from '../bundle-manifest.js';
import type { Classifier } from '../classifier.js';
import type { Emotion } from '../emotions.js';
import { wasmBase64 as gruWasm } from '../kernels/gru.wasm.js';
import { instantiateKernel, kernelModule } from '../../wasm/kernel-loader.js';
import { bundleFile, BundleError, type ModelBundle } from '../model-bundle.js';
import { decodeGruWeights, type GruLayerWeights, type GruWeights } from './gru-weights.js';
import { sequenceInput } from './sequence-input.js';

export type GruKernelName = 'wasm-simd' | 'js';

export interface FusedGruOptions {
  /** `auto` (the default) takes wasm-simd where the runtime supports it. */
  kernel?: 'auto' | GruKernelName;
}

/** Runs the GRU layers over `input` (steps × inputDim) and returns the last state. */
interface GruRunner {
  readonly name: GruKernelName;
  /** Where the model input is written before `run`. */
  readonly input: Float32Array;
  run(): Float32Array;
}

/**
 * The GRU classifier on a hand-written kernel (gru.wat, or the same arithmetic in JS),
 * outside TensorFlow.js: for a model this small the framework's per-op dispatch costs far
 * more than the arithmetic.
 *
 * Weights are dequantised once, at load, to float32: int8 is the storage and transport
 * format (a quarter of the bytes over MQTT and on flash), while the kernel multiplies
 * f32x4 directly. Keeping int8 in memory would save ~100 KB but cost a widen-and-convert
 * chain (i8 → i16 → i32 → f32, 3–4 extra SIMD ops per 4 weights) in the innermost loop;
 * the f32 matrices of the shipped sizes fit in L2 anyway. Every buffer is allocated at
 * construction; a window allocates nothing.
 */
export class FusedGruClassifier implements Classifier {
  readonly backend: string;
  readonly labels: readonly Emotion[];
  private readonly runner: GruRunner;
  private readonly normaliser: Normaliser;
  private readonly frameDim: number;
  private readonly logits: Float64Array;

  constructor(
    readonly manifest: BundleManifest,
    private readonly weights: GruWeights,
    options: FusedGruOptions = {},
  ) {
    this.labels = manifest.labels;
    this.frameDim = weights.inputDim;
    this.normaliser = Normaliser.fromJSON(manifest.normaliser, `model ${manifest.name}`);
    if (this.normaliser.dim !== weights.inputDim) throw new Error(`model ${manifest.name}: normaliser has ${this.normaliser.dim} dimensions, the GRU input ${weights.inputDim}`);
    const want = options.kernel ?? 'auto';
    const simd = want === 'js' ? null : WasmGruRunner.create(weights);
    if (want === 'wasm-simd' && !simd) throw new Error('the wasm-simd GRU kernel needs WebAssembly SIMD, which this runtime lacks');
    this.runner = simd ?? new JsGruRunner(weights);
    this.backend = `gru-fused-${this.runner.name}`;
    this.logits = new Float64Array(weights.labels);
  }

  static fromBundle(bundle: ModelBundle, options: FusedGruOptions = {}): FusedGruClassifier {
    return new FusedGruClassifier(bundle.manifest, readGruBundleWeights(bundle), options);
  }

  modelInput(rows: Float32Array, frames: number): Float32Array {
    const out = new Float32Array(this.weights.steps * this.frameDim);
    return sequenceInput(rows, frames, this.frameDim, this.manifest.features, this.normaliser, this.weights.steps, out);
  }

  /** Every window is judged on its own: no per-call state. */
  newCallContext(): null {
    return null;
  }

  predict(rows: Float32Array, frames: number, out: Float32Array): Float32Array {
    sequenceInput(rows, frames, this.frameDim, this.manifest.features, this.normaliser, this.weights.steps, this.runner.input);
    return this.head(this.runner.run(), out);
  }

  predictModelInput(input: Float32Array, out: Float32Array): Float32Array {
    if (input.length !== this.runner.input.length) throw new RangeError(`GRU input has ${input.length} values, the model takes steps × dim = ${this.runner.input.length}`);
    this.runner.input.set(input);
    return this.head(this.runner.run(), out);
  }

  /** Dense layer and softmax: labels × units multiply-adds, not worth a kernel. */
  private head(h: Float32Array, out: Float32Array): Float32Array {
    const { denseKernel, denseBias, labels } = this.weights;
    const logits = this.logits;
    for (let c = 0; c < labels; c++) logits[c] = denseBias[c]!;
    for (let u = 0, row = 0; u < h.length; u++, row += labels) {
      const x = h[u]!;
      for (let c = 0; c < labels; c++) logits[c]! += x * denseKernel[row + c]!;
    }
    softmaxInto(logits, out);
    return out;
  }

  dispose(): void {}
}

export function softmaxInto(logits: Float64Array, out: Float32Array): void {
  let max = -Infinity;
  for (let c = 0; c < logits.length; c++) max = Math.max(max, logits[c]!);
  let sum = 0;
  for (let c = 0; c < logits.length; c++) sum += logits[c] = Math.exp(logits[c]! - max);
  for (let c = 0; c < logits.length; c++) out[c] = logits[c]! / sum;
}

/** A bundle's GRU weights in float32, with errors that name the bundle. */
export function readGruBundleWeights(bundle: ModelBundle): GruWeights {
  const m = bundle.manifest;
  const section = m.gru;
  if (!section) throw new BundleError(bundle.dir, 'has no gru section');
  if (m.input !== 'sequence') throw new BundleError(bundle.dir, `a gru bundle's input must be "sequence", not "${m.input}"`);
  try {
    return decodeGruWeights(section, m.labels.length, bundleFile(bundle, section.weightsFile));
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError(bundle.dir, (err as Error).message);
  }
}

/** The same cell in plain JS (double-precision accumulation), for runtimes without SIMD. */
class JsGruRunner implements GruRunner {
  readonly name = 'js';
  readonly input: Float32Array;
  private readonly layers: GruLayerWeights[];
  private readonly steps: number;
  /** Per layer: its state, and its output sequence (the next layer's input). */
  private readonly h: Float32Array[];
  private readonly seq: Float32Array[];
  private readonly gx: Float64Array;
  private readonly rh: Float64Array;

  constructor(w: GruWeights) {
    this.layers = w.layers;
    this.steps = w.steps;
    this.input = new Float32Array(w.steps * w.inputDim);
    this.h = w.layers.map((l) => new Float32Array(l.units));
    this.seq = w.layers.map((l) => new Float32Array(w.steps * l.units));
    const maxUnits = Math.max(...w.layers.map((l) => l.units));
    this.gx = new Float64Array(3 * maxUnits);
    this.rh = new Float64Array(maxUnits);
  }

  run(): Float32Array {
    let xs = this.input;
    for (let l = 0; l < this.layers.length; l++) {
      this.layer(this.layers[l]!, xs, this.h[l]!, this.seq[l]!);
      xs = this.seq[l]!;
    }
    return this.h[this.layers.length - 1]!;
  }

  private layer(layer: GruLayerWeights, xs: Float32Array, h: Float32Array, seq: Float32Array): void {
    const { units: u, inputDim: nIn, kernel, recurrentKernel: rk, bias } = layer;
    const cols = 3 * u;
    const gx = this.gx;
    const rh = this.rh;
    h.fill(0);
    for (let t = 0; t < this.steps; t++) {
      for (let j = 0; j < cols; j++) gx[j] = bias[j]!;
      for (let i = 0, x0 = t * nIn, row = 0; i < nIn; i++, row += cols) {
        const x = xs[x0 + i]!;
        for (let j = 0; j < cols; j++) gx[j]! += x * kernel[row + j]!;
      }
      for (let i = 0, row = 0; i < u; i++, row += cols) {
        const x = h[i]!;
        for (let j = 0; j < 2 * u; j++) gx[j]! += x * rk[row + j]!;
      }
      for (let j = 0; j < u; j++) {
        gx[j] = 1 / (1 + Math.exp(-gx[j]!));
        rh[j] = h[j]! / (1 + Math.exp(-gx[u + j]!));
      }
      for (let i = 0, row = 2 * u; i < u; i++, row += cols) {
        const x = rh[i]!;
        for (let j = 0; j < u; j++) gx[2 * u + j]! += x * rk[row + j]!;
      }
      for (let j = 0, o = t * u; j < u; j++) {
        const c = Math.tanh(gx[2 * u + j]!);
        const z = gx[j]!;
        seq[o + j] = h[j] = z * h[j]! + (1 - z) * c;
      }
    }
  }
}

type LayerFn = (
  wx: number, uzr: number, uh: number, bias: number, xs: number, nIn: number, steps: number, up: number,
  h: number, gx: number, rh: number, hs: number,
) => void;

interface WasmLayer {
  wx: number;
  uzr: number;
  uh: number;
  bias: number;
  nIn: number;
  up: number;
  units: number;
}

export const pad4 = (n: number) => (n + 3) & ~3;

/** gru.wat over its own memory: weights packed into panels once, buffers laid out once. */
class WasmGruRunner implements GruRunner {
  readonly name = 'wasm-simd';

  private constructor(
    readonly input: Float32Array,
    private readonly gruLayer: LayerFn,
    private readonly layers: WasmLayer[],
    private readonly inputAt: number,
    private readonly steps: number,
    private readonly seqAt: [number, number],
    private readonly scratch: { h: number; gx: number; rh: number },
    private readonly last: Float32Array,
  ) {}

  static create(w: GruWeights): WasmGruRunner | null {
    const module = kernelModule(gruWasm);
    if (!module) return null;
    // Layout, in floats: each layer's panels and bias, the input, two output sequences
    // used alternately by the layers, then the scratch vectors.
    let at = 0;
    const take = (floats: number) => {
      const start = at;
      at += pad4(floats);
      return start;
    };
    const planned = w.layers.map((l, i) => {
      const up = pad4(l.units);
      const nIn = i === 0 ? w.inputDim : pad4(w.layers[i - 1]!.units);
      return { layer: l, up, nIn, wx: take(nIn * 3 * up), uzr: take(up * 2 * up), uh: take(up * up), bias: take(3 * up) };
    });
    const maxUp = Math.max(...planned.map((p) => p.up));
    const inputAt = take(w.steps * w.inputDim);
    const seqAt: [number, number] = [take(w.steps * maxUp), take(w.steps * maxUp)];
    const h = take(maxUp);
    const gx = take(3 * maxUp);
    const rh = take(maxUp);
    const { exports, memory } = instantiateKernel(module, at * 4);
    const f32 = new Float32Array(memory.buffer);
    for (const p of planned) {
      const { layer: l, up } = p;
      const u = l.units;
      // Padded column jp of a gate block maps to the real column gate·units + (jp mod up).
      const gateColumn = (jp: number, firstGate: number) => {
        const g = Math.floor(jp / up) + firstGate;
        const k = jp % up;
        return k < u ? g * u + k : -1;
      };
      packPanels(f32, p.wx, p.nIn, 3 * up, (i, jp) => {
        const c = gateColumn(jp, 0);
        return i < l.inputDim && c >= 0 ? l.kernel[i * 3 * u + c]! : 0;
      });
      packPanels(f32, p.uzr, up, 2 * up, (i, jp) => {
        const c = gateColumn(jp, 0);
        return i < u && c >= 0 ? l.recurrentKernel[i * 3 * u + c]! : 0;
      });
      packPanels(f32, p.uh, up, up, (i, jp) => {
        const c = gateColumn(jp, 2);
        return i < u && c >= 0 ? l.recurrentKernel[i * 3 * u + c]! : 0;
      });
      for (let jp = 0; jp < 3 * up; jp++) {
        const c = gateColumn(jp, 0);
        f32[p.bias + jp] = c >= 0 ? l.bias[c]! : 0;
      }
    }
    const layers = planned.map((p) => ({ wx: p.wx * 4, uzr: p.uzr * 4, uh: p.uh * 4, bias: p.bias * 4, nIn: p.nIn, up: p.up, units: p.layer.units }));
    const lastUnits = w.layers[w.layers.length - 1]!.units;
    return new WasmGruRunner(
      new Float32Array(memory.buffer, inputAt * 4, w.steps * w.inputDim),
      exports['gru_layer'] as LayerFn,
      layers,
      inputAt * 4,
      w.steps,
      [seqAt[0] * 4, seqAt[1] * 4],
      { h: h * 4, gx: gx * 4, rh: rh * 4 },
      new Float32Array(memory.buffer, h * 4, lastUnits),
    );
  }

  run(): Float32Array {
    let xs = this.inputAt;
    const { h, gx, rh } = this.scratch;
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l]!;
      const hs = this.seqAt[l & 1]!;
      this.gruLayer(L.wx, L.uzr, L.uh, L.bias, xs, L.nIn, this.steps, L.up, h, gx, rh, hs);
      xs = hs;
    }
    return this.last;
  }
}

/**
 * Writes a rows × cols matrix (cols a multiple of 4) in gru.wat's panel-major order:
 * panels of 16 columns while 16 remain, then panels of 4, each panel row after row.
 */
export function packPanels(f32: Float32Array, at: number, rows: number, cols: number, value: (row: number, col: number) => number): void {
  let o = at;
  for (let c0 = 0; c0 < cols; ) {
    const width = cols - c0 >= 16 ? 16 : 4;
    for (let i = 0; i < rows; i++) for (let j = 0; j < width; j++) f32[o++] = value(i, c0 + j);
    c0 += width;
  }
}
