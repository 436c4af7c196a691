export type DistanceMetric = 'l1' | 'l2';

/**
 * Exhaustive k-nearest-neighbour search over int8 reference vectors, computed on the
 * integers directly. Keeps its top-k scratch so a query allocates nothing.
 */
export class Int8NeighbourSearch {
  readonly count: number;
  private readonly bestIndex: Int32Array;
  private readonly bestDistance: Float64Array;

  constructor(
    readonly references: Int8Array,
    readonly dim: number,
    readonly maxK: number,
  ) {
    if (references.length % dim !== 0) throw new Error(`references hold ${references.length} values, not a multiple of dim ${dim}`);
    this.count = references.length / dim;
    this.bestIndex = new Int32Array(maxK);
    this.bestDistance = new Float64Array(maxK);
  }

  /**
   * Finds the k nearest references to `query`; returns how many were found (≤ k) and
   * leaves them, nearest first, in `indices` / `distances` (integer-unit distances).
   */
  search(query: Int8Array, k: number, metric: DistanceMetric): { found: number; indices: Int32Array; distances: Float64Array } {
    const kk = Math.min(k, this.maxK, this.count);
    const idx = this.bestIndex;
    const dist = this.bestDistance;
    let found = 0;
    let worst = Infinity;
    const refs = this.references;
    const dim = this.dim;
    for (let r = 0, base = 0; r < this.count; r++, base += dim) {
      let d = 0;
      if (metric === 'l1') {
        for (let j = 0; j < dim; j++) {
          const diff = refs[base + j]! - query[j]!;
          d += diff < 0 ? -diff : diff;
        }
      } else {
        for (let j = 0; j < dim; j++) {
          const diff = refs[base + j]! - query[j]!;
          d += diff * diff;
        }
      }
      if (found < kk || d < worst) {
        // Insertion into a tiny sorted list beats a heap for k ≤ 15.
        let pos = found < kk ? found++ : kk - 1;
        while (pos > 0 && dist[pos - 1]! > d) {
          dist[pos] = dist[pos - 1]!;
          idx[pos] = idx[pos - 1]!;
          pos--;
        }
        dist[pos] = d;
        idx[pos] = r;
        worst = found === kk ? dist[kk - 1]! : Infinity;
      }
    }
    return { found, indices: idx, distances: dist };
  }
}
