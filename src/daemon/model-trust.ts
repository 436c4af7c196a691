import type { Logger } from 'pino';
import type { ResolvedConfig } from '../config/load-daemon-config.js';
import { isShippedModelDir } from '../config/package-paths.js';
import { MANIFEST_FILE, manifestSchema } from '../model/bundle-manifest.js';
import type { ModelBundle } from '../model/model-bundle.js';
import { canonicalManifestBytes, loadTrustedKeys, SIGNATURE_FILE, type TrustedKey } from '../update/bundle-signature.js';
import { checkBundleTrust, readBundleSignature, readManifestJson } from '../update/bundle-trust.js';

/**
 * The configured bundle may not run: its signature is bad or by a key model.trustedKeys
 * does not list, it is unsigned without model.allowUnsigned, or a trusted key cannot be
 * read. A config problem, like a TLS file that is not there: `run` exits 2, and systemd
 * does not restart it into the same refusal.
 */
export class ModelTrustError extends Error {
  override name = 'ModelTrustError';
  constructor(
    readonly reason: 'unsigned' | 'unknown_key' | 'bad_signature' | 'trusted_keys' | 'download_ca',
    message: string,
  ) {
    super(message);
  }
}

/** What a bundle's signature must satisfy: the keys it may be signed by, and whether none at all will do. */
export interface ModelTrustPolicy {
  keys: readonly TrustedKey[];
  allowUnsigned: boolean;
}

/** The trust policy the config gives: model.trustedKeys, each read and checked now, and model.allowUnsigned. */
export async function configuredTrust(model: Pick<ResolvedConfig['model'], 'trustedKeys' | 'allowUnsigned'>): Promise<ModelTrustPolicy> {
  try {
    return { keys: await loadTrustedKeys(model.trustedKeys), allowUnsigned: model.allowUnsigned };
  } catch (error) {
    throw new ModelTrustError('trusted_keys', (error as Error).message);
  }
}

/**
 * Refuses a bundle its signature does not let run (ModelTrustError, saying what to do), and
 * logs which key signed one that may; an unsigned one that may run is warned about at every
 * start, so it is never forgotten on a gateway. The signature is checked over the manifest
 * loadBundle verified the files against, so it covers exactly what runs.
 */
export async function verifyModelTrust(bundle: ModelBundle, policy: ModelTrustPolicy, logger: Logger): Promise<void> {
  let signatureText: Buffer | undefined;
  try {
    signatureText = await readBundleSignature(bundle.dir);
  } catch (error) {
    throw new ModelTrustError('bad_signature', `model bundle ${bundle.dir}: cannot read its ${SIGNATURE_FILE} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); check the file's permissions`);
  }
  // The signature covers manifest.json's JSON; the manifest that loaded must be that one.
  let manifestJson: unknown;
  try {
    manifestJson = await readManifestJson(bundle.dir);
  } catch (error) {
    throw new ModelTrustError('bad_signature', `${(error as Error).message}; its signature cannot be checked`);
  }
  const reread = manifestSchema.safeParse(manifestJson);
  if (!reread.success || !canonicalManifestBytes(reread.data).equals(canonicalManifestBytes(bundle.manifest))) {
    throw new ModelTrustError('bad_signature', `model bundle ${bundle.dir}: ${MANIFEST_FILE} changed while the bundle was loading; start again once nothing writes to it`);
  }
  const trust = await checkBundleTrust({ manifest: manifestJson, signatureText }, policy.keys, policy.allowUnsigned);
  const model = { name: bundle.manifest.name, version: bundle.manifest.version };
  if (trust.ok && trust.signed) {
    logger.info({ model, dir: bundle.dir, keyId: trust.key.keyId, keyFile: trust.key.file, signedAt: trust.signedAt }, 'model bundle signature verified');
  } else if (trust.ok) {
    logger.warn({ model, dir: bundle.dir }, `model bundle is unsigned: loaded because ${unsignedAllowedBecause(bundle.dir)}`);
  } else {
    throw new ModelTrustError(trust.reason, `model bundle ${bundle.dir}: ${trustProblem(trust.reason, trust.message)}; ${trustFix(trust.reason, bundle.dir)}`);
  }
}

/** Why an unsigned bundle at `dir` was let through (model.allowUnsigned is true for it). */
export function unsignedAllowedBecause(dir: string): string {
  return isShippedModelDir(dir) ? 'it is the shipped models/default (model.allowUnsigned defaults to true for it alone)' : 'model.allowUnsigned is true';
}

/** What is wrong with a refused bundle's signature, in a local bundle's terms. */
export function trustProblem(reason: 'unsigned' | 'unknown_key' | 'bad_signature', message: string): string {
  return reason === 'unsigned' ? `it is unsigned (it has no ${SIGNATURE_FILE}) and model.allowUnsigned is false` : message;
}

/** What to do about a refused local bundle at `dir`. */
export function trustFix(reason: 'unsigned' | 'unknown_key' | 'bad_signature', dir: string): string {
  switch (reason) {
    case 'unsigned':
      return (
        `sign it where the signing key is kept (\`ser-edge model sign ${dir} --key model-signing.key\`) and list that key's .pub in model.trustedKeys, ` +
        'or set model.allowUnsigned: true to run it unsigned (development only)'
      );
    case 'unknown_key':
      return "add the signer's public key (the .pub `ser-edge model keygen` wrote beside its .key) to model.trustedKeys, or point model.dir at a bundle signed by a key it lists";
    case 'bad_signature':
      return `copy the bundle again from its release, unchanged, or if it was changed on purpose, sign it again (\`ser-edge model sign ${dir} --key FILE\`)`;
  }
}
