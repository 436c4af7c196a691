import type { FeatureConfig } from '../../features/feature-config.js';
import type { Normaliser } from '../../features/normaliser.js';
import { sequenceLength, toSequence } from '../../features/sequence.js';

/**
 * The GRU model's input contract, shared by training and inference so a model always
 * sees its input made one way: a window's frame rows → `toSequence` (means of
 * `config.sequenceStride` frames) → standardised per dimension by the bundle normaliser →
 * fitted to `steps`. A longer sequence keeps its LAST `steps` (the most recent speech,
 * which the state carries into the verdict); a shorter one is pre-padded with zeros at the
 * start (zero = the training mean after standardising, and the state then starts from
 * zero as usual, so leading padding disturbs it least).
 *
 * Writes steps × frameDim values into `out` and returns it. Allocates nothing when the
 * sequence fits; a view when it crops.
 */
export function sequenceInput(
  rows: Float32Array,
  frames: number,
  frameDim: number,
  config: Pick<FeatureConfig, 'sequenceStride'>,
  normaliser: Normaliser,
  steps: number,
  out: Float32Array,
): Float32Array {
  if (normaliser.dim !== frameDim) throw new RangeError(`sequenceInput: normaliser has ${normaliser.dim} dimensions, frames ${frameDim}`);
  if (out.length !== steps * frameDim) throw new RangeError(`sequenceInput: out has ${out.length} values, needs steps × dim = ${steps * frameDim}`);
  const stride = config.sequenceStride;
  const length = sequenceLength(frames, stride);
  if (length >= steps) {
    // Cropping whole steps from the front keeps the stride grouping the uncropped window has.
    const first = (length - steps) * stride;
    toSequence(first === 0 ? rows : rows.subarray(first * frameDim), frames - first, frameDim, stride, out, 0);
    normaliser.apply(out);
  } else {
    const pad = (steps - length) * frameDim;
    toSequence(rows, frames, frameDim, stride, out, pad);
    normaliser.apply(out);
    out.fill(0, 0, pad);
  }
  return out;
}
