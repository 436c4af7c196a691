import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { levelRank } from '../urgency/urgency-score.js';
import { silentLogger, type Logger } from './logger.js';
import { UrgencyEvent, describeIssues, type DroppedCounts } from './payload-schemas.js';

/**
 * The on-disk outbox: every flag event is made durable here before it is published, and
 * leaves only when the broker has acknowledged it.
 *
 * Journal (`{dir}/outbox.journal`), append-only. Each record is
 *
 *     magic "SEJ1" | body length u32 BE | CRC-32 of body u32 BE | body (UTF-8 JSON)
 *
 * with bodies `{t:"e", e: event}` (an event), `{t:"a", id}` (acknowledged by the broker),
 * `{t:"x", id}` (dropped because the outbox was full) and `{t:"h", seq}` (the highest seq
 * ever handed out, written first in every compacted journal). A record cut short by power
 * loss, or one whose CRC does not match, is skipped, and reading resumes at the next magic,
 * so damage never spreads to the records after it. On start the journal is always
 * rewritten (compacted) from what was read, which also cuts off a torn tail before
 * anything new is appended behind it.
 *
 * fsync policy: an event record is fdatasync'ed before `append()` resolves (flags are a
 * few per call, so the cost is nothing next to losing one). Ack and drop records are
 * written without fsync: losing one to a crash only means a duplicate publish, which
 * consumers drop by id. Compaction writes a temp file, fsyncs it, renames it over the
 * journal and fsyncs the directory, so a crash leaves either the old or the new journal.
 *
 * seq: strictly increasing per gateway across restarts and kill -9 (gaps allowed): the
 * next seq follows the larger of the journal's `h` record and the largest event seq in
 * it. Take a seq with `nextSeq()` and append that event before taking the next one.
 *
 * Bound: the unacknowledged events' records stay within `maxBytes`. When a new event does
 * not fit, events leave lowest rank first, oldest first within a rank; the new event
 * itself counts among the candidates (a medium raise arriving at an outbox full of high
 * ones is the one dropped). An event's rank is the higher of its level and its
 * `previousLevel` (`dropRank`): a clear is as important as the raise it ends, because a
 * dropped clear leaves the central queue showing a caller urgent after the flag came down.
 * Drops are counted by the event's level in `droppedCounts` since start, for telemetry.
 * The journal file stays below about 2 × maxBytes + 64 KiB: acknowledged records are
 * compacted away once they outweigh the live ones.
 *
 * Refused events: an event the broker refuses for good (an MQTT 5 reason code no retry can
 * change, such as 0x87 not authorised) is appended to `{dir}/rejected.jsonl` and fsync'ed
 * before its ack record is written, so it leaves the queue without being lost: one topic
 * the ACL forgets cannot hold back every other channel's flags. A crash between the two
 * writes lists the event twice (same id) after its retry is refused again. The file keeps
 * the latest `rejectedMaxBytes`; the previous generation is kept as `rejected.jsonl.1`, and the
 * one before it is overwritten.
 */
export interface OutboxDeps {
  /** Directory of the journal; created if missing. One outbox per directory. */
  dir: string;
  /** Upper bound on the bytes of unacknowledged event records. */
  maxBytes: number;
  /** Size at which `rejected.jsonl` is rotated to `rejected.jsonl.1`. Default REJECTED_MAX_BYTES (4 MiB). */
  rejectedMaxBytes?: number;
  logger?: Logger;
}

export interface OutboxEvents {
  appended: [event: UrgencyEvent];
  dropped: [event: UrgencyEvent];
}

const MAGIC = Buffer.from('SEJ1', 'ascii');
const HEADER_BYTES = 12;
/** No honest record comes close; a larger length field is damage, not data. */
const MAX_RECORD_BYTES = 1024 * 1024;
const COMPACT_MIN_GARBAGE_BYTES = 64 * 1024;
const JOURNAL = 'outbox.journal';
const REJECTED = 'rejected.jsonl';
export const REJECTED_MAX_BYTES = 4 * 1024 * 1024;

type JournalRecord = { t: 'e'; e: UrgencyEvent } | { t: 'a'; id: string } | { t: 'x'; id: string } | { t: 'h'; seq: number };

interface LiveEvent {
  event: UrgencyEvent;
  bytes: number;
}

export class OutboxError extends Error {
  override name = 'OutboxError';
}

