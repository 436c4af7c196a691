import { pino } from 'pino';
import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import type { BundleManifest } from '../../model/bundle-manifest.js';
import { runSelfTest, type Classifier } from '../../model/classifier.js';
import { loadModel } from '../load-model.js';
import { fail, pass, type CheckResult } from './check-result.js';
import { modelKeysCheck, modelSignatureCheck } from './trust-checks.js';

/**
 * A check a model bundle must pass, beyond its file hashes and self-test, before a gateway
 * should trust it; each registered check adds its rows under its `check` key. It also runs
 * when the bundle did not load (`bundle` null), for what it can say about the config alone.
 */
export interface BundleTrustCheck {
  /** The rows' key, e.g. `model-signature`. */
  readonly check: string;
  verify(context: { model: ResolvedConfig['model']; bundle: { dir: string; manifest: BundleManifest } | null }): Promise<CheckResult[]>;
}

/** The signature of the configured bundle, and each trusted key it may be checked against (trust-checks.ts). */
export const BUNDLE_TRUST_CHECKS: readonly BundleTrustCheck[] = [modelSignatureCheck, modelKeysCheck];

export interface ModelCheckOutcome {
  rows: CheckResult[];
  /** The loaded model, for the capacity measurement; null when it did not load. */
  classifier: Classifier | null;
}

/**
 * Loads the configured bundle the way `run` does (files verified against their sha256,
 * the profile's runtime and backends, refused unless it passes its self-test), then
 * runs every registered trust check on it: its signature is a row of its own, so a bundle
 * that loads but may not run says both.
 */
export async function modelCheck(model: ResolvedConfig['model'], trustChecks: readonly BundleTrustCheck[] = BUNDLE_TRUST_CHECKS): Promise<ModelCheckOutcome> {
  const started = performance.now();
  let classifier: Classifier;
  try {
    classifier = await loadModel(model, pino({ level: 'silent' }), { verifyTrust: false });
  } catch (error) {
    const rows = [
      fail('model', {
        subject: model.dir,
        detail: (error as Error).message,
        fix: 'copy the bundle again from its release (every file the manifest lists, unchanged), or point model.dir (SER_EDGE_MODEL_DIR) at a bundle that loads; the shipped one is models/default',
      }),
    ];
    for (const trust of trustChecks) rows.push(...(await trust.verify({ model, bundle: null })));
    return { classifier: null, rows };
  }
  const loadMs = Math.round(performance.now() - started);
  const selfTest = runSelfTest(classifier);
  const { manifest } = classifier;
  const rows = [
    pass('model', {
      subject: model.dir,
      detail:
        `${manifest.name} ${manifest.version} (${manifest.kind}, ${classifier.labels.length} emotions) loaded in ${loadMs} ms: ` +
        `files match their sha256, self-test passed on ${selfTest.vectors} vector${selfTest.vectors === 1 ? '' : 's'} (largest error ${selfTest.maxAbsError.toExponential(1)}), runs on ${classifier.backend}`,
      data: { name: manifest.name, version: manifest.version, kind: manifest.kind, backend: classifier.backend, loadMs, selfTestVectors: selfTest.vectors, selfTestMaxError: selfTest.maxAbsError },
    }),
  ];
  for (const trust of trustChecks) rows.push(...(await trust.verify({ model, bundle: { dir: model.dir, manifest } })));
  return { rows, classifier };
}
