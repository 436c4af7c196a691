import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import { parseManifest } from '../model/model-bundle.js';
import { keyIdOf, readPrivateSigningKey } from './signing-keys.js';

/**
 * The bundle's signature, beside its manifest. It is not listed in the manifest's files
 * (it is made after them): what it signs is the manifest, whose sha256 of every file makes
 * the signature cover the weights too.
 */
export const SIGNATURE_FILE = 'signature.json';

export const BundleSignature = z
  .strictObject({
    schema: z.literal(1),
    algorithm: z.literal('ed25519'),
    keyId: z.string().regex(/^[0-9a-f]{16}$/, '16 hex digits (ser-edge model keygen prints it)'),
    /** Over `canonicalManifestBytes` of the manifest. */
    signature: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64'),
    signedAt: z.iso.datetime(),
  })
  .describe('ed25519 signature of a model bundle (signature.json)');
export type BundleSignature = z.infer<typeof BundleSignature>;

export interface TrustedKey {
  /** Where it was read from, for messages. */
  file: string;
  keyId: string;
  key: KeyObject;
}

export type SignatureCheck =
  | { ok: true; key: TrustedKey }
  | { ok: false; reason: 'unsigned' | 'unknown_key' | 'bad_signature'; message: string };

/**
 * What is signed: the manifest's JSON value written with its object keys sorted at every
 * level and no whitespace, so neither formatting nor key order in the file matters while
 * every value does: name, version, labels, feature config, normaliser, self-test vectors
 * and every file's sha256. It is taken from the JSON as parsed, before the schema sees it,
 * so the signature is checked before anything else in the manifest is trusted.
 */
export function canonicalManifestBytes(manifestJson: unknown): Buffer {
  return Buffer.from(canonicalJson(manifestJson), 'utf8');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}


/** Signs a bundle directory with an ed25519 private key (PEM) and writes its signature.json. */
export async function signBundleDir(dir: string, privateKeyFile: string): Promise<BundleSignature> {
  const where = resolve(dir);
  const text = await readFile(join(where, MANIFEST_FILE), 'utf8');
  // Checked first: a manifest the schema refuses is never signed.
  parseManifest(text, where);
  const manifest: unknown = JSON.parse(text);
  const privateKey = await readPrivateSigningKey(privateKeyFile);
  const payload: BundleSignature = {
    schema: 1,
    algorithm: 'ed25519',
    keyId: keyIdOf(createPublicKey(privateKey)),
    signature: sign(null, canonicalManifestBytes(manifest), privateKey).toString('base64'),
    signedAt: new Date().toISOString(),
  };
  const tmp = join(where, `.${SIGNATURE_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(payload, null, 1)}\n`);
  await rename(tmp, join(where, SIGNATURE_FILE));
  return payload;
}

/**
 * Checks a bundle's signature against the trusted keys. `manifest` is manifest.json's
 * parsed JSON (a BundleManifest will do); `signatureText` is signature.json's content, or
 * undefined when the bundle has none.
 */
export function verifyBundleSignature(manifest: unknown, signatureText: string | Buffer | undefined, trusted: readonly TrustedKey[]): SignatureCheck {
  if (signatureText === undefined) {
    return { ok: false, reason: 'unsigned', message: `the bundle has no ${SIGNATURE_FILE}: sign it with \`ser-edge model sign DIR --key FILE\`` };
  }
  let json: unknown;
  try {
    json = JSON.parse(signatureText.toString());
  } catch (error) {
    return { ok: false, reason: 'bad_signature', message: `${SIGNATURE_FILE} is not JSON (${(error as Error).message})` };
  }
  const parsed = BundleSignature.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: 'bad_signature', message: `${SIGNATURE_FILE} key "${issue.path.join('.') || '(root)'}": ${issue.message}` };
  }
  const key = trusted.find((k) => k.keyId === parsed.data.keyId);
  if (key === undefined) {
    const known = trusted.length === 0 ? 'no key is trusted (model.trustedKeys is empty)' : `trusted: ${trusted.map((k) => `${k.keyId} (${k.file})`).join(', ')}`;
    return { ok: false, reason: 'unknown_key', message: `signed by key ${parsed.data.keyId}, which this gateway does not trust; ${known}` };
  }
  const good = verify(null, canonicalManifestBytes(manifest), key.key, Buffer.from(parsed.data.signature, 'base64'));
  if (!good) {
    return { ok: false, reason: 'bad_signature', message: `the signature by key ${key.keyId} does not match the manifest: the bundle was changed after it was signed, or signed with another key of the same id` };
  }
  return { ok: true, key };
}

/** Reads the public keys model.trustedKeys names; an unreadable or non-ed25519 file is an error naming it. */
export async function loadTrustedKeys(files: readonly string[]): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new Error(`cannot read trusted model key ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): check model.trustedKeys`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(text);
    } catch (error) {
      throw new Error(`trusted model key ${file} is not a PEM public key (${(error as Error).message}): use the .pub file \`ser-edge model keygen\` wrote`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`trusted model key ${file} is a ${key.asymmetricKeyType} key; model signatures are ed25519`);
    keys.push({ file, keyId: keyIdOf(key), key });
  }
  return keys;
}
