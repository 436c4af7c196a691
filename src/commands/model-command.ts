import { createHash, createPublicKey } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import { runSelfTest } from '../model/classifier.js';
import { classifierFromBundle } from '../model/load-classifier.js';
import { BundleError, checkModelInput, loadBundle, parseManifest, type ModelBundle } from '../model/model-bundle.js';
import { DEFAULT_INLINE_BYTES } from '../config/daemon-config.js';
import { packBundle } from '../update/bundle-archive.js';
import { BundleSignature, loadTrustedKeys, signBundleDir, SIGNATURE_FILE, verifyBundleSignature, type TrustedKey } from '../update/bundle-signature.js';
import { readBundleSignature } from '../update/bundle-trust.js';
import { generateSigningKeys, keyIdOf, readPrivateSigningKey } from '../update/signing-keys.js';

/**
 * `ser-edge model keygen|sign|verify|pack`: the field tech's local tools, run where the
 * signing key is kept, never on a gateway. Each prints what it did on stdout; a failure is
 * one line on stderr naming the bundle or file and what to do, with exit 1.
 */

/**
 * Why a bundle cannot be used, with the reason codes of the install contract
 * (INSTALL_REASONS); `manifest` is there once the manifest itself was valid.
 */
type BundleProblem = { reason: 'invalid_manifest' | 'file_mismatch' | 'load_failed' | 'self_test_failed'; message: string; manifestJson?: unknown };

interface CheckedBundle {
  bundle: ModelBundle;
  /** manifest.json's JSON as read: what a signature covers. */
  manifestJson: unknown;
  selfTest: { vectors: number; maxAbsError: number };
}

/**
 * Loads a bundle directory as a gateway would before running it: the manifest and its
 * schema, the model's input against the feature configuration, every file's size and
 * sha256, the model itself and its self-test vectors. The first step that fails names its
 * reason code, as `cmd/model.install` would.
 */
async function checkBundle(dir: string): Promise<CheckedBundle | BundleProblem> {
  const where = resolve(dir);
  let manifestJson: unknown;
  try {
    const text = await readFile(join(where, MANIFEST_FILE), 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new BundleError(where, error.code === 'ENOENT' ? `no ${MANIFEST_FILE} here: is this a model bundle directory?` : `cannot read ${MANIFEST_FILE} (${error.code})`);
    });
    checkModelInput(parseManifest(text, where), where);
    manifestJson = JSON.parse(text);
  } catch (error) {
    return { reason: 'invalid_manifest', message: (error as Error).message };
  }
  let bundle: ModelBundle;
  try {
    bundle = await loadBundle(where);
  } catch (error) {
    return { reason: 'file_mismatch', message: (error as Error).message, manifestJson };
  }
  let classifier;
  try {
    classifier = classifierFromBundle(bundle);
  } catch (error) {
    return { reason: 'load_failed', message: `model bundle ${where}: the model does not load (${(error as Error).message})`, manifestJson };
  }
  try {
    const result = runSelfTest(classifier);
    if (!result.passed) {
      return {
        reason: 'self_test_failed',
        manifestJson,
        message: `model bundle ${where} ${result.vectors === 0 ? 'has no self-test vectors' : `fails its self-test: max error ${result.maxAbsError.toExponential(2)} over ${result.vectors} vectors`}`,
      };
    }
    return { bundle, manifestJson, selfTest: { vectors: result.vectors, maxAbsError: result.maxAbsError } };
  } finally {
    classifier.dispose();
  }
}

const isProblem = (checked: CheckedBundle | BundleProblem): checked is BundleProblem => 'reason' in checked;

function failWith(command: string, message: string): number {
  process.stderr.write(`ser-edge model ${command}: ${message}\n`);
  return 1;
}

export async function runModelKeygen(options: { out: string }): Promise<number> {
  let keys;
  try {
    keys = await generateSigningKeys(options.out);
  } catch (error) {
    return failWith('keygen', (error as Error).message);
  }
  process.stdout.write(
    `private key ${keys.privateFile} (mode 0600)\n` +
      `public key  ${keys.publicFile}\n` +
      `key id      ${keys.keyId}\n` +
      `Keep ${basename(keys.privateFile)} off the gateways, on the machine that signs (back it up: a lost key cannot sign again); ` +
      `copy ${basename(keys.publicFile)} to each gateway and list it in model.trustedKeys.\n`,
  );
  return 0;
}

