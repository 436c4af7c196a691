import { sign } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack, type Header } from 'tar-stream';
import { MANIFEST_FILE } from '../../src/model/bundle-manifest.js';
import { sha256 } from '../../src/model/model-bundle.js';
import { packBundle } from '../../src/update/bundle-archive.js';
import { canonicalManifestBytes, signBundleDir, SIGNATURE_FILE } from '../../src/update/bundle-signature.js';
import { keyIdOf, readPrivateSigningKey } from '../../src/update/signing-keys.js';
import { createPublicKey } from 'node:crypto';

export interface VariantOptions {
  version: string;
  name?: string;
  /** Changes the manifest after it is read, before it is signed (a field tech's mistake, or an attacker's). */
  edit?: (manifest: Record<string, any>) => void;
  /** Signs with this private key; undefined leaves the bundle unsigned. */
  key?: string;
  /**
   * Signs the edited manifest as it is, without the schema check `ser-edge model sign`
   * makes: how a bundle that is signed yet invalid comes about.
   */
  signWithoutChecks?: boolean;
}

/** A copy of `baseDir` with its manifest changed as asked, signed (or not), in `outDir`. */
export async function bundleVariant(baseDir: string, outDir: string, options: VariantOptions): Promise<string> {
  cpSync(baseDir, outDir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(outDir, MANIFEST_FILE), 'utf8')) as Record<string, any>;
  manifest.version = options.version;
  if (options.name) manifest.name = options.name;
  options.edit?.(manifest);
  writeFileSync(join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
  if (options.key === undefined) return outDir;
  if (options.signWithoutChecks) {
    const key = await readPrivateSigningKey(options.key);
    const signature = { schema: 1, algorithm: 'ed25519', keyId: keyIdOf(createPublicKey(key)), signature: sign(null, canonicalManifestBytes(manifest), key).toString('base64'), signedAt: new Date().toISOString() };
    writeFileSync(join(outDir, SIGNATURE_FILE), JSON.stringify(signature));
  } else {
    await signBundleDir(outDir, options.key);
  }
  return outDir;
}

/** Swaps the first two labels: the same network, its answers renamed (a model that disagrees and may flood the queue). */
export function swapFirstLabels(manifest: Record<string, any>): void {
  const labels = manifest.labels as string[];
  [labels[0], labels[labels.length - 1]] = [labels[labels.length - 1]!, labels[0]!];
}

/** Changes one byte of a listed weights file and its sha256 in the manifest, as an attacker would. */
export function tamperWeights(dir: string): void {
  const manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as { files: Record<string, { sha256: string; bytes: number }> };
  const [name] = Object.keys(manifest.files);
  const data = readFileSync(join(dir, name!));
  data[data.length - 1]! ^= 0x01;
  writeFileSync(join(dir, name!), data);
  manifest.files[name!] = { sha256: sha256(data), bytes: data.length };
  writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
}

export { packBundle };

export type TarEntry = { header: Partial<Header> & { name: string }; data?: Buffer };

/** A tar with exactly the entries given, as an attacker would write it. */
export async function handMadeTar(entries: TarEntry[]): Promise<Buffer> {
  const tar = pack();
  for (const { header, data } of entries) tar.entry(header as Header, data ?? Buffer.alloc(0));
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The entries of a bundle directory's pack, with one more entry (a traversal, a link…)
 * slipped in when given; packed without the checks `packBundle` makes, as an attacker would.
 */
export async function packWithExtraEntry(dir: string, extra?: TarEntry): Promise<Buffer> {
  const manifestText = readFileSync(join(dir, MANIFEST_FILE));
  const manifest = JSON.parse(manifestText.toString()) as { files: Record<string, unknown> };
  const entries: TarEntry[] = [{ header: { name: MANIFEST_FILE, size: manifestText.length }, data: manifestText }];
  try {
    const signature = readFileSync(join(dir, SIGNATURE_FILE));
    entries.push({ header: { name: SIGNATURE_FILE, size: signature.length }, data: signature });
  } catch {
    // unsigned
  }
  for (const name of Object.keys(manifest.files)) {
    const data = readFileSync(join(dir, name));
    entries.push({ header: { name, size: data.length }, data });
  }
  if (extra) entries.push(extra);
  return handMadeTar(entries);
}
