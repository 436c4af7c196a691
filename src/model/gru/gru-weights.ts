import type { BundleManifest } from '../bundle-manifest.js';
import { decodeInt8Tensors, encodeInt8Tensors } from '../int8-tensors.js';

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

/**
 * Quantises every tensor to int8 with one scale per output column (per gate unit, per
 * label), as `encodeInt8Tensors` describes. Returns the weights file, its tensor table, and
 * the dequantised weights: the model that actually ships, from which self-test
 * expectations must be computed.
 */
export function encodeGruWeights(w: GruWeights): { bytes: Uint8Array; tensors: TensorEntry[]; dequantised: GruWeights } {
  const units = w.layers.map((l) => l.units);
  const { bytes, tensors, dequantised } = encodeInt8Tensors(gruTensorShapes(units, w.inputDim, w.labels), tensorList(w));
  return { bytes, tensors, dequantised: fromTensorList(dequantised, units, w.inputDim, w.steps, w.labels) };
}

/**
 * Reads a GRU bundle's weights file into float32 (int8 × column scale), checking the
 * tensor table against the architecture the manifest declares. Errors name the tensor.
 */
export function decodeGruWeights(section: GruSection, labels: number, file: Uint8Array): GruWeights {
  const tensors = decodeInt8Tensors('gru', gruTensorShapes(section.units, section.inputDim, labels), section.tensors, file, section.weightsFile);
  return fromTensorList(tensors, section.units, section.inputDim, section.steps, labels);
}
