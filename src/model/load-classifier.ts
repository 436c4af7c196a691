import type { Classifier } from './classifier.js';
import { runSelfTest } from './classifier.js';
import { EnsembleClassifier } from './ensemble-classifier.js';
import { FusedGruClassifier, type GruKernelName } from './gru/fused-gru-classifier.js';
import type { DistanceKernelName } from './int8-neighbour-search.js';
import { KnnClassifier } from './knn-classifier.js';
import { PooledMlpClassifier } from './mlp/pooled-mlp-classifier.js';
import { BundleError, loadBundle, type ModelBundle } from './model-bundle.js';
import type { TfBackendName } from './tf-backend.js';

export interface LoadClassifierOptions {
  /** GRU bundles: the hand-written kernel (default) or the TensorFlow.js reference. */
  gruRuntime?: 'fused' | 'tfjs';
  /** TensorFlow.js backend preference when gruRuntime is 'tfjs'. */
  tfBackends?: readonly TfBackendName[];
  /** Force a kernel (tests, benchmarks); `auto` picks wasm-simd where the runtime has it. */
  kernel?: 'auto' | DistanceKernelName | GruKernelName;
}

/**
 * Builds the classifier a verified bundle describes, without TensorFlow.js: KNN, GRU on
 * the fused kernel, the pooled MLP, or an ensemble of GRU and MLP members. (`loadClassifier` also offers the tfjs GRU runtime.)
 */
export function classifierFromBundle(bundle: ModelBundle, options: Pick<LoadClassifierOptions, 'kernel'> = {}): Classifier {
  const kernel = options.kernel ?? 'auto';
  switch (bundle.manifest.kind) {
    case 'knn':
      return KnnClassifier.fromBundle(bundle, { kernel });
    case 'gru':
      return FusedGruClassifier.fromBundle(bundle, { kernel });
    case 'mlp':
      return PooledMlpClassifier.fromBundle(bundle, { kernel });
    case 'ensemble':
      return EnsembleClassifier.fromBundle(bundle, { kernel });
  }
}

/** The classifier a verified bundle describes, with the GRU runtime the options ask for; not self-tested. */
export async function buildClassifier(bundle: ModelBundle, options: LoadClassifierOptions = {}): Promise<Classifier> {
  if (bundle.manifest.kind === 'gru' && options.gruRuntime === 'tfjs') {
    // Loaded only here: TensorFlow.js takes ~0.6 s to import, which a KNN model or the
    // fused GRU kernel never needs to pay.
    const { TfjsGruClassifier } = await import('./gru/tfjs-gru-classifier.js');
    return TfjsGruClassifier.fromBundle(bundle, options.tfBackends ? { tfBackends: options.tfBackends } : {});
  }
  return classifierFromBundle(bundle, options);
}

/** The classifier of a bundle `loadBundle` verified, refused unless it passes its self-test: a model that fails any check is never used. */
export async function selfTestedClassifier(bundle: ModelBundle, options: LoadClassifierOptions = {}): Promise<Classifier> {
  const classifier = await buildClassifier(bundle, options);
  const result = runSelfTest(classifier);
  if (!result.passed) {
    classifier.dispose();
    throw new BundleError(
      bundle.dir,
      result.vectors === 0 ? 'has no self-test vectors' : `fails its self-test: max error ${result.maxAbsError.toExponential(2)} over ${result.vectors} vectors`,
    );
  }
  return classifier;
}

/** Loads, verifies and self-tests a bundle. */
export async function loadClassifier(dir: string, options: LoadClassifierOptions = {}): Promise<Classifier> {
  return selfTestedClassifier(await loadBundle(dir), options);
}
