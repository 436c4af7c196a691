import type { FeatureOutput } from './output.js';

/** Lowest and highest F0 searched (Hz): covers low male to high, tense female voices. */
export const PITCH_MIN_HZ = 60;
export const PITCH_MAX_HZ = 400;
/** Normalised autocorrelation above which a frame counts as voiced. */
export const VOICING_THRESHOLD = 0.5;
const F0_REFERENCE_HZ = 50;

/** Scratch the pitch extractor reuses: the frame decimated by two. */
export interface PitchScratch {
  half: Float64Array;
  /** Normalised autocorrelation per lag. */
  nccf: Float64Array;
}

export function pitchScratch(frameSize: number): PitchScratch {
  return { half: new Float64Array(frameSize >> 1), nccf: new Float64Array(frameSize >> 1) };
}

/**
 * F0 and voicing of one raw (unwindowed) frame by normalised autocorrelation (NCCF) on the
 * frame decimated by two (pairs averaged: the search then costs a quarter), with parabolic
 * interpolation around the best lag. Writes two values:
 *  - log2(F0 / 50 Hz) for a voiced frame (0.26 at 60 Hz … 3 at 400 Hz), 0 when unvoiced;
 *  - the peak normalised autocorrelation, 0..1 (periodicity: how voiced the frame is).
 */
export function pitch(frame: Float32Array, length: number, sampleRate: number, scratch: PitchScratch, out: FeatureOutput, offset: number): void {
  const half = scratch.half;
  const n = length >> 1;
  let mean = 0;
  for (let i = 0; i < n; i++) {
    half[i] = 0.5 * (frame[2 * i]! + frame[2 * i + 1]!);
    mean += half[i]!;
  }
  mean /= n;
  for (let i = 0; i < n; i++) half[i]! -= mean;
  const rate = sampleRate / 2;
  const minLag = Math.max(2, Math.floor(rate / PITCH_MAX_HZ));
  const maxLag = Math.min(n - 8, Math.ceil(rate / PITCH_MIN_HZ));
  const nccf = scratch.nccf;
  let top = 0;
  for (let lag = minLag - 1; lag <= maxLag + 1; lag++) {
    let xy = 0, xx = 0, yy = 0;
    const m = n - lag;
    for (let i = 0; i < m; i++) {
      const a = half[i]!, b = half[i + lag]!;
      xy += a * b;
      xx += a * a;
      yy += b * b;
    }
    nccf[lag] = xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : 0;
    if (lag >= minLag && lag <= maxLag && nccf[lag]! > top) top = nccf[lag]!;
  }
  // The shortest lag whose peak comes near the highest one: multiples of the period peak
  // almost as high, and taking them would halve F0 (an octave error).
  let bestLag = 0;
  for (let lag = minLag; lag <= maxLag; lag++) {
    const r = nccf[lag]!;
    if (r >= 0.9 * top && r >= nccf[lag - 1]! && r >= nccf[lag + 1]!) {
      bestLag = lag;
      break;
    }
  }
  const best = bestLag > 0 ? nccf[bestLag]! : top;
  const bestPrev = bestLag > 0 ? nccf[bestLag - 1]! : 0;
  const bestNext = bestLag > 0 ? nccf[bestLag + 1]! : 0;
  if (bestLag === 0 || best < VOICING_THRESHOLD) {
    out[offset] = 0;
    out[offset + 1] = Math.max(0, best);
    return;
  }
  const denom = bestPrev - 2 * best + bestNext;
  const shift = denom < 0 ? (0.5 * (bestPrev - bestNext)) / denom : 0;
  const f0 = rate / (bestLag + Math.max(-0.5, Math.min(0.5, shift)));
  out[offset] = Math.log2(f0 / F0_REFERENCE_HZ);
  out[offset + 1] = Math.min(1, best);
}
