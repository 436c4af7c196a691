import type { FeatureConfig } from './feature-config.js';

/**
 * The analysis window exactly as meyda builds it, values rounded to Float32 like meyda's
 * window buffers, so windowed frames agree with meyda bit for bit:
 * - hann: the symmetric 0.5 − 0.5·cos(2πi/(N−1)) (meyda's 'hanning');
 * - hamming: meyda's 0.54 − 0.46·cos(2π(i/N − 1)), i.e. the periodic form.
 */
export function analysisWindow(kind: FeatureConfig['window'], size: number): Float64Array {
  const w = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    w[i] = Math.fround(kind === 'hann' ? 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (size - 1)) : 0.54 - 0.46 * Math.cos(2 * Math.PI * (i / size - 1)));
  }
  return w;
}
