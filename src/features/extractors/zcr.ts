import type { FeatureOutput } from './output.js';

/**
 * Zero-crossing rate: meyda's zcr (sign changes of the windowed frame, 0 counted as
 * positive) divided by the frame length, so the value does not depend on frameSize
 * (meyda returns the count; count = rate × frameSize).
 */
export function zcr(windowed: Float64Array, length: number, out: FeatureOutput, offset: number): void {
  // Sign bits as 0/1 and XOR rather than an if: noisy frames make that branch unpredictable.
  let count = 0;
  let negative = +(windowed[0]! < 0);
  for (let i = 1; i < length; i++) {
    const n = +(windowed[i]! < 0);
    count += n ^ negative;
    negative = n;
  }
  out[offset] = count / length;
}
