import type { FeatureOutput } from './output.js';

/**
 * librosa's tonal-centroid basis (Harte, Sandler & Gasser 2006): rows are sin/cos pairs of
 * the circle of fifths (7π/6 per semitone, r = 1), minor thirds (3π/2, r = 1) and major
 * thirds (2π/3, r = 0.5), over the 12 chroma bins. Row-major 6 × 12.
 */
export const TONNETZ_BASIS: Float64Array = (() => {
  const scale = [7 / 6, 7 / 6, 3 / 2, 3 / 2, 2 / 3, 2 / 3];
  const radius = [1, 1, 1, 1, 0.5, 0.5];
  const phi = new Float64Array(72);
  for (let p = 0; p < 6; p++) {
    for (let c = 0; c < 12; c++) {
      // Even rows are shifted by half a turn of π, turning cos into sin.
      phi[p * 12 + c] = radius[p]! * Math.cos(Math.PI * (scale[p]! * c - (p % 2 === 0 ? 0.5 : 0)));
    }
  }
  return phi;
})();

/**
 * librosa's tonnetz: the basis applied to the L1-normalised chroma. Zero chroma (silence)
 * gives zeros, as librosa's normalise leaves all-zero columns alone.
 */
export function tonnetz(chroma: Float64Array, out: FeatureOutput, offset: number): void {
  let l1 = 0;
  for (let c = 0; c < 12; c++) l1 += Math.abs(chroma[c]!);
  const inv = l1 > 0 ? 1 / l1 : 0;
  for (let p = 0; p < 6; p++) {
    let sum = 0;
    for (let c = 0; c < 12; c++) sum += TONNETZ_BASIS[p * 12 + c]! * chroma[c]!;
    out[offset + p] = sum * inv;
  }
}
