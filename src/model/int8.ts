/**
 * Symmetric int8 quantisation with one scale per tensor: q = round(x / scale), clamped to
 * ±127. One scale for all dimensions keeps integer L1/L2 distances proportional to the
 * float ones, which is what lets the KNN search run on the int8 data directly.
 */
export function quantiseInto(values: ArrayLike<number>, scale: number, out: Int8Array, offset = 0): void {
  const inv = 1 / scale;
  for (let i = 0; i < values.length; i++) {
    const q = Math.round(values[i]! * inv);
    out[offset + i] = q > 127 ? 127 : q < -127 ? -127 : q;
  }
}

export function dequantise(q: Int8Array, scale: number): Float32Array {
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scale;
  return out;
}

/**
 * A scale that covers all but the most extreme `outlierFraction` of |values|: clipping a
 * handful of outliers buys resolution for the bulk of the (standardised) data.
 */
export function chooseScale(values: Float32Array, outlierFraction = 0.001): number {
  if (values.length === 0) return 1;
  const abs = Float32Array.from(values, Math.abs).sort();
  const at = Math.min(abs.length - 1, Math.floor((1 - outlierFraction) * abs.length));
  const cover = abs[at]! > 0 ? abs[at]! : abs[abs.length - 1]! || 1;
  return cover / 127;
}

/** Per-output-channel scales for a row-major [rows × cols] weight matrix (one per column). */
export function quantisePerColumn(weights: Float32Array, rows: number, cols: number): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(cols);
  for (let c = 0; c < cols; c++) {
    let max = 0;
    for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(weights[r * cols + c]!));
    scales[c] = max > 0 ? max / 127 : 1;
  }
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = Math.round(weights[r * cols + c]! / scales[c]!);
      q[r * cols + c] = v > 127 ? 127 : v < -127 ? -127 : v;
    }
  }
  return { q, scales };
}
