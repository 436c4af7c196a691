import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/load-daemon-config.js';
import type { Classifier } from '../model/classifier.js';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import { selfTestedClassifier } from '../model/load-classifier.js';
import { BundleError, loadBundle, sha256 } from '../model/model-bundle.js';
import { configuredTrust, verifyModelTrust, type ModelTrustPolicy } from './model-trust.js';

export interface LoadModelOptions {
  /** The keys and the unsigned policy; by default model.trustedKeys (read now) and model.allowUnsigned. */
  trust?: ModelTrustPolicy;
  /** false: no signature check at all (doctor checks it as a row of its own). Default true. */
  verifyTrust?: boolean;
}

/**
 * Loads the configured model bundle with the profile's runtime settings: every file against
 * its sha256, then its signature (a signed bundle by a trusted key, an unsigned one only
 * under model.allowUnsigned, with a warning at every start), then the model and its
 * self-test. With `model.runtime: "tfjs"`, a GRU bundle runs on TensorFlow.js with
 * `model.backends` (the first that loads here) and `model.threads`. Where the profile's
 * backends or threads cannot take effect, one log line says so, rather than the settings
 * being ignored quietly.
 */
export async function loadModel(model: ResolvedConfig['model'], logger: Logger, options: LoadModelOptions = {}): Promise<Classifier> {
  const bundle = await loadBundle(model.dir);
  if (options.verifyTrust !== false) await verifyModelTrust(bundle, options.trust ?? (await configuredTrust(model)), logger);
  const tfjs = model.runtime === 'tfjs';
  if (tfjs && model.backends.includes('wasm')) {
    // Taken only when the wasm backend initialises, so it must come before the model loads.
    const wasm = await import('../model/tfjs-wasm-backend.js');
    wasm.setThreadsCount(model.threads);
  }
  const classifier = await selfTestedClassifier(bundle, tfjs ? { gruRuntime: 'tfjs', tfBackends: model.backends } : {});
  const settings = { backends: model.backends, threads: model.threads, runtime: model.runtime, backend: classifier.backend };
  if (!tfjs || classifier.manifest.kind !== 'gru') {
    const why =
      classifier.manifest.kind === 'gru'
        ? 'they apply to GRU bundles on TensorFlow.js (model.runtime "tfjs"); this one runs on the fused int8 kernel'
        : `they apply to GRU bundles on TensorFlow.js; ${/^[aeiou]/.test(classifier.manifest.kind) ? 'an' : 'a'} ${classifier.manifest.kind} bundle runs on its own kernels`;
    logger.info(settings, `model.backends and model.threads not used: ${why} (${classifier.backend}), on one thread`);
    return classifier;
  }
  const { tf } = await import('../model/tf-backend.js');
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') {
    logger.warn(settings, `model.threads ${model.threads} not applied: TensorFlow.js has no thread setting for its ${backend} backend, which sizes its own thread pool`);
    return classifier;
  }
  // wasm reports what it really started; cpu is plain JavaScript on the event loop's thread.
  const threads = backend === 'wasm' ? (await import('../model/tfjs-wasm-backend.js')).getThreadsCount() : 1;
  if (threads === model.threads) {
    logger.info({ ...settings, threadsInUse: threads }, `model runs on TensorFlow.js ${backend} with ${threads} thread(s)`);
  } else {
    const why = backend === 'wasm' ? 'TensorFlow.js runs wasm without threads under Node' : 'the cpu backend is plain JavaScript on one thread';
    logger.warn({ ...settings, threadsInUse: threads }, `model.threads ${model.threads} not applied: the ${backend} backend runs ${threads} thread(s) here (${why})`);
  }
  return classifier;
}

/** The sha256 of a bundle's manifest.json, which names the bundle (the manifest lists every file's sha256). */
export async function manifestDigest(dir: string): Promise<string> {
  try {
    return sha256(await readFile(join(dir, MANIFEST_FILE)));
  } catch (error) {
    throw new BundleError(resolve(dir), `cannot read ${MANIFEST_FILE} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}
