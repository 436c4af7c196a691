import { constants } from 'node:fs';
import { access, readdir, readFile, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import { outboxDiskBound } from '../../mqtt/outbox.js';
import { inspectStateDirectoryLock, lockedDirectories, type LockHolder, type LockInspection } from '../state-dir-lock.js';
import { errorCode, fail, pass, warn, type CheckResult } from './check-result.js';

/** Who doctor runs as: the service may run as another user, which the fix has to say. */
function runningAs(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The nearest directory that exists at or above `path` (where `run` would create the rest). */
async function nearestExisting(path: string): Promise<string> {
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      await stat(dir);
      return dir;
    } catch {
      if (dirname(dir) === dir) return dir;
    }
  }
}

/**
 * Whether the daemon could write `dir`: a file is really written and removed (an access()
 * check says yes to root on a read-only or full filesystem); a directory that does not
 * exist yet needs its nearest existing parent to be writable, since `run` creates it.
 */
async function writability(dir: string): Promise<{ ok: true; note: string } | { ok: false; reason: string }> {
  let info;
  try {
    info = await stat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return { ok: false, reason: errorCode(error) };
    const parent = await nearestExisting(dirname(dir));
    try {
      if (!(await stat(parent)).isDirectory()) return { ok: false, reason: `ENOTDIR: ${parent} is a file` };
      await access(parent, constants.W_OK | constants.X_OK);
      return { ok: true, note: `does not exist yet; run creates it in ${parent}` };
    } catch (e) {
      return { ok: false, reason: `it does not exist and ${parent} cannot be written (${errorCode(e)})` };
    }
  }
  if (!info.isDirectory()) return { ok: false, reason: 'ENOTDIR: it is a file' };
  const probe = join(dir, `.ser-edge-doctor-${process.pid}`);
  try {
    await writeFile(probe, 'doctor\n', { flag: 'wx' });
    await unlink(probe);
    return { ok: true, note: 'writable' };
  } catch (error) {
    await unlink(probe).catch(() => {});
    return { ok: false, reason: errorCode(error) };
  }
}

/**
 * The systemd unit a process runs in, from /proc/{pid}/cgroup (`0::/system.slice/ser-edge.service`
 * on cgroup v2, `1:name=systemd:/system.slice/…` on v1); null outside a service.
 */
export function serviceUnitOf(cgroup: string): string | null {
  for (const line of cgroup.split('\n')) {
    const m = /\/([^/]+\.service)(?:\/|$)/.exec(line.trim());
    if (m) return m[1]!;
  }
  return null;
}

/** The ser-edge unit that runs `pid` on this host, or null: a lock the service holds is how it should be. */
async function serviceHolding(holder: LockHolder): Promise<string | null> {
  if (holder.host !== hostname()) return null;
  try {
    const unit = serviceUnitOf(await readFile(`/proc/${holder.pid}/cgroup`, 'utf8'));
    return unit !== null && /^ser-edge(@[^.]*)?\.service$/.test(unit) ? unit : null;
  } catch {
    return null;
  }
}

/**
 * One row per directory the daemon locks: writable, and not held by another running
 * daemon. A lock held by the ser-edge systemd service passes (doctor checks a running
 * gateway); any other running ser-edge on the directory fails, since the service could
 * not start beside it.
 */