export class Outbox extends EventEmitter<OutboxEvents> {
  private readonly log: Logger;
  private readonly live = new Map<string, LiveEvent>();
  private liveBytes = 0;
  private fileBytes = 0;
  private highWater = 0;
  private handle: FileHandle | null = null;
  /** Every journal write runs in this chain, so records land in the order calls were made. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly dropped: DroppedCounts = { low: 0, medium: 0, high: 0 };
  private rejectedTotal = 0;

  constructor(private readonly deps: OutboxDeps) {
    super();
    this.log = deps.logger ?? silentLogger;
  }

  get path(): string {
    return join(this.deps.dir, JOURNAL);
  }

  /** Unacknowledged events. */
  get depth(): number {
    return this.live.size;
  }

  /** Bytes of the unacknowledged events' records (what `maxBytes` bounds). */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Events dropped because the outbox was full, by level, since start. */
  get droppedCounts(): DroppedCounts {
    return { ...this.dropped };
  }

  /** Where events the broker refused for good are kept (JSON lines: rejectedAt, reason, event). */
  get rejectedPath(): string {
    return join(this.deps.dir, REJECTED);
  }

  /** Events the broker refused for good since start (moved to `rejectedPath`). */
  get rejectedCount(): number {
    return this.rejectedTotal;
  }

  async start(): Promise<void> {
    if (this.handle) return;
    if (!(this.deps.maxBytes > 0)) {
      throw new OutboxError(`outbox maxBytes must be a positive number of bytes, got ${this.deps.maxBytes}: set the outbox size in the config`);
    }
    await mkdir(this.deps.dir, { recursive: true });
    // A temp file means a compaction was interrupted before its rename: the journal is still whole.
    await rm(`${this.path}.tmp`, { force: true });
    let data: Buffer;
    try {
      data = await readFile(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new OutboxError(`cannot read outbox journal ${this.path}: ${(err as Error).message}; check the directory's permissions`);
      }
      data = Buffer.alloc(0);
    }
    const { records, skippedBytes } = readJournal(data);
    if (skippedBytes > 0) {
      this.log.warn({ path: this.path, skippedBytes }, 'outbox journal had torn or damaged records; they were skipped');
    }
    for (const r of records) this.apply(r);
    await this.compact();
    this.log.info({ path: this.path, depth: this.depth, nextSeq: this.highWater + 1 }, 'outbox opened');
  }

  async stop(): Promise<void> {
    await this.queue.catch(() => {});
    const handle = this.handle;
    this.handle = null;
    if (handle) {
      await handle.datasync().catch(() => {});
      await handle.close();
    }
  }

  /** The seq for the next event: strictly increasing, continuing across restarts. */
  nextSeq(): number {
    this.assertOpen('nextSeq');
    return ++this.highWater;
  }

  /** Resolves once the event is on disk (or counted as dropped when the outbox is full). */
  append(event: UrgencyEvent): Promise<void> {
    this.assertOpen('append');
    const parsed = UrgencyEvent.safeParse(event);
    if (!parsed.success) {
      return Promise.reject(new OutboxError(`urgency event refused by the outbox: ${describeIssues(parsed.error)}`));
    }
    const checked = parsed.data;
    const body = encodeRecord({ t: 'e', e: checked });
    if (body.length > this.deps.maxBytes) {
      return Promise.reject(new OutboxError(`urgency event ${checked.id} (${body.length} bytes) is larger than the whole outbox (maxBytes ${this.deps.maxBytes})`));
    }
    return this.enqueue(async () => {
      if (this.live.has(checked.id)) return;
      if (checked.seq > this.highWater) this.highWater = checked.seq;
      const drops = this.makeRoom(checked, body.length);
      const parts = drops.filter((e) => e !== checked).map((e) => encodeRecord({ t: 'x', id: e.id }));
      const accepted = !drops.includes(checked);
      if (accepted) parts.push(body);
      if (parts.length > 0) await this.write(Buffer.concat(parts), accepted);
      for (const e of drops) this.emit('dropped', e);
      if (accepted) {
        this.live.set(checked.id, { event: checked, bytes: body.length });
        this.liveBytes += body.length;
        this.emit('appended', checked);
      }
    });
  }

  /** Unacknowledged events, in seq order. */
  pending(): UrgencyEvent[] {
    return [...this.live.values()].map((l) => l.event).sort((a, b) => a.seq - b.seq);
  }

