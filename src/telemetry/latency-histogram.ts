/**
 * Stage latency in a fixed amount of memory: counts in log-spaced buckets from 10 µs to
 * ~100 s (8 % wide, so a quantile is within 4 % of the truth), whatever the throughput.
 * `decay()` halves the counts at each telemetry report, so p50/p99 follow the last few
 * minutes rather than the whole uptime, and a one-off stall fades out.
 */
export class LatencyHistogram {
  private static readonly MIN_MS = 0.01;
  private static readonly RATIO = 1.08;
  private static readonly BUCKETS = 210;
  private readonly counts = new Float64Array(LatencyHistogram.BUCKETS);
  private total = 0;
  /** Samples since start, never decayed: for rates and Prometheus counters. */
  recorded = 0;

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const raw = ms <= LatencyHistogram.MIN_MS ? 0 : Math.ceil(Math.log(ms / LatencyHistogram.MIN_MS) / Math.log(LatencyHistogram.RATIO));
    this.counts[Math.min(LatencyHistogram.BUCKETS - 1, raw)]! += 1;
    this.total += 1;
    this.recorded++;
  }

  /** The q-quantile in ms (upper edge of its bucket), or null with no samples. */
  quantile(q: number): number | null {
    if (this.total <= 0) return null;
    const rank = q * this.total;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank && this.counts[i]! > 0) return LatencyHistogram.MIN_MS * Math.pow(LatencyHistogram.RATIO, i);
    }
    return LatencyHistogram.MIN_MS * Math.pow(LatencyHistogram.RATIO, this.counts.length - 1);
  }

  get count(): number {
    return this.total;
  }

  decay(factor = 0.5): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! *= factor;
    this.total *= factor;
    // Below one sample's worth, old history would only blur the next interval's quantiles.
    if (this.total < 1) {
      this.counts.fill(0);
      this.total = 0;
    }
  }
}
