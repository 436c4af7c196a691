import { readFile, stat } from 'node:fs/promises';
import { MANIFEST_FILE } from '../../model/bundle-manifest.js';
import { parseManifest, sha256 } from '../../model/model-bundle.js';
import type { ModelInstallCommand } from '../../mqtt/payload-schemas.js';
import { ArchiveError, packBundle, unpackBundle } from '../../update/bundle-archive.js';
import { SIGNATURE_FILE } from '../../update/bundle-signature.js';

/**
 * The most packed bundle an install command carries inline: the gateway's default
 * `update.maxInlineBytes` (8 MiB). A bigger one is served over http(s) (`--url`).
 */
export const MAX_INLINE_BYTES = 8 * 1024 * 1024;

/** A BUNDLE argument that cannot be published as it is (exit 2): missing, not a bundle, unsigned, damaged. */
export class BundleInputError extends Error {
  override name = 'BundleInputError';
}

/** A bundle ready to go out: the packed bytes the gateways receive and what they will say about it. */
export interface BundleToPublish {
  /** The BUNDLE argument as given. */
  path: string;
  from: 'directory' | 'packed';
  /** The tar (`ser-edge model pack`'s bytes: packing is reproducible). */
  packed: Buffer;
  /** sha256 of the packed bytes, what a url install names. */
  sha256: string;
  name: string;
  version: string;
  /** sha256 of its manifest.json, as the gateway's `…/model` names the bundle. */
  manifestSha256: string;
}

/**
 * Reads BUNDLE, a bundle directory (packed here, as `model pack` would) or a packed file,
 * and checks locally what would make every gateway refuse it, so the tech hears it before
 * anything is sent: not a bundle, an invalid manifest, a file that does not match its
 * sha256, and no signature (a gateway installs only bundles signed by a trusted key; which
 * keys it trusts only the gateway knows).
 */
export async function readBundleToPublish(path: string): Promise<BundleToPublish> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new BundleInputError(
      error.code === 'ENOENT'
        ? `BUNDLE ${path}: no such file or directory; give a model bundle directory or a file packed by ser-edge model pack`
        : `BUNDLE ${path}: cannot read it (${error.code ?? error.message}); check the path and its permissions`,
    );
  });
  const from = info.isDirectory() ? 'directory' : 'packed';
  let packed: Buffer;
  try {
    packed = info.isDirectory() ? await packBundle(path) : await readFile(path);
  } catch (error) {
    throw new BundleInputError(`BUNDLE: ${(error as Error).message}`);
  }
  let files: Map<string, Buffer>;
  try {
    files = await unpackBundle(packed);
  } catch (error) {
    if (error instanceof ArchiveError) throw new BundleInputError(`BUNDLE ${path} is not a packed model bundle: ${error.message}`);
    throw error;
  }
  const manifestBytes = files.get(MANIFEST_FILE)!;
  let manifest;
  try {
    manifest = parseManifest(manifestBytes.toString('utf8'), path);
  } catch (error) {
    // parseManifest's message already names the bundle ("model bundle PATH: manifest.json key …").
    throw new BundleInputError(`BUNDLE: ${(error as Error).message}`);
  }
  for (const [name, entry] of Object.entries(manifest.files)) {
    const data = files.get(name);
    if (data === undefined) throw new BundleInputError(`BUNDLE ${path}: ${name}, listed in ${MANIFEST_FILE}, is not in it; pack the bundle directory again`);
    if (data.length !== entry.bytes || sha256(data) !== entry.sha256) {
      throw new BundleInputError(`BUNDLE ${path}: ${name} does not match the size and sha256 ${MANIFEST_FILE} gives it; the bundle was changed after it was written, so no gateway would install it`);
    }
  }
  if (!files.has(SIGNATURE_FILE)) {
    throw new BundleInputError(
      `BUNDLE ${path} (${manifest.name} ${manifest.version}) is not signed, and a gateway installs a remote bundle only when one of its model.trustedKeys signed it: ` +
        `sign it with ser-edge model sign BUNDLE_DIR --key FILE${from === 'packed' ? ', then pack it again' : ''}`,
    );
  }
  return { path, from, packed, sha256: sha256(packed), name: manifest.name, version: manifest.version, manifestSha256: sha256(manifestBytes) };
}

export interface InstallOptions {
  /** Where the gateways download the packed bundle from, instead of carrying it inline. */
  url?: string;
  /** Minutes of shadow trial: stage it beside the active model instead of switching to it. */
  shadowMinutes?: number;
  force: boolean;
}

/** Why this bundle cannot go out as asked (exit 2), or null: too big inline, or a url that is not http(s). */
export function installProblem(bundle: BundleToPublish, options: InstallOptions): string | null {
  if (options.url !== undefined) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      return `--url ${options.url} is not a URL: give the http(s) address the gateways download the packed bundle from`;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return `--url ${options.url} is not http(s): gateways download bundles over http or https only`;
    return null;
  }
  if (bundle.packed.length > MAX_INLINE_BYTES) {
    return (
      `BUNDLE ${bundle.path} is ${mebibytes(bundle.packed.length)} packed, more than the ${mebibytes(MAX_INLINE_BYTES)} a command carries inline (the gateways' update.maxInlineBytes): ` +
      `serve the packed file over http(s) and give its address with --url URL${bundle.from === 'directory' ? ' (ser-edge model pack writes the file, byte for byte what would be sent)' : ''}`
    );
  }
  return null;
}

export function mebibytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(bytes < 1024 * 1024 ? 2 : 1)} MiB`;
}

/**
 * Builds the install commands for this bundle: the inline base64 is made once, not per
 * gateway (it is most of an 11 MiB command), and only the correlation id differs.
 */
export function installCommands(bundle: BundleToPublish, options: InstallOptions): (correlationId: string) => ModelInstallCommand {
  const body: ModelInstallCommand['bundle'] = options.url !== undefined ? { url: options.url, bytes: bundle.packed.length, sha256: bundle.sha256 } : { inline: bundle.packed.toString('base64') };
  return (correlationId) => ({
    schema: 1,
    correlationId,
    bundle: body,
    mode: options.shadowMinutes !== undefined ? 'shadow' : 'activate',
    ...(options.shadowMinutes !== undefined ? { shadowMinutes: options.shadowMinutes } : {}),
    force: options.force,
  });
}