  /** The broker acknowledged `id`: it leaves the outbox. Unknown ids are ignored (already acked or dropped). */
  ack(id: string): Promise<void> {
    this.assertOpen('ack');
    return this.enqueue(async () => {
      if (this.live.has(id)) await this.release(id);
    });
  }

  /** `id` leaves the queue: an ack record, and a compaction once acknowledged records outweigh the live ones. */
  private async release(id: string): Promise<void> {
    const entry = this.live.get(id)!;
    this.live.delete(id);
    this.liveBytes -= entry.bytes;
    await this.write(encodeRecord({ t: 'a', id }), false);
    if (this.fileBytes - this.liveBytes > Math.max(COMPACT_MIN_GARBAGE_BYTES, this.liveBytes)) await this.compact();
  }

  /**
   * The broker refused `id` for good: it is appended durably to `rejectedPath` with
   * `reason`, then leaves the outbox like an acknowledged event. Unknown ids are ignored.
   * When the rejected file cannot be written the event stays in the outbox (and the error says so).
   */
  reject(id: string, reason: string): Promise<void> {
    this.assertOpen('reject');
    return this.enqueue(async () => {
      const entry = this.live.get(id);
      if (!entry) return;
      try {
        await this.keepRejected(entry.event, reason);
      } catch (err) {
        throw new OutboxError(`cannot write refused event ${id} to ${this.rejectedPath}: ${(err as Error).message}; it stays in the outbox`);
      }
      this.rejectedTotal++;
      await this.release(id);
    });
  }

  private async keepRejected(event: UrgencyEvent, reason: string): Promise<void> {
    const line = Buffer.from(`${JSON.stringify({ rejectedAt: new Date().toISOString(), reason, event })}\n`, 'utf8');
    let size = await stat(this.rejectedPath).then((s) => s.size, () => 0);
    if (size > 0 && size + line.length > (this.deps.rejectedMaxBytes ?? REJECTED_MAX_BYTES)) {
      await rename(this.rejectedPath, `${this.rejectedPath}.1`);
      size = 0;
    }
    const out = await open(this.rejectedPath, 'a');
    try {
      await writeAll(out, line, this.rejectedPath);
      await out.datasync();
    } catch (err) {
      // A torn line would glue itself to the next record and spoil it for a JSON-lines reader.
      await out.truncate(size).catch(() => {});
      throw err;
    } finally {
      await out.close();
    }
    // A new file's directory entry must be durable before the event leaves the journal.
    if (size === 0) await syncDirectory(this.deps.dir);
  }

  private assertOpen(what: string): void {
    if (!this.handle) throw new OutboxError(`outbox ${this.deps.dir} is not started: call start() before ${what}()`);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => {});
    return run;
  }

  private apply(r: JournalRecord): void {
    switch (r.t) {
      case 'h':
        this.highWater = Math.max(this.highWater, r.seq);
        return;
      case 'e': {
        const parsed = UrgencyEvent.safeParse(r.e);
        if (!parsed.success) {
          this.log.warn({ path: this.path }, 'outbox journal held an event that no longer validates; it was skipped');
          return;
        }
        this.highWater = Math.max(this.highWater, parsed.data.seq);
        if (!this.live.has(parsed.data.id)) {
          const bytes = encodeRecord(r).length;
          this.live.set(parsed.data.id, { event: parsed.data, bytes });
          this.liveBytes += bytes;
        }
        return;
      }
      case 'a':
      case 'x': {
        const entry = this.live.get(r.id);
        if (entry) {
          this.live.delete(r.id);
          this.liveBytes -= entry.bytes;
        }
        return;
      }
    }
  }

  /** Chooses what leaves so `incoming` fits: lowest `dropRank` first, oldest first within a rank. */
  private makeRoom(incoming: UrgencyEvent, incomingBytes: number): UrgencyEvent[] {
    const drops: UrgencyEvent[] = [];
    let bytes = this.liveBytes + incomingBytes;
    if (bytes <= this.deps.maxBytes) return drops;
    const candidates = [...[...this.live.values()].map((l) => l.event), incoming].sort((a, b) => dropRank(a) - dropRank(b) || a.seq - b.seq);
    for (const victim of candidates) {
      if (bytes <= this.deps.maxBytes) break;
      drops.push(victim);
      this.dropped[victim.level]++;
      if (victim === incoming) {
        bytes -= incomingBytes;
        break;
      }
      const entry = this.live.get(victim.id)!;
      this.live.delete(victim.id);
      this.liveBytes -= entry.bytes;
      bytes -= entry.bytes;
    }
    this.log.warn({ dropped: drops.map((d) => ({ id: d.id, seq: d.seq, level: d.level })), maxBytes: this.deps.maxBytes }, 'outbox full: dropped events');
    return drops;
  }

  private async write(buf: Buffer, durable: boolean): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new OutboxError(`outbox ${this.deps.dir} was stopped while writing`);
    await writeAll(handle, buf, this.path);
    this.fileBytes += buf.length;
    if (durable) await handle.datasync();
  }

  private async compact(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const parts = [encodeRecord({ t: 'h', seq: this.highWater }), ...this.pending().map((e) => encodeRecord({ t: 'e', e }))];
    const data = Buffer.concat(parts);
    const out = await open(tmp, 'w');
    try {
      await writeAll(out, data, tmp);
      await out.sync();
    } finally {
      await out.close();
    }
    await this.handle?.close();
    this.handle = null;
    await rename(tmp, this.path);
    await syncDirectory(this.deps.dir);
    this.handle = await open(this.path, 'a');
    this.fileBytes = data.length;
  }
}

