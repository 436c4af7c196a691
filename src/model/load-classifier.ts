import type { Classifier } from './classifier.js';
import { runSelfTest } from './classifier.js';
import { KnnClassifier } from './knn-classifier.js';
import { BundleError, loadBundle, type ModelBundle } from './model-bundle.js';

/** Builds the classifier a verified bundle describes. */
export function classifierFromBundle(bundle: ModelBundle): Classifier {
  switch (bundle.manifest.kind) {
    case 'knn':
      return KnnClassifier.fromBundle(bundle);
    case 'gru':
      throw new BundleError(bundle.dir, 'GRU bundles need the GRU runtime, which this build does not include yet');
  }
}

/** Loads, verifies and self-tests a bundle: a model that fails any check is never used. */
export async function loadClassifier(dir: string): Promise<Classifier> {
  const bundle = await loadBundle(dir);
  const classifier = classifierFromBundle(bundle);
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
