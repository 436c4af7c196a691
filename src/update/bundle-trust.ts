import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import { BundleError } from '../model/model-bundle.js';
import { BundleSignature, SIGNATURE_FILE, verifyBundleSignature, type TrustedKey } from './bundle-signature.js';

/**
 * Whether a bundle may run here, as far as its signature goes:
 * - signed by a trusted key (`signed: true`, with the key and when it was signed);
 * - unsigned, and allowed to be (`signed: false`: only a local model.dir bundle under
 *   model.allowUnsigned; a remotely installed one never is);
 * - refused, with the reason code of the install contract and a message saying why.
 * A bundle that carries a signature is always verified: allowing unsigned bundles never
 * lets a bad or untrusted signature through.
 */
export type BundleTrust =
  | { ok: true; signed: true; key: TrustedKey; signedAt: string }
  | { ok: true; signed: false }
  | { ok: false; reason: 'unsigned' | 'unknown_key' | 'bad_signature'; message: string };

/** A signature is a few hundred bytes; anything much larger is not one. */
const MAX_SIGNATURE_BYTES = 64 * 1024;

/** The bundle's signature.json, or undefined when it has none. Other read errors throw. */
export async function readBundleSignature(dir: string): Promise<Buffer | undefined> {
  try {
    return await readFile(join(resolve(dir), SIGNATURE_FILE));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Judges a bundle's signature against the trusted keys. `bundle` is a bundle directory, or
 * manifest.json's JSON as parsed (what the signature covers; a BundleManifest will do) with
 * signature.json's content (undefined when it has none), which is what an install from
 * memory has. Throws a BundleError only when a directory's manifest.json cannot be read or
 * is not JSON; the manifest's schema is not this function's business.
 */
export async function checkBundleTrust(
  bundle: string | { manifest: unknown; signatureText: string | Buffer | undefined },
  trusted: readonly TrustedKey[],
  allowUnsigned: boolean,
): Promise<BundleTrust> {
  let manifest: unknown;
  let signatureText: string | Buffer | undefined;
  if (typeof bundle === 'string') {
    const where = resolve(bundle);
    manifest = await readManifestJson(where);
    try {
      signatureText = await readBundleSignature(where);
    } catch (error) {
      return { ok: false, reason: 'bad_signature', message: `cannot read ${SIGNATURE_FILE} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
    }
  } else {
    ({ manifest, signatureText } = bundle);
  }
  if (signatureText === undefined && allowUnsigned) return { ok: true, signed: false };
  if (signatureText !== undefined && signatureText.length > MAX_SIGNATURE_BYTES) {
    return { ok: false, reason: 'bad_signature', message: `${SIGNATURE_FILE} is ${signatureText.length} bytes, not a signature (a few hundred bytes)` };
  }
  const check = verifyBundleSignature(manifest, signatureText, trusted);
  if (!check.ok) return check;
  // verifyBundleSignature parsed it already: this cannot fail now.
  const { signedAt } = BundleSignature.parse(JSON.parse(signatureText!.toString()));
  return { ok: true, signed: true, key: check.key, signedAt };
}

/** A bundle directory's manifest.json as JSON, unchecked by the schema: what its signature covers. */
export async function readManifestJson(dir: string): Promise<unknown> {
  const where = resolve(dir);
  const text = await readFile(join(where, MANIFEST_FILE), 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new BundleError(where, error.code === 'ENOENT' ? `no ${MANIFEST_FILE} here: is this a model bundle directory?` : `cannot read ${MANIFEST_FILE} (${error.code})`);
  });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BundleError(where, `${MANIFEST_FILE} is not valid JSON (${(error as Error).message})`);
  }
}
