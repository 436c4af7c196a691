import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';

/**
 * One daemon per state directory: two daemons on one outbox would hand out the same
 * seqs and interleave records. The lock is a file, `{dir}/ser-edge.lock`, created with
 * O_EXCL and holding the owner's pid, its start time (from /proc, so a pid reused by an
 * unrelated process after a crash is not mistaken for the owner) and host. A lock whose
 * process is gone is stale and taken over, so a `kill -9` or a power cut never blocks the
 * next start.
 */
export interface LockHolder {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/{pid}/stat field 22); null where /proc is absent. */
  startTicks: number | null;
  host: string;
  since: string;
}

const LOCK_FILE = 'ser-edge.lock';

/** The directory is in use by another running daemon. */
export class StateDirectoryLockedError extends Error {
  override name = 'StateDirectoryLockedError';
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `state directory ${dir} is in use by another ser-edge (pid ${holder.pid} on ${holder.host}, since ${holder.since}): ` +
        'stop that daemon first, or give this one its own stateDir (SER_EDGE_STATE_DIR)',
    );
  }
}

/** The directory cannot be created or written: a config or permissions problem, not a crash. */
export class StateDirectoryError extends Error {
  override name = 'StateDirectoryError';
}

export class StateDirectoryLock {
  private held = false;
  private readonly me: LockHolder;

  constructor(readonly dir: string) {
    this.me = { pid: process.pid, startTicks: processStartTicks(process.pid), host: hostname(), since: new Date().toISOString() };
  }

  get path(): string {
    return join(this.dir, LOCK_FILE);
  }

  async acquire(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (error) {
      throw this.unwritable(error);
    }
    const body = `${JSON.stringify(this.me)}\n`;
    // Two rounds: a stale lock is moved away once, then the file is created afresh.
    for (let round = 0; round < 2; round++) {
      try {
        await writeFile(this.path, body, { flag: 'wx', mode: 0o644 });
        this.held = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw this.unwritable(error);
      }
      const holder = await this.readHolder();
      if (holder !== null && isAlive(holder)) throw new StateDirectoryLockedError(this.dir, holder);
      await this.takeOverStale(holder);
    }
    const holder = await this.readHolder();
    throw new StateDirectoryLockedError(this.dir, holder ?? { pid: -1, startTicks: null, host: 'unknown', since: 'unknown' });
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    const holder = await this.readHolder();
    if (holder !== null && holder.pid === this.me.pid && holder.host === this.me.host) await unlink(this.path).catch(() => {});
  }

  private readHolder(): Promise<LockHolder | null> {
    return readLockHolder(this.path);
  }

  /**
   * Moves a stale lock aside under a name of our own, then checks that what it moved is
   * the stale one: a daemon that took the lock over in between would otherwise lose it.
   */
  private async takeOverStale(stale: LockHolder | null): Promise<void> {
    const aside = `${this.path}.stale-${process.pid}`;
    try {
      await rename(this.path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.unwritable(error);
    }
    let moved: LockHolder | null = null;
    try {
      moved = JSON.parse(await readFile(aside, 'utf8')) as LockHolder;
    } catch {
      // garbage: stale by definition
    }
    if (moved !== null && (moved.pid !== stale?.pid || moved.since !== stale?.since) && isAlive(moved)) {
      // Another daemon took it over between our read and our rename: give it back.
      await rename(aside, this.path).catch(() => {});
      throw new StateDirectoryLockedError(this.dir, moved);
    }
    await unlink(aside).catch(() => {});
  }

  private unwritable(error: unknown): StateDirectoryError {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return new StateDirectoryError(
      `state directory ${this.dir} cannot be written (${code}): create it and give the service user write access to it, or set stateDir (SER_EDGE_STATE_DIR) to a writable directory`,
    );
  }
}

/** Who holds a lock file: null when it is missing (just released), empty or garbage (a crash while writing it), so nobody does. */
async function readLockHolder(path: string): Promise<LockHolder | null> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>;
    if (!Number.isSafeInteger(parsed.pid) || parsed.pid! <= 0) return null;
    return { pid: parsed.pid!, startTicks: typeof parsed.startTicks === 'number' ? parsed.startTicks : null, host: String(parsed.host ?? 'unknown'), since: String(parsed.since ?? 'unknown') };
  } catch {
    return null;
  }
}

/**
 * What a daemon starting on `dir` would find, without taking or touching the lock (for
 * `ser-edge doctor`): `free` (no lock, or an unreadable one), `stale` (its process is
 * gone: it would be taken over) or `held` by a running daemon, with who holds it.
 */
export type LockInspection = { state: 'free' } | { state: 'stale' | 'held'; holder: LockHolder; path: string };

export async function inspectStateDirectoryLock(dir: string): Promise<LockInspection> {
  const path = join(dir, LOCK_FILE);
  const holder = await readLockHolder(path);
  if (holder === null) return { state: 'free' };
  return { state: isAlive(holder) ? 'held' : 'stale', holder, path };
}

/** The directories a daemon locks: the state directory, and the outbox's too when it lives elsewhere. */
export function lockedDirectories(config: { stateDir: string; outbox: { dir: string } }): string[] {
  const inside = relative(config.stateDir, config.outbox.dir);
  return inside === '' || (!inside.startsWith('..') && !isAbsolute(inside)) ? [config.stateDir] : [config.stateDir, config.outbox.dir];
}

/** Whether the holder is a running process, and the same one that wrote the lock. */
function isAlive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true; // cannot check another host's processes: assume it runs
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.startTicks === null) return true;
  const now = processStartTicks(holder.pid);
  return now === null || now === holder.startTicks;
}

function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}
