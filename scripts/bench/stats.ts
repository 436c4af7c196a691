/** Nearest-rank quantile of `values` (0 < q ≤ 1): with fewer than 1/(1−q) samples, p99 is the largest. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export interface Spread {
  p50: number | null;
  p99: number | null;
  max: number | null;
  n: number;
}

/** p50, p99 and the largest of `values`, rounded to 0.1 (ms figures), with the sample count. */
export function spread(values: readonly number[]): Spread {
  const r = (x: number | null) => (x === null ? null : round1(x));
  return { p50: r(quantile(values, 0.5)), p99: r(quantile(values, 0.99)), max: r(quantile(values, 1)), n: values.length };
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
