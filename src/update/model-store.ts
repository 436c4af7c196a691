import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { INSTALL_REASONS } from '../mqtt/payload-schemas.js';

/** A bundle the store knows: its manifest's name and version, the sha256 of its manifest.json, and where it lies. */
const storedBundle = z.object({
  name: z.string(),
  version: z.string(),
  sha256: z.string(),
  /** Absolute for the config's model.dir; relative to the store for installed ones. */
  dir: z.string(),
  source: z.enum(['config', 'store']),
});
export type StoredBundle = z.infer<typeof storedBundle>;

const storeFile = z.object({
  schema: z.literal(1),
  active: storedBundle.extend({ activatedAt: z.string() }).nullable(),
  previous: storedBundle.nullable(),
  staged: storedBundle.extend({ stagedAt: z.string(), mode: z.literal('shadow'), endsAt: z.string() }).nullable(),
  /**
   * Starts of the active bundle since it was activated that have not yet run
   * `update.confirmAfterSeconds` (ISO times); cleared when it is confirmed. A start that
   * finds `update.startAttempts` of them within `update.startWindowSeconds` rolls back.
   */
  unconfirmedStarts: z.array(z.string()),
  lastInstall: z
    .object({ ok: z.boolean(), reason: z.enum(INSTALL_REASONS), ts: z.string(), name: z.string().optional(), version: z.string().optional(), message: z.string().optional() })
    .nullable(),
  lastRollback: z
    .object({
      ts: z.string(),
      cause: z.enum(['command', 'failed_start']),
      from: z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
      to: z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
      message: z.string().optional(),
    })
    .nullable(),
});
export type StoreState = z.infer<typeof storeFile>;

const STATE_FILE = 'store.json';

/** The model store's folder in the state directory. */
export const MODEL_STORE_DIR = 'models';
const BUNDLES_DIR = 'bundles';

const EMPTY: StoreState = { schema: 1, active: null, previous: null, staged: null, unconfirmedStarts: [], lastInstall: null, lastRollback: null };

/**
 * The gateway's model store, in the state directory: installed bundles under `bundles/`,
 * and which of them is active, previous and staged in `store.json`. Every change of the
 * choice is one atomic replace of that file (written, fsynced, renamed, directory fsynced),
 * so a power cut leaves either the old choice or the new one, never a mix; a bundle is
 * written whole under a temporary name before its directory gets its real name.
 */
export class ModelStore {
  readonly dir: string;
  private current: StoreState = EMPTY;

  constructor(dependencies: { dir: string }) {
    this.dir = resolve(dependencies.dir);
  }

  get state(): Readonly<StoreState> {
    return this.current;
  }

  /** Reads store.json; a missing one is an empty store, a damaged one is set aside (the config's model then runs). */
  async open(): Promise<{ setAside?: string }> {
    await mkdir(join(this.dir, BUNDLES_DIR), { recursive: true });
    // What an install cut short by a crash left half-written: no install runs before open().
    for (const entry of await readdir(join(this.dir, BUNDLES_DIR))) {
      if (entry.startsWith('.incoming-')) await rm(join(this.dir, BUNDLES_DIR, entry), { recursive: true, force: true });
    }
    let text: string;
    try {
      text = await readFile(join(this.dir, STATE_FILE), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
    const parsed = (() => {
      try {
        return storeFile.safeParse(JSON.parse(text));
      } catch {
        return null;
      }
    })();
    if (parsed?.success) {
      this.current = parsed.data;
      return {};
    }
    const aside = join(this.dir, `${STATE_FILE}.damaged-${Date.now()}`);
    await rename(join(this.dir, STATE_FILE), aside);
    this.current = EMPTY;
    return { setAside: aside };
  }

  /** Where a stored bundle's files are. */
  pathOf(bundle: Pick<StoredBundle, 'dir'>): string {
    return resolve(this.dir, bundle.dir);
  }

  /** Writes an unpacked bundle's files into a new directory of the store and returns its store-relative name. */
  async writeBundle(ref: { name: string; version: string; sha256: string }, files: ReadonlyMap<string, Buffer>): Promise<string> {
    const name = `${ref.name}-${ref.version}-${ref.sha256.slice(0, 12)}`;
    const finalDir = join(this.dir, BUNDLES_DIR, name);
    const tmp = join(this.dir, BUNDLES_DIR, `.incoming-${randomBytes(6).toString('hex')}`);
    await mkdir(tmp);
    try {
      for (const [file, data] of files) await writeDurably(join(tmp, file), data);
      // The same bundle installed again (after a rollback and a forced install) replaces its old copy.
      await rm(finalDir, { recursive: true, force: true });
      await rename(tmp, finalDir);
      await syncDir(join(this.dir, BUNDLES_DIR));
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
    return join(BUNDLES_DIR, name);
  }

  /** Replaces the store's choice atomically, then removes bundle directories nothing refers to any more. */
  async commit(next: StoreState): Promise<void> {
    const parsed = storeFile.parse(next);
    const tmp = join(this.dir, `.${STATE_FILE}.tmp`);
    await writeDurably(tmp, Buffer.from(`${JSON.stringify(parsed, null, 1)}\n`));
    await rename(tmp, join(this.dir, STATE_FILE));
    await syncDir(this.dir);
    this.current = parsed;
    await this.prune();
  }

  private async prune(): Promise<void> {
    const kept = new Set([this.current.active, this.current.previous, this.current.staged].filter((b) => b?.source === 'store').map((b) => this.pathOf(b!)));
    for (const entry of await readdir(join(this.dir, BUNDLES_DIR))) {
      const path = join(this.dir, BUNDLES_DIR, entry);
      // An `.incoming-` directory may belong to an install under way.
      if (!entry.startsWith('.') && !kept.has(path)) await rm(path, { recursive: true, force: true });
    }
  }
}

/**
 * The store's choice as store.json has it, read without touching anything (for doctor):
 * null when nothing was ever installed here, an Error when the file does not read whole.
 */
export async function readStoreState(dir: string): Promise<StoreState | null | Error> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return error as Error;
  }
  try {
    const parsed = storeFile.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : new Error(`${STATE_FILE} does not match its schema: ${parsed.error.issues[0]?.message}`);
  } catch (error) {
    return new Error(`${STATE_FILE} is not JSON (${(error as Error).message})`);
  }
}

async function writeDurably(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, 'w', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
