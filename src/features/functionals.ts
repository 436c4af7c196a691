/**
 * Utterance-level functionals of a window's frame vectors: per frame value its mean,
 * standard deviation, 10th/50th/90th percentile, linear slope over the window and mean
 * absolute frame-to-frame step; then the share of voiced frames. The pooled MLP's input,
 * in the spirit of openSMILE's functionals: where mean/std pooling sees only level and
 * spread, percentiles see the range of the pitch and energy contours and slope and step
 * how they move, which is where arousal shows.
 *
 * The pitch column (if any) holds 0 on unvoiced frames; its functionals use voiced frames
 * only, since a 0 there is "no F0", not a low one. So its slope runs over voiced-frame
 * rank rather than time, and its step spans unvoiced gaps: the contour as heard.
 */
export const FUNCTIONAL_STATISTICS = ['mean', 'std', 'p10', 'p50', 'p90', 'slope', 'step'] as const;

/** Values per frame value, and the one extra (voiced share) at the end. */
export function functionalsSize(frameDim: number): number {
  return frameDim * FUNCTIONAL_STATISTICS.length + 1;
}

/**
 * Computes functionals into a caller's buffer. One instance per channel: its scratch (the
 * window transposed) grows to the longest window seen and is then reused, so a window
 * allocates nothing. Accumulates in doubles.
 */
export class FunctionalsPooler {
  readonly size: number;
  /** The window transposed, column after column: one strided pass instead of one per column. */
  private columns = new Float64Array(0);

  /** `pitchColumn`: the frame offset of F0 (0 = unvoiced), or -1 when the frame has none. */
  constructor(
    readonly frameDim: number,
    readonly pitchColumn: number,
  ) {
    if (!Number.isInteger(frameDim) || frameDim <= 0) throw new RangeError(`FunctionalsPooler: frame size ${frameDim} must be a positive integer`);
    if (pitchColumn >= frameDim) throw new RangeError(`FunctionalsPooler: pitch column ${pitchColumn} is outside a frame of ${frameDim}`);
    this.size = functionalsSize(frameDim);
  }

  pool(rows: Float32Array, frames: number, out: Float32Array, offset = 0): Float32Array {
    const dim = this.frameDim;
    if (frames <= 0) throw new RangeError('FunctionalsPooler: no frames to pool (the window held no analysed frames)');
    if (rows.length < frames * dim) throw new RangeError(`FunctionalsPooler: ${frames} frames of ${dim} need ${frames * dim} values, rows has ${rows.length}`);
    if (offset < 0 || out.length < offset + this.size) throw new RangeError(`FunctionalsPooler: out has ${out.length} values, needs ${offset + this.size}`);
    if (this.columns.length < frames * dim) this.columns = new Float64Array(Math.max(frames * dim, 2 * this.columns.length));
    const all = this.columns;
    const pitch = this.pitchColumn;
    // Transposed in one pass over the rows; the pitch column keeps its voiced frames only.
    let voiced = 0;
    for (let f = 0, i = 0; f < frames; f++) {
      for (let d = 0; d < dim; d++, i++) {
        const v = rows[i]!;
        if (d === pitch) {
          if (v !== 0) all[d * frames + voiced++] = v;
        } else {
          all[d * frames + f] = v;
        }
      }
    }
    const stats = FUNCTIONAL_STATISTICS.length;
    for (let d = 0; d < dim; d++) {
      // Column d is all[b .. b + n).
      const b = d * frames;
      let n = d === pitch ? voiced : frames;
      // An all-unvoiced window: every pitch statistic 0, as if one frame of 0.
      if (n === 0) all[b + n++] = 0;
      const e = b + n;
      let sum = 0;
      for (let i = b; i < e; i++) sum += all[i]!;
      const mean = sum / n;
      // Order-dependent statistics before selection reorders the column.
      let squares = 0, sxy = 0, step = 0;
      const mid = b + (n - 1) / 2;
      for (let i = b; i < e; i++) {
        const x = all[i]! - mean;
        squares += x * x;
        sxy += (i - mid) * x;
        if (i > b) step += Math.abs(all[i]! - all[i - 1]!);
      }
      // Σ (i − mid)² over n consecutive indices, in closed form.
      const sxx = (n * (n * n - 1)) / 12;
      const k10 = b + Math.floor(0.1 * n), k50 = b + Math.floor(0.5 * n), k90 = b + Math.min(n - 1, Math.floor(0.9 * n));
      // select() returns nothing: a returned double would be boxed on every call.
      select(all, b, e - 1, k10);
      select(all, k10, e - 1, k50);
      select(all, k50, e - 1, k90);
      const p10 = all[k10]!, p50 = all[k50]!, p90 = all[k90]!;
      const o = offset + d * stats;
      out[o] = mean;
      out[o + 1] = Math.sqrt(squares / n);
      out[o + 2] = p10;
      out[o + 3] = p50;
      out[o + 4] = p90;
      out[o + 5] = sxx > 0 ? sxy / sxx : 0;
      out[o + 6] = n > 1 ? step / (n - 1) : 0;
    }
    out[offset + dim * stats] = pitch >= 0 ? voiced / frames : 0;
    return out;
  }
}

/**
 * Puts the k-th smallest of `a[lo..hi]` at `a[k]` (Hoare's quickselect, median-of-three
 * pivot), everything below it at indices < k and above at > k: a later call for a larger
 * k may start at this k. Linear time on average and no allocation, where a sort per column
 * would cost n log n and a copy.
 */
function select(a: Float64Array, lo: number, hi: number, k: number): void {
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of three to the middle, so sorted or constant input stays linear.
    if (a[mid]! < a[lo]!) swap(a, mid, lo);
    if (a[hi]! < a[lo]!) swap(a, hi, lo);
    if (a[hi]! < a[mid]!) swap(a, hi, mid);
    const pivot = a[mid]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) swap(a, i++, j--);
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}
