import type { CallContext } from '../classifier.js';

/**
 * The caller's own baseline for one call: the mean functionals of the first `windows`
 * speech windows of the call. Voices differ more between people than one person's voice
 * between emotions, so the MLP sees each window both as it is and relative to how this
 * caller sounded earlier in the call.
 *
 * The baseline is frozen once full: a running mean over the whole call would drift
 * towards the caller's current state and hide the very change it is there to show. A
 * window is never part of its own baseline (it is compared first, then taken in), and the
 * first window of a call, with nothing before it, is relative to itself (all zeros), as
 * training sees it.
 */
export class CallerBaseline implements CallContext {
  private readonly sum: Float64Array;
  private seen = 0;

  constructor(
    /** The classifier that made it (null in training), so another model's context is refused. */
    readonly owner: object | null,
    readonly model: string,
    /** Functionals per window. */
    readonly dim: number,
    /** Windows averaged into the baseline. */
    readonly windows: number,
  ) {
    if (!Number.isInteger(windows) || windows < 1) throw new RangeError(`a caller baseline averages at least 1 window, not ${windows}`);
    this.sum = new Float64Array(dim);
  }

  /** Windows in the baseline so far (at most `windows`). */
  get count(): number {
    return this.seen;
  }

  /** Writes `pooled − baseline` into `out` from `offset` (zeros while the baseline is empty). */
  relativeInto(pooled: ArrayLike<number>, out: Float32Array, offset: number): void {
    const n = this.seen;
    if (n === 0) {
      out.fill(0, offset, offset + this.dim);
      return;
    }
    for (let k = 0; k < this.dim; k++) out[offset + k] = pooled[k]! - this.sum[k]! / n;
  }

  /**
   * Takes a window's functionals (the first `dim` values of `pooled`) into the baseline,
   * until it holds `windows` of them. A window with a non-finite value is left out: one
   * bad window must not spoil every later window of the call.
   */
  observe(pooled: ArrayLike<number>): void {
    if (this.seen >= this.windows) return;
    for (let k = 0; k < this.dim; k++) if (!Number.isFinite(pooled[k]!)) return;
    for (let k = 0; k < this.dim; k++) this.sum[k]! += pooled[k]!;
    this.seen++;
  }
}

/**
 * The MLP's input width: the functionals, followed with a caller baseline by the same
 * values relative to it (the layout `PooledMlpClassifier.predict` and training share).
 */
export function mlpInputSize(functionals: number, withBaseline: boolean): number {
  return withBaseline ? 2 * functionals : functionals;
}