/**
 * The rank by which a full outbox chooses what to drop: the higher of the event's level
 * and the level it left. A clear (level low) thus ranks with the raise it ends. A clear
 * without `previousLevel` came down from at least one level above its own.
 */
export function dropRank(event: UrgencyEvent): number {
  const rank = levelRank(event.level);
  if (event.previousLevel !== undefined) return Math.max(rank, levelRank(event.previousLevel));
  return event.kind === 'clear' ? Math.min(rank + 1, levelRank('high')) : rank;
}

/**
 * Writes all of `data`: a write may take fewer bytes than asked (a full disk, a signal),
 * and a record reported stored must be whole. Throws when the file takes nothing more.
 */
async function writeAll(handle: FileHandle, data: Buffer, path: string): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    if (bytesWritten <= 0) {
      throw new OutboxError(`outbox journal ${path} took ${offset} of ${data.length} bytes and then no more; check the free space of its filesystem`);
    }
    offset += bytesWritten;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is then as durable as they allow.
  } finally {
    await handle.close();
  }
}

export function encodeRecord(record: JournalRecord): Buffer {
  const body = Buffer.from(JSON.stringify(record), 'utf8');
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(body.length, 4);
  header.writeUInt32BE(crc32(body), 8);
  return Buffer.concat([header, body]);
}

/** Every intact record of a journal, and how many bytes of damage were stepped over. */
export function readJournal(data: Buffer): { records: JournalRecord[]; skippedBytes: number } {
  const records: JournalRecord[] = [];
  let skippedBytes = 0;
  let offset = 0;
  const resync = (from: number): number => {
    const next = data.indexOf(MAGIC, from);
    const to = next < 0 ? data.length : next;
    skippedBytes += to - offset;
    return to;
  };
  while (offset < data.length) {
    if (data.length - offset < HEADER_BYTES || !data.subarray(offset, offset + 4).equals(MAGIC)) {
      offset = resync(offset + 1);
      continue;
    }
    const length = data.readUInt32BE(offset + 4);
    const end = offset + HEADER_BYTES + length;
    if (length > MAX_RECORD_BYTES || end > data.length) {
      offset = resync(offset + 1);
      continue;
    }
    const body = data.subarray(offset + HEADER_BYTES, end);
    if (crc32(body) !== data.readUInt32BE(offset + 8)) {
      offset = resync(offset + 1);
      continue;
    }
    try {
      records.push(JSON.parse(body.toString('utf8')) as JournalRecord);
    } catch {
      skippedBytes += end - offset;
    }
    offset = end;
  }
  return { records, skippedBytes };
}

let crcTable: Uint32Array | null = null;

/** zlib.crc32 arrived in Node 20.15/22.2; older Node 20 releases get the classic table version. */
export const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === 'function'
    ? (data) => zlib.crc32(data)
    : (data) => {
        crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
          let c = n;
          for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
          return c >>> 0;
        });
        let crc = 0xffffffff;
        for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
        return (crc ^ 0xffffffff) >>> 0;
      };
