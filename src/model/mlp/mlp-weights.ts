import type { BundleManifest } from '../bundle-manifest.js';
import { decodeInt8Tensors, encodeInt8Tensors, type Int8TensorEntry, type TensorShape } from '../int8-tensors.js';

export type MlpSection = NonNullable<BundleManifest['mlp']>;

/** One dense layer: [rows × cols] row-major kernel (inputs × outputs) and [cols] bias. */
export interface DenseLayer {
  rows: number;
  cols: number;
  kernel: Float32Array;
  bias: Float32Array;
}

/** A bag of MLPs in float32: each member's layers, the softmax head last. */
export interface MlpWeights {
  inputDim: number;
  hidden: number[];
  labels: number;
  members: DenseLayer[][];
}

/** The tensors an MLP bundle holds, in file order, as [rows, cols]. */
export function mlpTensorShapes(members: number, inputDim: number, hidden: readonly number[], labels: number): TensorShape[] {
  const widths = [inputDim, ...hidden, labels];
  const out: TensorShape[] = [];
  for (let m = 0; m < members; m++) {
    for (let i = 0; i + 1 < widths.length; i++) {
      out.push({ name: `member_${m}/dense_${i}/kernel`, rows: widths[i]!, cols: widths[i + 1]! });
      out.push({ name: `member_${m}/dense_${i}/bias`, rows: 1, cols: widths[i + 1]! });
    }
  }
  return out;
}

function fromTensorList(tensors: Float32Array[], w: Omit<MlpWeights, 'members'>, members: number): MlpWeights {
  const widths = [w.inputDim, ...w.hidden, w.labels];
  const perMember = 2 * (widths.length - 1);
  return {
    ...w,
    members: Array.from({ length: members }, (_, m) =>
      widths.slice(1).map((cols, i) => ({ rows: widths[i]!, cols, kernel: tensors[m * perMember + 2 * i]!, bias: tensors[m * perMember + 2 * i + 1]! })),
    ),
  };
}

/** Int8 with per-column scales (see `encodeInt8Tensors`); the dequantised bag is the model that ships. */
export function encodeMlpWeights(w: MlpWeights): { bytes: Uint8Array; tensors: Int8TensorEntry[]; dequantised: MlpWeights } {
  const shapes = mlpTensorShapes(w.members.length, w.inputDim, w.hidden, w.labels);
  const { bytes, tensors, dequantised } = encodeInt8Tensors(shapes, w.members.flatMap((layers) => layers.flatMap((l) => [l.kernel, l.bias])));
  return { bytes, tensors, dequantised: fromTensorList(dequantised, w, w.members.length) };
}

/** An MLP bundle's weights file in float32, checked against the architecture its manifest declares. */
export function decodeMlpWeights(section: MlpSection, labels: number, file: Uint8Array): MlpWeights {
  const shapes = mlpTensorShapes(section.members, section.inputDim, section.hidden, labels);
  const tensors = decodeInt8Tensors('mlp', shapes, section.tensors, file, section.weightsFile);
  return fromTensorList(tensors, { inputDim: section.inputDim, hidden: section.hidden, labels }, section.members);
}
