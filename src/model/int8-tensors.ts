import type { BundleManifest } from './bundle-manifest.js';
import { quantisePerColumn } from './int8.js';

/** Where one int8 tensor and its per-column scales lie in a bundle's weights file. */
export type Int8TensorEntry = NonNullable<BundleManifest['gru']>['tensors'][number];

/** A tensor an architecture expects, in file order: name and [rows, cols] (a bias is one row). */
export interface TensorShape {
  name: string;
  rows: number;
  cols: number;
}

const align4 = (n: number) => (n + 3) & ~3;

/** Bytes of the weights file `encodeInt8Tensors` writes for these shapes: a size budget can be checked before training. */
export function int8TensorBytes(shapes: readonly TensorShape[]): number {
  return shapes.reduce((size, { rows, cols }) => align4(size + rows * cols) + 4 * cols, 0);
}

/**
 * Quantises float tensors to int8 with one scale per output column into one weights file:
 * each tensor's rows × cols int8 values, then its cols float32 scales (4-byte aligned).
 * A single per-tensor scale would let the largest column's range crush the small weights
 * of the others; a bias, one row, gets a scale per value and so survives exactly (up to
 * float32). Returns the file, its tensor table for the manifest, and the dequantised
 * tensors: the model that actually ships, from which self-test expectations must come.
 */
export function encodeInt8Tensors(shapes: readonly TensorShape[], values: readonly Float32Array[]): { bytes: Uint8Array; tensors: Int8TensorEntry[]; dequantised: Float32Array[] } {
  if (shapes.length !== values.length) throw new RangeError(`${values.length} tensors for ${shapes.length} shapes`);
  let size = 0;
  const tensors: Int8TensorEntry[] = shapes.map(({ name, rows, cols }, i) => {
    if (values[i]!.length !== rows * cols) throw new RangeError(`${name} has ${values[i]!.length} values, expected ${rows} × ${cols}`);
    const offset = size;
    const scalesOffset = align4(offset + rows * cols);
    size = scalesOffset + 4 * cols;
    return { name, shape: rows === 1 && name.endsWith('/bias') ? [cols] : [rows, cols], offset, scalesOffset };
  });
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  const dequantised = shapes.map(({ rows, cols }, i) => {
    const { q, scales } = quantisePerColumn(values[i]!, rows, cols);
    bytes.set(new Uint8Array(q.buffer, q.byteOffset, q.length), tensors[i]!.offset);
    for (let c = 0; c < cols; c++) view.setFloat32(tensors[i]!.scalesOffset + 4 * c, scales[c]!, true);
    return dequantiseColumns(q, readScales(view, tensors[i]!.scalesOffset, cols), cols);
  });
  return { bytes, tensors, dequantised };
}

/**
 * Reads a weights file into float32 (int8 × column scale), checking the manifest's tensor
 * table against the shapes the declared architecture needs. `section` names the manifest
 * key (`gru`, `mlp`) in errors, which also name the tensor.
 */
export function decodeInt8Tensors(section: string, shapes: readonly TensorShape[], entries: readonly Int8TensorEntry[], file: Uint8Array, fileName: string): Float32Array[] {
  if (entries.length !== shapes.length) throw new Error(`${section}.tensors lists ${entries.length} tensors, the architecture needs ${shapes.length}`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  return shapes.map(({ name, rows, cols }, i) => {
    const t = entries[i]!;
    const [r, c] = t.shape.length === 1 ? [1, t.shape[0]!] : [t.shape[0]!, t.shape[1]!];
    if (t.name !== name || r !== rows || c !== cols) throw new Error(`${section}.tensors[${i}] is ${t.name} [${t.shape}], expected ${name} [${rows}, ${cols}]`);
    if (t.offset + rows * cols > file.length || t.scalesOffset + 4 * cols > file.length)
      throw new Error(`${section}.tensors[${i}] (${name}) lies beyond the end of ${fileName} (${file.length} bytes)`);
    const q = new Int8Array(file.buffer, file.byteOffset + t.offset, rows * cols);
    return dequantiseColumns(q, readScales(view, t.scalesOffset, cols), cols);
  });
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
