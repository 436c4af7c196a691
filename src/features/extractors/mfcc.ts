import type { FeatureOutput } from './output.js';

/**
 * meyda's DCT-II (package `dct`, scale 2) as a table. Row k of a DCT-II is symmetric
 * (k even) or antisymmetric (k odd) about the middle of its input, so only the first
 * half of each row is stored and applied to the sums (even k) or differences (odd k) of
 * mirrored inputs: half the multiply-adds of the full matrix.
 */
export interface DctTable {
  readonly count: number;
  readonly size: number;
  /** Row-major `count × ceil(size/2)`: 2·cos(π/size·(n + ½)·k) for n < ceil(size/2). */
  readonly halfMatrix: Float64Array;
  /** Mirrored sums and differences of the input, ceil(size/2) each (scratch). */
  readonly sums: Float64Array;
  readonly differences: Float64Array;
}

export function dctTable(count: number, size: number): DctTable {
  const half = Math.ceil(size / 2);
  const halfMatrix = new Float64Array(count * half);
  for (let k = 0; k < count; k++) {
    for (let n = 0; n < half; n++) {
      // For odd sizes the middle input is its own mirror: it is counted once via sums/differences below.
      halfMatrix[k * half + n] = 2 * Math.cos((Math.PI / size) * (n + 0.5) * k);
    }
  }
  return { count, size, halfMatrix, sums: new Float64Array(half), differences: new Float64Array(half) };
}

/**
 * meyda's MFCC: the first `count` coefficients of the unnormalised DCT-II of the log mel
 * bands (see logMelBands). No liftering, no orthonormal scaling: c0 is 2·Σ log-mel.
 */
export function mfcc(logMel: Float64Array, dct: DctTable, out: FeatureOutput, offset: number): void {
  const size = dct.size;
  const half = dct.halfMatrix.length / dct.count;
  const sums = dct.sums;
  const differences = dct.differences;
  for (let n = 0; n < size >> 1; n++) {
    sums[n] = logMel[n]! + logMel[size - 1 - n]!;
    differences[n] = logMel[n]! - logMel[size - 1 - n]!;
  }
  if (size & 1) {
    // The middle input: cos(π·k/2) makes it vanish from odd rows, so its "difference" is 0.
    sums[half - 1] = logMel[half - 1]!;
    differences[half - 1] = 0;
  }
  const m = dct.halfMatrix;
  for (let k = 0, row = 0; k < dct.count; k++, row += half) {
    const v = (k & 1) === 0 ? sums : differences;
    let sum = 0;
    for (let n = 0; n < half; n++) sum += m[row + n]! * v[n]!;
    out[offset + k] = sum;
  }
}
