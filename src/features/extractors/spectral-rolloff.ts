import type { FeatureOutput } from './output.js';

/**
 * meyda's spectralRolloff in Hz: the frequency below which 99% of the summed amplitude
 * lies. Kept bit-compatible with meyda, including its bin width of
 * sampleRate / (2·(bins − 1)) (slightly wider than the true sampleRate / fftSize) and
 * its value for silence, bins × that width.
 */
export function spectralRolloff(amplitude: Float64Array, bins: number, sampleRate: number, out: FeatureOutput, offset: number): void {
  const binHz = sampleRate / (2 * (bins - 1));
  let energy = 0;
  for (let k = 0; k < bins; k++) energy += amplitude[k]!;
  const threshold = 0.99 * energy;
  let n = bins - 1;
  while (energy > threshold && n >= 0) {
    energy -= amplitude[n]!;
    n--;
  }
  out[offset] = (n + 1) * binHz;
}
