import { rm } from 'node:fs/promises';
import semver from 'semver';
import { FrameAnalyser } from '../features/frame-analyser.js';
import { MANIFEST_FILE, type BundleManifest } from '../model/bundle-manifest.js';
import { runSelfTest, type Classifier } from '../model/classifier.js';
import { BundleError, checkModelInput, loadBundle, parseManifest, sha256, type ModelBundle } from '../model/model-bundle.js';
import type { ModelInstallCommand } from '../mqtt/payload-schemas.js';
import { ArchiveError, unpackBundle } from './bundle-archive.js';
import { downloadBundle } from './bundle-download.js';
import { SIGNATURE_FILE, verifyBundleSignature, type TrustedKey } from './bundle-signature.js';
import { InstallError } from './install-error.js';
import type { ModelStore } from './model-store.js';

export interface BundleRef {
  name: string;
  version: string;
  /** sha256 of the bundle's manifest.json. */
  sha256: string;
}

/** Just the reference of a stored bundle or a state entry (no directory, no times): what logs and …/model name. */
export function refOf(bundle: BundleRef): BundleRef {
  return { name: bundle.name, version: bundle.version, sha256: bundle.sha256 };
}

export interface InstallPipelineDependencies {
  store: ModelStore;
  trustedKeys: readonly TrustedKey[];
  limits: { maxInlineBytes: number; maxBundleBytes: number; downloadTimeoutMs: number; ca?: Buffer };
  /** The classifier of a verified bundle, built as the daemon runs it (the profile's runtime); the pipeline self-tests it. */
  buildClassifier: (bundle: ModelBundle) => Promise<Classifier>;
  /** Null when the running channels can take a model with this feature config in `mode`, else why not. */
  canAdopt: (manifest: BundleManifest, mode: 'activate' | 'shadow') => string | null;
}

export interface PreparedBundle {
  ref: BundleRef;
  manifest: BundleManifest;
  /** Its directory in the store, store-relative. */
  storeDir: string;
  /** Loaded from the store's copy and self-tested. */
  classifier: Classifier;
}

/**
 * One install, step by step, each with its own reason code: the bytes (inline or
 * downloaded, size and sha256) → unpacked safely → signed by a trusted key → manifest
 * schema and files → newer than the active one → a feature config this extractor and the
 * running channels can honour → written to the store → loaded from the store's copy →
 * self-test. Nothing here touches the active model; a failure leaves no trace in the store.
 */
export async function prepareInstall(
  command: ModelInstallCommand,
  active: BundleRef | null,
  deps: InstallPipelineDependencies,
): Promise<PreparedBundle> {
  const packed = await packedBytes(command, deps.limits);
  let files: Map<string, Buffer>;
  try {
    files = await unpackBundle(packed, { maxEntryBytes: deps.limits.maxBundleBytes, maxEntries: 64 });
  } catch (error) {
    if (error instanceof ArchiveError) throw new InstallError(error.reason, error.message);
    throw error;
  }
  const manifestBytes = files.get(MANIFEST_FILE)!;
  let manifestJson: unknown;
  try {
    manifestJson = JSON.parse(manifestBytes.toString('utf8'));
  } catch (error) {
    throw new InstallError('invalid_manifest', `${MANIFEST_FILE} is not JSON (${(error as Error).message})`);
  }
  // Before the schema: nothing in an unsigned manifest is looked at.
  const trust = verifyBundleSignature(manifestJson, files.get(SIGNATURE_FILE), deps.trustedKeys);
  if (!trust.ok) throw new InstallError(trust.reason, trust.message);

  const manifest = manifestOf(manifestBytes);
  const listed = new Set(Object.keys(manifest.files));
  for (const [name, entry] of Object.entries(manifest.files)) {
    const data = files.get(name);
    if (data === undefined) throw new InstallError('file_mismatch', `${name}, listed in ${MANIFEST_FILE}, is not in the packed bundle`);
    if (data.length !== entry.bytes) throw new InstallError('file_mismatch', `${name} is ${data.length} bytes, the manifest says ${entry.bytes}`);
    if (sha256(data) !== entry.sha256) throw new InstallError('file_mismatch', `${name} fails its sha256 check against the signed manifest: it was altered or damaged`);
  }
  for (const name of files.keys()) {
    if (name !== MANIFEST_FILE && name !== SIGNATURE_FILE && !listed.has(name)) throw new InstallError('file_mismatch', `the packed bundle holds ${name}, which its manifest does not list`);
  }
  const ref: BundleRef = { name: manifest.name, version: manifest.version, sha256: sha256(manifestBytes) };
  try {
    return await installChecked(command, manifest, ref, files, active, deps);
  } catch (error) {
    if (error instanceof InstallError) error.bundle = { name: ref.name, version: ref.version };
    throw error;
  }
}

