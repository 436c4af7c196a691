import type { FeatureOutput } from './output.js';

/**
 * Amplitudes are floored here before the geometric mean (librosa's amin for flatness).
 * meyda takes ln(0) = −∞ for an empty bin, giving flatness 0, and 0/0 = NaN for silence;
 * with the floor an empty bin only pulls the value down and silence gives 1 (flat).
 */
const AMPLITUDE_FLOOR = 1e-10;

/**
 * meyda's spectralFlatness: geometric over arithmetic mean of the amplitude spectrum over
 * bins 0..bins−1. The geometric mean takes one logarithm per 16 bins (a running product),
 * not one per bin: a product of 16 amplitudes in [1e-10, 1e15] stays inside a double.
 */
export function spectralFlatness(amplitude: Float64Array, bins: number, out: FeatureOutput, offset: number): void {
  let logSum = 0;
  let sum = 0;
  let product = 1;
  for (let k = 0; k < bins; k++) {
    const a = amplitude[k]! > AMPLITUDE_FLOOR ? amplitude[k]! : AMPLITUDE_FLOOR;
    sum += a;
    product *= a;
    if ((k & 15) === 15) {
      logSum += Math.log(product);
      product = 1;
    }
  }
  logSum += Math.log(product);
  out[offset] = (Math.exp(logSum / bins) * bins) / sum;
}
