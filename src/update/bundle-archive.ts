import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { extract, pack, type Header } from 'tar-stream';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import { parseManifest } from '../model/model-bundle.js';
import { SIGNATURE_FILE } from './bundle-signature.js';

/** A packed bundle that cannot be unpacked: not a tar, cut short (`bad_archive`), or with an entry that must never be written (`unsafe_archive`). */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
  constructor(
    readonly reason: 'bad_archive' | 'unsafe_archive',
    message: string,
  ) {
    super(message);
  }
}

export interface UnpackLimits {
  /** Largest single file. */
  maxEntryBytes: number;
  /** Most files. */
  maxEntries: number;
}

/** A bundle is a manifest, a signature and a few weight files: far fewer and smaller than this. */
export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxEntryBytes: 64 * 1024 * 1024, maxEntries: 64 };

/** Entries are named as files in one flat directory, as the manifest names them. */
const PLAIN_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** Fixed, so packing the same bundle twice gives the same bytes (and the same sha256 for a url install). */
const PACK_MTIME = new Date(0);

/**
 * Packs a bundle directory into one tar: manifest.json, signature.json when present, and
 * every file the manifest lists, flat and in name order. Nothing else in the directory
 * goes in (a training log, an editor's backup), so what travels is what is signed.
 */
export async function packBundle(dir: string): Promise<Buffer> {
  const where = resolve(dir);
  const manifestBytes = await readFile(join(where, MANIFEST_FILE)).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot pack ${where}: no readable ${MANIFEST_FILE} (${error.code}); is this a model bundle directory?`);
  });
  const manifest = parseManifest(manifestBytes.toString('utf8'), where);
  const entries = new Map<string, Buffer>([[MANIFEST_FILE, manifestBytes]]);
  const signature = await readFile(join(where, SIGNATURE_FILE)).catch(() => undefined);
  if (signature !== undefined) entries.set(SIGNATURE_FILE, signature);
  for (const name of Object.keys(manifest.files).sort()) {
    if (entries.has(name)) throw new Error(`cannot pack ${where}: the manifest lists ${name}, a name the bundle itself uses`);
    entries.set(name, await readFile(join(where, name)).catch((error: NodeJS.ErrnoException) => {
      throw new Error(`cannot pack ${where}: ${name}, listed in ${MANIFEST_FILE}, cannot be read (${error.code})`);
    }));
  }
  const tar = pack();
  for (const [name, data] of entries) tar.entry({ name, size: data.length, mode: 0o644, mtime: PACK_MTIME, uid: 0, gid: 0, type: 'file' }, data);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Unpacks a packed bundle into memory, refusing before anything touches the disk every
 * entry that could write outside the bundle or be something other than a plain file:
 * absolute paths, `..`, any directory part, hard or symbolic links, devices, fifos,
 * duplicate names, and entries over the size limit. A tar cut short is refused whole.
 */
export async function unpackBundle(tar: Buffer, limits: UnpackLimits = DEFAULT_UNPACK_LIMITS): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const parser = extract();
  const done = new Promise<void>((resolvePromise, reject) => {
    parser.on('entry', (header, stream, next) => {
      // The entry's own stream fails with the archive: its error is the same one, reported below.
      stream.on('error', () => {});
      const problem = entryProblem(header, files, limits);
      // Stop at the first bad entry: nothing after it is read.
      if (problem !== null) return next(new ArchiveError('unsafe_archive', problem));
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (chunk: unknown) => {
        bytes += (chunk as Buffer).length;
        chunks.push(chunk as Buffer);
      });
      stream.on('end', () => {
        if (bytes !== (header.size ?? 0)) return next(new ArchiveError('bad_archive', `entry ${header.name} holds ${bytes} of its ${header.size} bytes: the archive is truncated`));
        files.set(header.name, Buffer.concat(chunks, bytes));
        next();
      });
    });
    parser.once('finish', () => resolvePromise());
    // Every error, not once: streamx may report the same failure again as it winds down.
    parser.on('error', (error: Error) => reject(error));
  });
  parser.end(tar);
  try {
    await done;
  } catch (error) {
    if (error instanceof ArchiveError) throw error;
    const message = (error as Error).message;
    throw new ArchiveError('bad_archive', /unexpected end/i.test(message) ? `the archive ends in the middle of an entry (${message}): it is truncated` : `not a readable tar archive (${message})`);
  }
  if (files.size === 0) throw new ArchiveError('bad_archive', 'the archive holds no files: is it a packed bundle (`ser-edge model pack`)?');
  if (!files.has(MANIFEST_FILE)) throw new ArchiveError('bad_archive', `the archive has no ${MANIFEST_FILE}: it is not a packed model bundle`);
  return files;
}

function entryProblem(header: Header, seen: ReadonlyMap<string, Buffer>, limits: UnpackLimits): string | null {
  const name = header.name;
  const type = header.type ?? 'file';
  const what = `entry ${JSON.stringify(name)}`;
  if (type === 'symlink' || type === 'link') return `${what} is a ${type === 'link' ? 'hard' : 'symbolic'} link (to ${JSON.stringify(header.linkname ?? '')}); a bundle holds plain files only`;
  if (type === 'character-device' || type === 'block-device' || type === 'fifo') return `${what} is a ${type}; a bundle holds plain files only`;
  if (type === 'directory') return `${what} is a directory; a bundle is flat, plain files only`;
  if (type !== 'file' && type !== 'contiguous-file') return `${what} has tar type ${type}; a bundle holds plain files only`;
  if (name.startsWith('/')) return `${what} has an absolute path; a bundle's entries are plain file names`;
  if (name.split(/[\\/]/).includes('..')) return `${what} climbs out of the bundle with ".."`;
  if (/[\\/]/.test(name)) return `${what} names a directory; a bundle's entries are plain file names`;
  if (!PLAIN_NAME.test(name) || name === '.' || name === '..') return `${what} is not a plain file name (letters, digits, '.', '_', '-')`;
  if (seen.has(name)) return `${what} appears twice; a second copy could replace what was checked`;
  if (seen.size >= limits.maxEntries) return `the archive has more than ${limits.maxEntries} entries; a bundle has a few`;
  if ((header.size ?? 0) > limits.maxEntryBytes) return `${what} is ${header.size} bytes, over the ${limits.maxEntryBytes}-byte limit for one file`;
  return null;
}
