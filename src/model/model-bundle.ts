import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, manifestSchema, type BundleManifest, type ManifestDraft } from './bundle-manifest.js';

/** A bundle that cannot be used: bad manifest, missing or altered file, failed self-test. */
export class BundleError extends Error {
  constructor(
    readonly bundleDir: string,
    message: string,
  ) {
    super(`model bundle ${bundleDir}: ${message}`);
    this.name = 'BundleError';
  }
}

export interface ModelBundle {
  dir: string;
  manifest: BundleManifest;
  /** Every file the manifest lists, verified against its sha256. */
  files: ReadonlyMap<string, Buffer>;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Refuses a manifest bigger than this before parsing it: a bundle arrives from the network. */
const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export function parseManifest(text: string, where: string): BundleManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BundleError(where, `${MANIFEST_FILE} is not valid JSON (${(err as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.') || '(root)';
    throw new BundleError(where, `${MANIFEST_FILE} key "${key}": ${issue.message}`);
  }
  return parsed.data;
}

/** Reads a bundle directory and verifies every listed file's size and sha256. */
export async function loadBundle(dir: string): Promise<ModelBundle> {
  const where = resolve(dir);
  let text: Buffer;
  try {
    text = await readFile(join(where, MANIFEST_FILE));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BundleError(where, code === 'ENOENT' ? `no ${MANIFEST_FILE} here: is this a model bundle directory?` : `cannot read ${MANIFEST_FILE} (${code})`);
  }
  if (text.length > MAX_MANIFEST_BYTES) throw new BundleError(where, `${MANIFEST_FILE} is ${text.length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`);
  const manifest = parseManifest(text.toString('utf8'), where);
  const files = new Map<string, Buffer>();
  for (const [name, entry] of Object.entries(manifest.files)) {
    let data: Buffer;
    try {
      data = await readFile(join(where, name));
    } catch {
      throw new BundleError(where, `file ${name} listed in ${MANIFEST_FILE} is missing`);
    }
    if (data.length !== entry.bytes) throw new BundleError(where, `file ${name} is ${data.length} bytes, the manifest says ${entry.bytes}`);
    if (sha256(data) !== entry.sha256) throw new BundleError(where, `file ${name} fails its sha256 check: it was altered or damaged`);
    files.set(name, data);
  }
  return { dir: where, manifest, files };
}

/**
 * Writes a bundle: the weight files first, the manifest (with their hashes) last and by
 * rename, so a reader never sees a manifest whose files are not all there.
 */
export async function writeBundle(dir: string, draft: ManifestDraft, files: Record<string, Uint8Array>): Promise<BundleManifest> {
  await mkdir(dir, { recursive: true });
  const entries: BundleManifest['files'] = {};
  for (const [name, data] of Object.entries(files)) {
    await writeFile(join(dir, name), data);
    entries[name] = { sha256: sha256(data), bytes: data.length };
  }
  const manifest = manifestSchema.parse({ schemaVersion: MANIFEST_SCHEMA_VERSION, ...draft, files: entries });
  const tmp = join(dir, `.${MANIFEST_FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(manifest, null, 1) + '\n');
  await rename(tmp, join(dir, MANIFEST_FILE));
  return manifest;
}

export async function removeBundle(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function bundleFile(bundle: ModelBundle, name: string): Buffer {
  const data = bundle.files.get(name);
  if (!data) throw new BundleError(bundle.dir, `file ${name} is not listed in ${MANIFEST_FILE}`);
  return data;
}
