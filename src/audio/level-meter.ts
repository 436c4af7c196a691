/**
 * Per-channel levels of captured blocks, in dBFS, for `ser-edge devices --listen` and the
 * doctor's capture check: what an installer needs to see to tell a live channel from a
 * muted or unconnected one. 0 dBFS is full scale; a full-scale sine has an RMS of −3 dBFS.
 */

/** Below any real capture: the level of digital silence (all samples zero). */
export const SILENCE_DB = -120;

export interface ChannelLevel {
  /** RMS level of the block. */
  rmsDb: number;
  /** Largest absolute sample of the block. */
  peakDb: number;
}

export function toDb(amplitude: number): number {
  return amplitude > 0 ? Math.max(SILENCE_DB, 20 * Math.log10(amplitude)) : SILENCE_DB;
}

/**
 * Running levels of one channel: the latest block's, the loudest peak since the last
 * `takePeak()` (so a meter refreshed less often than blocks arrive still shows every
 * peak), and the level over everything heard.
 */
export class LevelMeter {
  private last: ChannelLevel = { rmsDb: SILENCE_DB, peakDb: SILENCE_DB };
  private heldPeak = 0;
  private totalSquares = 0;
  private totalSamples = 0;
  private maxPeak = 0;
  private clippedSamples = 0;

  push(samples: Float32Array): ChannelLevel {
    let sum = 0;
    let peak = 0;
    let clipped = 0;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      sum += s * s;
      const a = s < 0 ? -s : s;
      if (a > peak) peak = a;
      // s16 full scale is 32767/32768: anything this close to it was clipped on the way in.
      if (a >= 0.999) clipped++;
    }
    this.totalSquares += sum;
    this.totalSamples += samples.length;
    this.clippedSamples += clipped;
    if (peak > this.heldPeak) this.heldPeak = peak;
    if (peak > this.maxPeak) this.maxPeak = peak;
    this.last = { rmsDb: toDb(Math.sqrt(sum / Math.max(1, samples.length))), peakDb: toDb(peak) };
    return this.last;
  }

  get current(): ChannelLevel {
    return this.last;
  }

  /** The loudest peak since the previous call, in dBFS. */
  takePeak(): number {
    const peak = toDb(this.heldPeak);
    this.heldPeak = 0;
    return peak;
  }

  /** RMS over everything pushed. */
  get overallRmsDb(): number {
    return toDb(Math.sqrt(this.totalSquares / Math.max(1, this.totalSamples)));
  }

  get overallPeakDb(): number {
    return toDb(this.maxPeak);
  }

  /** Share of samples at full scale. */
  get clippedShare(): number {
    return this.totalSamples === 0 ? 0 : this.clippedSamples / this.totalSamples;
  }
}

/**
 * A bar for `db` on a scale from `floorDb` (empty) to 0 dBFS (full), `width` cells, with
 * a tick at the held peak when given.
 */
export function levelBar(db: number, width: number, options: { floorDb?: number; peakDb?: number } = {}): string {
  const floor = options.floorDb ?? -60;
  const cells = (value: number) => Math.round(Math.min(1, Math.max(0, (value - floor) / -floor)) * width);
  const filled = cells(db);
  const bar: string[] = Array.from({ length: width }, (_, i) => (i < filled ? '█' : '·'));
  if (options.peakDb !== undefined) {
    const at = cells(options.peakDb) - 1;
    if (at >= filled && at < width) bar[at] = '|';
  }
  return bar.join('');
}

/** `-23.4 dBFS`, or `silent` for digital silence. */
export function formatDb(db: number): string {
  return db <= SILENCE_DB ? 'silent' : `${db.toFixed(1)} dBFS`;
}
