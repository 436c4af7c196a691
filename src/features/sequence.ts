/** Steps `toSequence` makes from `frames` frames: one per started group of `stride`. */
export function sequenceLength(frames: number, stride: number): number {
  return Math.ceil(frames / stride);
}

/**
 * Turns `frames` row-major frame vectors (`dim` wide) into a model input sequence: each
 * step is the mean of `stride` consecutive frames (config.sequenceStride), the last step
 * the mean of whatever frames remain, so no audio at the end of a window is ignored.
 * Writes `sequenceLength(frames, stride)` rows into `out[offset ..]` and returns that count.
 */
export function toSequence(rows: Float32Array, frames: number, dim: number, stride: number, out: Float32Array, offset = 0): number {
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`toSequence: stride ${stride} must be a positive integer`);
  const steps = sequenceLength(frames, stride);
  if (rows.length < frames * dim) throw new RangeError(`toSequence: ${frames} frames of ${dim} need ${frames * dim} values, rows has ${rows.length}`);
  if (offset < 0 || out.length < offset + steps * dim) throw new RangeError(`toSequence: out has ${out.length} values, needs ${offset + steps * dim}`);
  for (let s = 0; s < steps; s++) {
    const first = s * stride;
    const count = Math.min(stride, frames - first);
    const target = offset + s * dim;
    for (let d = 0; d < dim; d++) {
      let sum = 0;
      for (let f = 0, i = first * dim + d; f < count; f++, i += dim) sum += rows[i]!;
      out[target + d] = sum / count;
    }
  }
  return steps;
}
