import type { BundleManifest } from './bundle-manifest.js';
import type { Emotion } from './emotions.js';

/**
 * What a model keeps about the call in progress (for the MLP: the caller's own baseline).
 * Opaque to callers: they get one from `newCallContext()` when a call starts, pass it to
 * every `predict` of that call, and drop it when the call ends.
 */
export interface CallContext {
  readonly model: string;
}

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
  /**
   * `call` is this call's context (from `newCallContext`), which the model may read and
   * update; without one the window is judged as if it opened a call.
   */
  predict(rows: Float32Array, frames: number, out: Float32Array, call?: CallContext | null): Float32Array;
  /** A fresh per-call context, or null for a model that judges every window on its own. */
  newCallContext(): CallContext | null;
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