async function installChecked(
  command: ModelInstallCommand,
  manifest: BundleManifest,
  ref: BundleRef,
  files: ReadonlyMap<string, Buffer>,
  active: BundleRef | null,
  deps: InstallPipelineDependencies,
): Promise<PreparedBundle> {
  checkNewer(ref, active, command.force === true);
  checkFeatures(manifest, command.mode ?? 'activate', deps.canAdopt);

  let storeDir: string;
  try {
    storeDir = await deps.store.writeBundle(ref, files);
  } catch (error) {
    throw new InstallError('store_failed', `could not write the bundle into the model store ${deps.store.dir}: ${(error as Error).message}`);
  }
  try {
    return { ref, manifest, storeDir, classifier: await loadStored(deps.store.pathOf({ dir: storeDir }), deps.buildClassifier) };
  } catch (error) {
    await rm(deps.store.pathOf({ dir: storeDir }), { recursive: true, force: true });
    throw error;
  }
}

/** Loads a bundle from the store (every file against its sha256 again, on disk) and self-tests it. */
export async function loadStored(dir: string, buildClassifier: (bundle: ModelBundle) => Promise<Classifier>): Promise<Classifier> {
  let bundle: ModelBundle;
  try {
    bundle = await loadBundle(dir);
  } catch (error) {
    throw new InstallError('load_failed', (error as Error).message);
  }
  let classifier: Classifier;
  try {
    classifier = await buildClassifier(bundle);
  } catch (error) {
    throw new InstallError('load_failed', `the model does not load: ${(error as Error).message}`);
  }
  const result = runSelfTest(classifier);
  if (!result.passed) {
    classifier.dispose();
    throw new InstallError(
      'self_test_failed',
      result.vectors === 0 ? 'the bundle has no self-test vectors' : `the model fails its self-test vectors: max error ${result.maxAbsError.toExponential(2)} over ${result.vectors} (tolerance 1e-3); rebuild the bundle`,
    );
  }
  return classifier;
}

async function packedBytes(command: ModelInstallCommand, limits: InstallPipelineDependencies['limits']): Promise<Buffer> {
  const source = command.bundle;
  if ('inline' in source) {
    // Judged from the base64 length, before anything is decoded.
    const decoded = Math.floor((source.inline.length * 3) / 4) - (source.inline.endsWith('==') ? 2 : source.inline.endsWith('=') ? 1 : 0);
    if (decoded > limits.maxInlineBytes) {
      throw new InstallError('too_large', `the inline bundle is ${decoded} bytes, over update.maxInlineBytes (${limits.maxInlineBytes}); serve it over http(s) and send its url, bytes and sha256`);
    }
    return Buffer.from(source.inline, 'base64');
  }
  return downloadBundle(source, { timeoutMs: limits.downloadTimeoutMs, maxBytes: limits.maxBundleBytes, ...(limits.ca ? { ca: limits.ca } : {}) });
}

function manifestOf(bytes: Buffer): BundleManifest {
  try {
    return parseManifest(bytes.toString('utf8'), 'the installed bundle');
  } catch (error) {
    throw new InstallError('invalid_manifest', (error as Error).message);
  }
}

/** Anti-rollback: a signed install of an older bundle, replayed later, must do nothing unless forced. */
function checkNewer(ref: BundleRef, active: BundleRef | null, force: boolean): void {
  if (active === null) return;
  if (ref.sha256 === active.sha256) throw new InstallError('already_active', `${ref.name} ${ref.version} is the active model already; nothing to do`);
  if (force) return;
  if (!semver.gt(ref.version, active.version)) {
    throw new InstallError('not_newer', `version ${ref.version} is not newer than the active ${active.name} ${active.version}; send "force": true to install it anyway (ser-edge model publish --force)`);
  }
}

function checkFeatures(manifest: BundleManifest, mode: 'activate' | 'shadow', canAdopt: InstallPipelineDependencies['canAdopt']): void {
  try {
    checkModelInput(manifest, 'the installed bundle');
    // Builds every buffer and filter bank the config asks for: what this extractor cannot compute fails here.
    new FrameAnalyser(manifest.features);
  } catch (error) {
    const message = error instanceof BundleError ? error.message : `this gateway's feature extractor cannot compute its feature config: ${(error as Error).message}`;
    throw new InstallError('incompatible_features', message);
  }
  const refusal = canAdopt(manifest, mode);
  if (refusal !== null) throw new InstallError('incompatible_features', refusal);
}
