import { createChromaFilterBank, createMelFilterBank } from 'meyda/dist/node/utilities.js';

/**
 * A filter bank stored as its non-zero weights only (compressed rows): filter f owns
 * entries offset[f] .. offset[f+1]−1, each a spectrum bin and a weight. Mel triangles span
 * a few bins and chroma rows are narrow peaks once per octave, so this visits about a
 * sixth of what a dense bank would.
 */
export interface SparseFilterBank {
  readonly filters: number;
  readonly offset: Int32Array;
  readonly bins: Int32Array;
  readonly weights: Float64Array;
}

/** Keeps the weights of bins `< usableBins` whose magnitude exceeds `threshold`. */
export function sparseFilterBank(dense: readonly (readonly number[])[], usableBins: number, threshold = 0): SparseFilterBank {
  const filters = dense.length;
  const offset = new Int32Array(filters + 1);
  const bins: number[] = [];
  const weights: number[] = [];
  for (let f = 0; f < filters; f++) {
    const row = dense[f]!;
    const end = Math.min(usableBins, row.length);
    for (let k = 0; k < end; k++) {
      if (Math.abs(row[k]!) > threshold) {
        bins.push(k);
        weights.push(row[k]!);
      }
    }
    offset[f + 1] = bins.length;
  }
  return { filters, offset, bins: Int32Array.from(bins), weights: Float64Array.from(weights) };
}

/**
 * meyda's mel filter bank (triangles on the 1125·ln(1 + f/700) mel scale from 0 Hz to
 * Nyquist) for an FFT of `fftSize`, restricted like meyda's melBands to bins < fftSize/2.
 */
export function melFilterBank(melBands: number, sampleRate: number, fftSize: number): SparseFilterBank {
  return sparseFilterBank(createMelFilterBank(melBands, sampleRate, fftSize), fftSize / 2);
}

/**
 * Weights below this share of the bank's largest are dropped. meyda's chroma rows are
 * Gaussians that never reach exactly zero, so dense rows cover every bin; the dropped
 * tails add up to under 1e-8 of the peak weight (for 16 kHz / 512) while 554 of the 3072
 * weights remain.
 */
const CHROMA_TAIL = 1e-9;

/** meyda's 12-bin chroma filter bank (C at index 0, A440 tuning) over bins < fftSize/2. */
export function chromaFilterBank(sampleRate: number, fftSize: number): SparseFilterBank {
  const dense = createChromaFilterBank(12, sampleRate, fftSize);
  let peak = 0;
  for (const row of dense) for (const w of row) peak = Math.max(peak, Math.abs(w));
  return sparseFilterBank(dense, fftSize / 2, peak * CHROMA_TAIL);
}

/** Σ weights·spectrum over each filter into `out[0..filters)`. */
export function applyFilterBank(bank: SparseFilterBank, spectrum: Float64Array, out: Float64Array): void {
  const offset = bank.offset;
  const bins = bank.bins;
  const weights = bank.weights;
  for (let f = 0; f < bank.filters; f++) {
    let sum = 0;
    const end = offset[f + 1]!;
    for (let e = offset[f]!; e < end; e++) sum += weights[e]! * spectrum[bins[e]!]!;
    out[f] = sum;
  }
}
