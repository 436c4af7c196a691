/**
 * Per-dimension mean and standard deviation of `frames` row-major frame vectors (`dim`
 * wide) into `out[offset ..]`: `dim` means, then `dim` standard deviations — the fixed-size
 * summary of a window that the KNN classifier compares.
 *
 * Population standard deviation (divide by n, numpy's default and librosa-era SER practice),
 * so a single frame gives std 0. Accumulates in doubles, two passes per column, no allocation.
 */
export function poolMeanStd(rows: Float32Array, frames: number, dim: number, out: Float32Array, offset = 0): void {
  if (frames <= 0) throw new RangeError('poolMeanStd: no frames to pool (the window held no analysed frames)');
  if (rows.length < frames * dim) throw new RangeError(`poolMeanStd: ${frames} frames of ${dim} need ${frames * dim} values, rows has ${rows.length}`);
  if (offset < 0 || out.length < offset + 2 * dim) throw new RangeError(`poolMeanStd: out has ${out.length} values, needs ${offset + 2 * dim}`);
  const end = frames * dim;
  for (let d = 0; d < dim; d++) {
    let sum = 0;
    for (let i = d; i < end; i += dim) sum += rows[i]!;
    const mean = sum / frames;
    let squares = 0;
    for (let i = d; i < end; i += dim) {
      const x = rows[i]! - mean;
      squares += x * x;
    }
    out[offset + d] = mean;
    out[offset + dim + d] = Math.sqrt(squares / frames);
  }
}