export async function stateDirectoryChecks(config: Pick<ResolvedConfig, 'stateDir' | 'outbox'>): Promise<{ rows: CheckResult[]; lock: LockInspection }> {
  const rows: CheckResult[] = [];
  let stateLock: LockInspection = { state: 'free' };
  for (const dir of lockedDirectories(config)) {
    const check = 'state-dir';
    const [writable, lock] = await Promise.all([writability(dir), inspectStateDirectoryLock(dir)]);
    if (dir === config.stateDir) stateLock = lock;
    if (!writable.ok) {
      rows.push(
        fail(check, {
          subject: dir,
          detail: `${dir} cannot be written by ${runningAs()} (${writable.reason}); run would exit 2`,
          fix: `create it and give the user running ser-edge write access (\`sudo install -d -o USER -m 0750 ${dir}\`), or set stateDir (SER_EDGE_STATE_DIR) to a writable directory; the systemd unit's StateDirectory= makes /var/lib/ser-edge for the service`,
        }),
      );
      continue;
    }
    if (lock.state === 'held') {
      const unit = await serviceHolding(lock.holder);
      if (unit !== null) {
        rows.push(pass(check, { subject: dir, detail: `${dir}: ${writable.note}; held by the running ${unit} (pid ${lock.holder.pid}, since ${lock.holder.since}), as it should be`, data: { holder: lock.holder, unit } }));
        continue;
      }
      rows.push(
        fail(check, {
          subject: dir,
          detail: `${dir} is in use by a running ser-edge that is not the service (pid ${lock.holder.pid} on ${lock.holder.host}, since ${lock.holder.since}): the service, or any other daemon on this config, would exit 2`,
          fix: `stop that process (\`ps -p ${lock.holder.pid} -o pid,user,args\` shows what it is), or give one of them its own stateDir (SER_EDGE_STATE_DIR)`,
          data: { holder: lock.holder },
        }),
      );
      continue;
    }
    const lockNote = lock.state === 'stale' ? `; a stale lock of pid ${lock.holder.pid} (no longer running) will be taken over` : '; not locked';
    rows.push(pass(check, { subject: dir, detail: `${dir}: ${writable.note}${lockNote}` }));
  }
  return { rows, lock: stateLock };
}

const MiB = 1024 * 1024;

/** What the disk check reads of a filesystem: statfs(2)'s blocks free to unprivileged users, and the block size. */
export type FreeSpaceOf = (path: string) => Promise<{ bavail: number; bsize: number }>;

/**
 * Room for the outbox at its bound: maxBytes + 2 segments + 16 KiB on disk (what a long
 * broker outage fills it to), less what its segments already take. `freeSpaceOf` is
 * statfs; a test gives a filesystem of the size it needs.
 */
export async function outboxDiskCheck(config: Pick<ResolvedConfig, 'outbox'>, freeSpaceOf: FreeSpaceOf = statfs): Promise<CheckResult> {
  const check = 'disk';
  const dir = config.outbox.dir;
  const bound = outboxDiskBound(config.outbox);
  let used = 0;
  try {
    for (const name of await readdir(dir)) if (/^outbox-.*\.seg$/.test(name)) used += (await stat(join(dir, name))).size;
  } catch {
    // No outbox yet: nothing used.
  }
  const need = Math.max(0, bound - used);
  const at = await nearestExisting(dir);
  let free: number;
  try {
    const fs = await freeSpaceOf(at);
    free = fs.bavail * fs.bsize;
  } catch (error) {
    return warn(check, { subject: dir, detail: `cannot read the free space of ${at} (${errorCode(error)})`, fix: `check with \`df -h ${at}\` that ${(need / MiB).toFixed(1)} MiB are free for the outbox` });
  }
  const mib = (bytes: number) => (bytes >= 10 * 1024 * MiB ? `${(bytes / 1024 / MiB).toFixed(1)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`);
  const detail = `${mib(free)} free on the filesystem of ${at}; the outbox needs up to ${mib(bound)} (outbox.maxBytes ${mib(config.outbox.maxBytes)} + 2 segments + 16 KiB)${used > 0 ? `, ${mib(used)} of it already on disk` : ''}`;
  const data = { freeBytes: free, boundBytes: bound, usedBytes: used };
  if (free < need) {
    return fail(check, { subject: dir, detail, fix: `free ${mib(need - free)} on that filesystem, or lower outbox.maxBytes (a smaller outbox drops the least urgent events sooner in a long outage)`, data });
  }
  if (free < 2 * need) {
    return warn(check, { subject: dir, detail, fix: 'little room beyond the outbox: other files on this filesystem (logs, updates) could fill it; free some space or lower outbox.maxBytes', data });
  }
  return pass(check, { subject: dir, detail, data });
}