export async function runModelSign(dir: string, options: { key: string }): Promise<number> {
  const where = resolve(dir);
  // Read first: a key that cannot sign should not cost a bundle check, and its error comes first.
  let publicKey: TrustedKey;
  try {
    const key = createPublicKey(await readPrivateSigningKey(options.key));
    publicKey = { file: options.key, keyId: keyIdOf(key), key };
  } catch (error) {
    return failWith('sign', (error as Error).message);
  }
  const checked = await checkBundle(where);
  if (isProblem(checked)) return failWith('sign', `${checked.message} (${checked.reason}); not signed: a bundle that cannot load is never signed`);
  const before = await readBundleSignature(where).catch(() => undefined);
  let signature: BundleSignature;
  try {
    signature = await signBundleDir(where, options.key);
  } catch (error) {
    return failWith('sign', (error as Error).message);
  }
  // What was signed must be the manifest just checked, not one changed in between.
  const check = verifyBundleSignature(checked.manifestJson, await readFile(join(where, SIGNATURE_FILE)), [publicKey]);
  if (!check.ok) {
    await rm(join(where, SIGNATURE_FILE), { force: true });
    return failWith('sign', `${where}: ${MANIFEST_FILE} changed while it was being signed; the signature was removed, run the command again`);
  }
  const { manifest } = checked.bundle;
  const replaced = before === undefined ? '' : ` (it replaces the one by key ${parseSignature(before)?.keyId ?? '(unreadable)'})`;
  process.stdout.write(
    `signed ${manifest.name} ${manifest.version} (${where}) with key ${signature.keyId}: wrote ${SIGNATURE_FILE}${replaced}\n` +
      `checked first: ${Object.keys(manifest.files).length} files match their sha256, self-test passed on ${checked.selfTest.vectors} vectors\n`,
  );
  return 0;
}

/** signature.json's content as a signature, or null when it is not one. */
function parseSignature(text: Buffer): BundleSignature | null {
  try {
    return BundleSignature.parse(JSON.parse(text.toString()));
  } catch {
    return null;
  }
}

export async function runModelVerify(dir: string, options: { pub: string[] }): Promise<number> {
  const where = resolve(dir);
  let trusted: TrustedKey[];
  try {
    trusted = await loadTrustedKeys(options.pub.map((p) => resolve(p)));
  } catch (error) {
    return failWith('verify', (error as Error).message.replace(/: check model\.trustedKeys$/, ''));
  }
  const checked = await checkBundle(where);
  // The signature is over the manifest: without a valid one there is nothing to verify.
  const manifestJson = checked.manifestJson;
  if (manifestJson === undefined) return failWith('verify', `${where}: ${(checked as BundleProblem).reason}: ${(checked as BundleProblem).message}`);
  let signatureText: Buffer | undefined;
  try {
    signatureText = await readBundleSignature(where);
  } catch (error) {
    return failWith('verify', `${where}: bad_signature: cannot read ${SIGNATURE_FILE} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  // Who signed it first, then whether what it signs is what is there, and runs.
  const check = verifyBundleSignature(manifestJson, signatureText, trusted);
  if (!check.ok) return failWith('verify', `${where}: ${check.reason}: ${check.message}`);
  if (isProblem(checked)) return failWith('verify', `${where}: ${checked.reason}: ${checked.message}`);
  const { manifest } = checked.bundle;
  process.stdout.write(`verified ${manifest.name} ${manifest.version}: signed by key ${check.key.keyId} (${check.key.file}); files match their sha256, self-test passed\n`);
  return 0;
}

export async function runModelPack(dir: string, options: { out: string; allowUnsigned?: boolean }): Promise<number> {
  const where = resolve(dir);
  const out = resolve(options.out);
  const checked = await checkBundle(where);
  if (isProblem(checked)) return failWith('pack', `${checked.message} (${checked.reason}); not packed`);
  let signatureText: Buffer | undefined;
  try {
    signatureText = await readBundleSignature(where);
  } catch (error) {
    return failWith('pack', `${where}: cannot read ${SIGNATURE_FILE} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let signedBy: string | null = null;
  if (signatureText === undefined) {
    if (!options.allowUnsigned) {
      return failWith(
        'pack',
        `${where} is unsigned (no ${SIGNATURE_FILE}): a gateway refuses to install it. Sign it first (\`ser-edge model sign ${dir} --key model-signing.key\`), or pass --allow-unsigned to pack it anyway (gateways will still refuse to install it)`,
      );
    }
  } else {
    const signature = parseSignature(signatureText);
    if (signature === null) return failWith('pack', `${where}: ${SIGNATURE_FILE} is not a bundle signature; sign the bundle again (\`ser-edge model sign ${dir} --key FILE\`)`);
    // Whether it matches takes the public key (\`ser-edge model verify\`); a gateway checks it on install.
    signedBy = signature.keyId;
  }
  let packed: Buffer;
  try {
    packed = await packBundle(where);
  } catch (error) {
    return failWith('pack', (error as Error).message);
  }
  // Written beside its final name and renamed: a half-written pack is never taken for one.
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, packed);
    await rename(tmp, out);
  } catch (error) {
    await rm(tmp, { force: true });
    return failWith('pack', `cannot write ${out} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const sha256 = createHash('sha256').update(packed).digest('hex');
  const { manifest } = checked.bundle;
  const inline =
    packed.length <= DEFAULT_INLINE_BYTES
      ? `within the default update.maxInlineBytes (${DEFAULT_INLINE_BYTES} bytes): it can travel inline`
      : `over the default update.maxInlineBytes (${DEFAULT_INLINE_BYTES} bytes): install it by url`;
  process.stdout.write(
    `packed ${manifest.name} ${manifest.version} (${signedBy === null ? 'UNSIGNED' : `signed by key ${signedBy}`}) into ${out}\n` +
      `bytes  ${packed.length}\n` +
      `sha256 ${sha256}\n` +
      `${inline}; for a url install: "bundle": {"url": "https://…/${basename(out)}", "bytes": ${packed.length}, "sha256": "${sha256}"}\n`,
  );
  return 0;
}
