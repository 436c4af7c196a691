import type { BundleManifest } from '../bundle-manifest.js';
import { quantisePerColumn } from '../int8.js';

export type GruSection = NonNullable<BundleManifest['gru']>;
type TensorEntry = GruSection['tensors'][number];

/** One GRU layer in TensorFlow.js's layout: columns are gates z, r, ĥ, each `units` wide. */
export interface GruLayerWeights {
  units: number;
  inputDim: number;
  /** [inputDim × 3·units] row-major. */
  kernel: Float32Array;
  /** [units × 3·units] row-major. */
  recurrentKernel: Float32Array;
  /** [3·units]. */
  bias: Float32Array;
}

/** A stacked-GRU classifier's weights in float32: what both runtimes execute. */
export interface GruWeights {
  inputDim: number;
  steps: number;
  layers: GruLayerWeights[];
  /** [lastUnits × labels] row-major, and [labels]. */
  denseKernel: Float32Array;
  denseBias: Float32Array;
  labels: number;
}

export const GRU_CELL: GruSection['cell'] = { gateOrder: 'zrh', recurrentActivation: 'sigmoid', activation: 'tanh', resetAfter: false };

/** The tensors a GRU bundle holds, in file order, as [rows, cols]. */
export function gruTensorShapes(units: readonly number[], inputDim: number, labels: number): { name: string; rows: number; cols: number }[] {
  const out: { name: string; rows: number; cols: number }[] = [];
  units.forEach((u, i) => {
    out.push({ name: `gru_${i}/kernel`, rows: i === 0 ? inputDim : units[i - 1]!, cols: 3 * u });
    out.push({ name: `gru_${i}/recurrent_kernel`, rows: u, cols: 3 * u });
    out.push({ name: `gru_${i}/bias`, rows: 1, cols: 3 * u });
  });
  out.push({ name: 'dense/kernel', rows: units[units.length - 1]!, cols: labels });
  out.push({ name: 'dense/bias', rows: 1, cols: labels });
  return out;
}

function tensorList(w: GruWeights): Float32Array[] {
  return [...w.layers.flatMap((l) => [l.kernel, l.recurrentKernel, l.bias]), w.denseKernel, w.denseBias];
}

function fromTensorList(tensors: Float32Array[], units: readonly number[], inputDim: number, steps: number, labels: number): GruWeights {
  return {
    inputDim,
    steps,
    labels,
    layers: units.map((u, i) => ({
      units: u,
      inputDim: i === 0 ? inputDim : units[i - 1]!,
      kernel: tensors[3 * i]!,
      recurrentKernel: tensors[3 * i + 1]!,
      bias: tensors[3 * i + 2]!,
    })),
    denseKernel: tensors[3 * units.length]!,
    denseBias: tensors[3 * units.length + 1]!,
  };
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Quantises every tensor to int8 with one scale per output column (per gate unit, per
 * label): a single per-tensor scale would let the largest gate's range crush the small
 * weights of the others. A bias, one row, gets a scale per value and so survives exactly
 * (up to float32). Returns the weights file, its tensor table, and the dequantised weights:
 * the model that actually ships, from which self-test expectations must be computed.
 */
export function encodeGruWeights(w: GruWeights): { bytes: Uint8Array; tensors: TensorEntry[]; dequantised: GruWeights } {
  const units = w.layers.map((l) => l.units);
  const shapes = gruTensorShapes(units, w.inputDim, w.labels);
  const values = tensorList(w);
  let size = 0;
  const tensors: TensorEntry[] = shapes.map(({ name, rows, cols }, i) => {
    if (values[i]!.length !== rows * cols) throw new RangeError(`${name} has ${values[i]!.length} values, expected ${rows} × ${cols}`);
    const offset = size;
    const scalesOffset = align4(offset + rows * cols);
    size = scalesOffset + 4 * cols;
    return { name, shape: rows === 1 && name.endsWith('/bias') ? [cols] : [rows, cols], offset, scalesOffset };
  });
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  const dequantised: Float32Array[] = [];
  shapes.forEach(({ rows, cols }, i) => {
    const { q, scales } = quantisePerColumn(values[i]!, rows, cols);
    bytes.set(new Uint8Array(q.buffer, q.byteOffset, q.length), tensors[i]!.offset);
    for (let c = 0; c < cols; c++) view.setFloat32(tensors[i]!.scalesOffset + 4 * c, scales[c]!, true);
    dequantised.push(dequantiseColumns(q, readScales(view, tensors[i]!.scalesOffset, cols), cols));
  });
  return { bytes, tensors, dequantised: fromTensorList(dequantised, units, w.inputDim, w.steps, w.labels) };
}

function readScales(view: DataView, at: number, cols: number): Float32Array {
  const scales = new Float32Array(cols);
  for (let c = 0; c < cols; c++) scales[c] = view.getFloat32(at + 4 * c, true);
  return scales;
}

function dequantiseColumns(q: Int8Array, scales: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scales[i % cols]!;
  return out;
}

/**
 * Reads a GRU bundle's weights file into float32 (int8 × column scale), checking the
 * tensor table against the architecture the manifest declares. Errors name the tensor.
 */
export function decodeGruWeights(section: GruSection, labels: number, file: Uint8Array): GruWeights {
  const shapes = gruTensorShapes(section.units, section.inputDim, labels);
  if (section.tensors.length !== shapes.length) throw new Error(`gru.tensors lists ${section.tensors.length} tensors, the architecture needs ${shapes.length}`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const tensors = shapes.map(({ name, rows, cols }, i) => {
    const t = section.tensors[i]!;
    const [r, c] = t.shape.length === 1 ? [1, t.shape[0]!] : [t.shape[0]!, t.shape[1]!];
    if (t.name !== name || r !== rows || c !== cols) throw new Error(`gru.tensors[${i}] is ${t.name} [${t.shape}], expected ${name} [${rows}, ${cols}]`);
    if (t.offset + rows * cols > file.length || t.scalesOffset + 4 * cols > file.length)
      throw new Error(`gru.tensors[${i}] (${name}) lies beyond the end of ${section.weightsFile} (${file.length} bytes)`);
    const q = new Int8Array(file.buffer, file.byteOffset + t.offset, rows * cols);
    return dequantiseColumns(q, readScales(view, t.scalesOffset, cols), cols);
  });
  return fromTensorList(tensors, section.units, section.inputDim, section.steps, labels);
}
