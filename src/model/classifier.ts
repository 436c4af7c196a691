import type { BundleManifest } from './bundle-manifest.js';
import type { Emotion } from './emotions.js';

/**
 * An emotion model over one analysis window. `predict` takes the window's frame vectors
 * (row-major frames × dim, as the FrameAnalyser writes them) and writes probabilities
 * over `labels` into `out`; `predictModelInput` takes what the model itself consumes
 * (the pooled vector or the normalised sequence), which is what self-test vectors hold.
 */
export interface Classifier {
  readonly labels: readonly Emotion[];
  readonly manifest: BundleManifest;
  /** Which implementation runs it, for telemetry: `knn-int8-js`, `gru-fused-int8`, `tfjs-wasm`… */
  readonly backend: string;
  predict(rows: Float32Array, frames: number, out: Float32Array): Float32Array;
  predictModelInput(input: Float32Array, out: Float32Array): Float32Array;
  /** The model input for a window, as self-test vectors store it (allocates: not for the hot path). */
  modelInput(rows: Float32Array, frames: number): Float32Array;
  dispose(): void;
}

export interface SelfTestResult {
  passed: boolean;
  vectors: number;
  maxAbsError: number;
}

/** Checks a classifier against its bundle's self-test vectors (input → expected probabilities). */
export function runSelfTest(classifier: Classifier, tolerance = 1e-3): SelfTestResult {
  const out = new Float32Array(classifier.labels.length);
  let maxAbsError = 0;
  for (const vector of classifier.manifest.selfTest) {
    classifier.predictModelInput(Float32Array.from(vector.input), out);
    for (let i = 0; i < out.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(out[i]! - vector.expected[i]!));
  }
  const vectors = classifier.manifest.selfTest.length;
  return { passed: vectors > 0 && maxAbsError <= tolerance, vectors, maxAbsError };
}

export function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
