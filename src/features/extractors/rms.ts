import type { FeatureOutput } from './output.js';

/** meyda's rms: root mean square of the windowed frame's `length` samples. */
export function rms(windowed: Float64Array, length: number, out: FeatureOutput, offset: number): void {
  let sum = 0;
  for (let i = 0; i < length; i++) sum += windowed[i]! * windowed[i]!;
  out[offset] = Math.sqrt(sum / length);
}
