import type { FeatureOutput } from './output.js';

/** Bin ranges and quantile sizes of librosa's octave sub-bands, fixed per configuration. */
export interface ContrastBands {
  readonly count: number;
  /** First bin of band b. */
  readonly start: Int32Array;
  /** One past the last bin of band b. */
  readonly end: Int32Array;
  /** How many of the largest (and smallest) bins are averaged into the peak (valley). */
  readonly quantileBins: Int32Array;
  /** Largest quantileBins entry: the size the caller's scratch must have. */
  readonly maxQuantileBins: number;
}

/**
 * librosa.feature.spectral_contrast's bands for `count` outputs (librosa's n_bands + 1):
 * [0, fmin], then octaves from fmin, the last one extended to Nyquist; each band above the
 * first also takes the bin just below it, each band but the last drops its top bin, and
 * the quantile size is max(1, rint(quantile · bins in the band before that drop)).
 * Throws when an octave edge would reach Nyquist, as librosa does.
 */
export function contrastBands(sampleRate: number, fftSize: number, count: number, fmin = 200, quantile = 0.02): ContrastBands {
  const nBands = count - 1;
  const bins = fftSize / 2 + 1;
  const edges = [0];
  for (let i = 0; i <= nBands; i++) edges.push(fmin * 2 ** i);
  for (let k = 0; k < edges.length - 1; k++) {
    if (edges[k]! >= sampleRate / 2) {
      throw new RangeError(
        `spectral contrast: ${count} bands from ${fmin} Hz need an octave edge at ${edges[k]} Hz, at or above Nyquist (${sampleRate / 2} Hz); use fewer contrastBands`,
      );
    }
  }
  const freq = (k: number) => (k * sampleRate) / fftSize;
  const start = new Int32Array(count);
  const end = new Int32Array(count);
  const quantileBins = new Int32Array(count);
  for (let k = 0; k < count; k++) {
    const lo = edges[k]!;
    const hi = edges[k + 1]!;
    let first = -1;
    let last = -1;
    for (let b = 0; b < bins; b++) {
      if (freq(b) >= lo && freq(b) <= hi) {
        if (first < 0) first = b;
        last = b;
      }
    }
    if (first < 0) throw new RangeError(`spectral contrast: band ${lo}–${hi} Hz holds no FFT bin at fftSize ${fftSize}; use a larger fftSize`);
    if (k > 0 && first > 0) first--;
    if (k === nBands) last = bins - 1;
    const selected = last - first + 1;
    start[k] = first;
    end[k] = k < nBands ? last : last + 1;
    if (end[k]! <= start[k]!) throw new RangeError(`spectral contrast: band ${lo}–${hi} Hz is empty at fftSize ${fftSize}; use a larger fftSize`);
    quantileBins[k] = Math.max(1, roundHalfEven(quantile * selected));
  }
  return { count, start, end, quantileBins, maxQuantileBins: Math.max(...quantileBins) };
}

/** numpy's rint. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** librosa's power_to_db floor (amin). */
const AMIN = 1e-10;

/**
 * Spectral contrast per band: 10·log10(peak) − 10·log10(valley), peak and valley being the
 * means of the q largest and q smallest amplitudes of the band (librosa applies
 * power_to_db to the magnitude spectrum, hence 10·log10 of amplitudes).
 *
 * Exact, but without librosa's sort: q is tiny (1 or 2 for the default 512-point FFT), so
 * one pass keeps the q largest and q smallest values in two small sorted scratch lists
 * (`top`, `bottom`, each ≥ maxQuantileBins long), O(bins·q).
 *
 * Deviation from librosa: its power_to_db also clips each of peak and valley at 80 dB
 * below their maximum over the whole clip (top_db), which a streaming per-frame feature
 * cannot know; only the 1e-10 floor is applied.
 */
export function spectralContrast(
  amplitude: Float64Array,
  bands: ContrastBands,
  top: Float64Array,
  bottom: Float64Array,
  out: FeatureOutput,
  offset: number,
): void {
  for (let b = 0; b < bands.count; b++) {
    const q = bands.quantileBins[b]!;
    const from = bands.start[b]!;
    const to = bands.end[b]!;
    let peak: number;
    let valley: number;
    if (q === 1) {
      let max = amplitude[from]!;
      let min = max;
      for (let k = from + 1; k < to; k++) {
        const a = amplitude[k]!;
        if (a > max) max = a;
        else if (a < min) min = a;
      }
      peak = max;
      valley = min;
    } else {
      // top[] ascending (top[0] is the smallest kept), bottom[] descending (bottom[0] the largest kept).
      let filled = 0;
      for (let k = from; k < to; k++) {
        const a = amplitude[k]!;
        if (filled < q) {
          insertAscending(top, filled, a);
          insertDescending(bottom, filled, a);
          filled++;
          continue;
        }
        if (a > top[0]!) replaceSmallest(top, q, a);
        if (a < bottom[0]!) replaceLargest(bottom, q, a);
      }
      let sumTop = 0;
      let sumBottom = 0;
      for (let i = 0; i < filled; i++) {
        sumTop += top[i]!;
        sumBottom += bottom[i]!;
      }
      peak = sumTop / filled;
      valley = sumBottom / filled;
    }
    const p = peak > AMIN ? peak : AMIN;
    const v = valley > AMIN ? valley : AMIN;
    out[offset + b] = 10 * Math.log10(p / v);
  }
}

function insertAscending(list: Float64Array, length: number, value: number): void {
  let i = length;
  while (i > 0 && list[i - 1]! > value) {
    list[i] = list[i - 1]!;
    i--;
  }
  list[i] = value;
}

function insertDescending(list: Float64Array, length: number, value: number): void {
  let i = length;
  while (i > 0 && list[i - 1]! < value) {
    list[i] = list[i - 1]!;
    i--;
  }
  list[i] = value;
}

/** Drops list[0] (the smallest of an ascending list) and inserts value in order. */
function replaceSmallest(list: Float64Array, length: number, value: number): void {
  let i = 0;
  while (i + 1 < length && list[i + 1]! < value) {
    list[i] = list[i + 1]!;
    i++;
  }
  list[i] = value;
}

/** Drops list[0] (the largest of a descending list) and inserts value in order. */
function replaceLargest(list: Float64Array, length: number, value: number): void {
  let i = 0;
  while (i + 1 < length && list[i + 1]! > value) {
    list[i] = list[i + 1]!;
    i++;
  }
  list[i] = value;
}
