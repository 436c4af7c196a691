import { applyFilterBank, type SparseFilterBank } from '../filter-bank.js';

/**
 * meyda's melBands: ln(1 + Σ filter·power) per mel filter. The +1 keeps silence at 0
 * instead of −∞, and makes the value scale-dependent (signals are floats in [−1, 1]).
 */
export function logMelBands(power: Float64Array, bank: SparseFilterBank, out: Float64Array): void {
  applyFilterBank(bank, power, out);
  for (let f = 0; f < bank.filters; f++) out[f] = Math.log(1 + out[f]!);
}
