import type { FeatureOutput } from './output.js';

/**
 * meyda's spectralCentroid, in FFT bins (multiply by sampleRate / fftSize for Hz): the
 * amplitude-weighted mean bin over bins 0..bins−1. Silence gives 0 instead of meyda's NaN.
 */
export function spectralCentroid(amplitude: Float64Array, bins: number, out: FeatureOutput, offset: number): void {
  let num = 0;
  let den = 0;
  for (let k = 0; k < bins; k++) {
    num += k * amplitude[k]!;
    den += amplitude[k]!;
  }
  out[offset] = den > 0 ? num / den : 0;
}
