import { applyFilterBank, type SparseFilterBank } from '../filter-bank.js';

/**
 * meyda's chroma: the amplitude spectrum through the 12 chroma filters, scaled so the
 * largest is 1. An all-zero chroma (silence) stays all zero.
 */
export function chroma(amplitude: Float64Array, bank: SparseFilterBank, out: Float64Array): void {
  applyFilterBank(bank, amplitude, out);
  let max = 0;
  for (let c = 0; c < 12; c++) if (out[c]! > max) max = out[c]!;
  if (max > 0) {
    const inv = 1 / max;
    for (let c = 0; c < 12; c++) out[c] = out[c]! * inv;
  }
}
