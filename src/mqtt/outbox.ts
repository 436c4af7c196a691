import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { levelRank } from '../urgency/urgency-score.js';
import { encodeRecord, readJournal, type JournalRecord } from './journal-records.js';
import { silentLogger, type Logger } from './logger.js';
import { UrgencyEvent, describeIssues, type DroppedCounts } from './payload-schemas.js';
import { HighWaterFile, readHighWater } from './seq-high-water.js';
import { WarningThrottle } from './warning-throttle.js';

export { encodeRecord, readJournal, crc32 } from './journal-records.js';

/**
 * The on-disk outbox: every flag event is made durable here before it is published, and
 * leaves only when the broker has acknowledged it.
 *
 * Segments, append-only. The outbox directory holds numbered segment files
 * (`outbox-000000000001.seg`, …; records as in journal-records.ts). New records (events,
 * acks, drops) always go to the newest segment, the current one; a file is never
 * rewritten in place. When the current segment reaches `segmentBytes` a new one is
 * opened, its first record the seq high-water mark. A segment leaves the disk whole, and
 * only the oldest: once none of its events is waiting, or after the events still waiting
 * in it have been copied forward into the current segment (made durable first). Because
 * only the oldest segment is ever deleted, and an ack or drop record is always written
 * after the newest copy of its event, deleting a segment never brings an event back.
 * Every start opens a fresh segment, so nothing is ever appended behind a torn tail.
 *
 * Every public method is valid at any moment between start() and stop(): the methods
 * that touch the disk run one after another in one queue, and the file handle changes
 * only inside it, so there is no moment (no "compaction") in which a call can fail.
 *
 * Bound: the waiting events' records stay within `maxBytes`. When a new event does not
 * fit, events leave lowest rank first, oldest first within a rank; the new event itself
 * counts among the candidates. An event's rank is the higher of its level and its
 * `previousLevel` (`dropRank`): a clear is as important as the raise it ends. Drops are
 * counted by level in `droppedCounts` since start. On disk, the segments together stay
 * within `maxBytes + 2 × segmentBytes + 16 KiB` (`diskBound`), at all times and
 * also during a broker outage: once they pass `maxBytes + segmentBytes`, the oldest
 * segments are reclaimed (copied forward and deleted) until they are below it again.
 *
 * fsync policy: an event record, and then the seq file, are fdatasync'ed before
 * `append()` resolves. Ack and drop records are written without fsync: losing one to a
 * crash only means a duplicate publish, which consumers drop by id. A new segment and its
 * directory entry are synced before any segment is deleted.
 *
 * seq: strictly increasing per gateway across restarts and kill -9, with no gaps in one
 * run. The high-water mark lives in `{dir}/seq` (two checksummed slots; seq-high-water.ts)
 * and in every segment's first record. A seq that is not a safe integer is damage and
 * never trusted. When the seq file and the segments cannot both be read, seq continues
 * from the current Unix time in milliseconds, above any seq that one gateway's flags can
 * have reached, rather than from what was left, so a consumer never sees a seq again.
 *
 * Damage: a segment that cannot be read, or whose records are damaged anywhere but in a
 * torn last record of the newest segment (what a power cut leaves), is moved to
 * `{dir}/damaged/` for inspection once its intact waiting events are copied forward; the
 * move is logged and listed in `setAside` (telemetry). A journal of an older ser-edge
 * (`outbox.journal`) is read as the oldest segment and then deleted.
 *
 * Refused events: an event the broker refuses for good is appended to
 * `{dir}/rejected.jsonl` and fsync'ed before its ack record is written, so it leaves the
 * queue without being lost. A crash between the two writes lists it twice (same id). The
 * file keeps the latest `rejectedMaxBytes`; the previous generation is `rejected.jsonl.1`.
 */
export interface OutboxDeps {
  /** Directory of the segments; created if missing. One outbox per directory. */
  dir: string;
  /** Upper bound on the bytes of waiting event records. */
  maxBytes: number;
  /** Size at which the current segment is closed and a new one opened. Default: maxBytes / 8, within 4 KiB…1 MiB. */
  segmentBytes?: number;
  /** Size at which `rejected.jsonl` is rotated to `rejected.jsonl.1`. Default REJECTED_MAX_BYTES (4 MiB). */
  rejectedMaxBytes?: number;
  logger?: Logger;
}

export interface OutboxEvents {
  appended: [event: UrgencyEvent];
  dropped: [event: UrgencyEvent];
}

const LEGACY_JOURNAL = 'outbox.journal';
const SEGMENT = /^outbox-(\d{12})\.seg$/;
const SEQ_FILE = 'seq';
const DAMAGED_DIR = 'damaged';
const REJECTED = 'rejected.jsonl';
export const REJECTED_MAX_BYTES = 4 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4 * 1024;
const MAX_SEGMENT_BYTES = 1024 * 1024;
/** A few records past the segment size: the one that crossed it, drop records, segment headers. */
const DISK_BOUND_SLACK_BYTES = 16 * 1024;

interface Segment {
  index: number;
  path: string;
  bytes: number;
  /** Ids of waiting events whose newest copy is in this segment. */
  waiting: Set<string>;
}

interface WaitingEvent {
  event: UrgencyEvent;
  bytes: number;
  segment: Segment;
}

/** The segment size an outbox uses: as configured, or an eighth of maxBytes within 4 KiB…1 MiB. */
export function outboxSegmentBytes(settings: { maxBytes: number; segmentBytes?: number }): number {
  return Math.round(settings.segmentBytes ?? Math.min(MAX_SEGMENT_BYTES, Math.max(MIN_SEGMENT_BYTES, settings.maxBytes / 8)));
}

/** What an outbox's segment files together never exceed: maxBytes + 2 segments + 16 KiB (see Outbox). */
export function outboxDiskBound(settings: { maxBytes: number; segmentBytes?: number }): number {
  return settings.maxBytes + 2 * outboxSegmentBytes(settings) + DISK_BOUND_SLACK_BYTES;
}

export class OutboxError extends Error {
  override name = 'OutboxError';
}

export class Outbox extends EventEmitter<OutboxEvents> {
  private readonly log: Logger;
  private readonly segmentBytes: number;
  private readonly waiting = new Map<string, WaitingEvent>();
  /** The waiting events' seqs by channel (id → seq): what oldestWaitingSeq reads without a scan of all. */
  private readonly waitingByChannel = new Map<string, Map<string, number>>();
  private waitingBytes = 0;
  /** Oldest first; the last is the current one, open in `handle`. */
  private segments: Segment[] = [];
  private handle: FileHandle | null = null;
  private highWater = 0;
  private seqFile: HighWaterFile;
  private state: 'new' | 'starting' | 'open' | 'stopped' = 'new';
  /** Every disk operation runs in this chain, so records land in the order calls were made. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly dropped: DroppedCounts = { low: 0, medium: 0, high: 0 };
  private rejectedTotal = 0;
  private readonly setAsidePaths: string[] = [];
  private readonly dropWarnings: WarningThrottle;

  constructor(private readonly deps: OutboxDeps) {
    super();
    this.log = deps.logger ?? silentLogger;
    this.dropWarnings = new WarningThrottle({ logger: this.log });
    this.segmentBytes = outboxSegmentBytes(deps);
    this.seqFile = new HighWaterFile(join(deps.dir, SEQ_FILE));
  }

  get dir(): string {
    return this.deps.dir;
  }

  /** Waiting (unacknowledged) events. */
  get depth(): number {
    return this.waiting.size;
  }

  /** Bytes of the waiting events' records (what `maxBytes` bounds). */
  get bytes(): number {
    return this.waitingBytes;
  }

  /** Bytes of all segment files together. */
  get diskBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.bytes;
    return total;
  }

  /** What the segment files together never exceed (see the class comment). */
  get diskBound(): number {
    return outboxDiskBound(this.deps);
  }

  /** Segment files, oldest first. */
  get segmentPaths(): string[] {
    return this.segments.map((s) => s.path);
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

  /** Damaged or unreadable files moved aside into `{dir}/damaged/` at this start. */
  get setAside(): readonly string[] {
    return this.setAsidePaths;
  }

  start(): Promise<void> {
    if (this.state !== 'new') return this.queue.then(() => undefined);
    if (!(this.deps.maxBytes > 0)) {
      return Promise.reject(new OutboxError(`outbox maxBytes must be a positive number of bytes, got ${this.deps.maxBytes}: set the outbox size in the config`));
    }
    this.state = 'starting';
    return this.enqueue(async () => {
      try {
        await this.recover();
        // A stop() that came during recovery wins: it closes what recovery opened.
        if (this.state === 'starting') this.state = 'open';
      } catch (error) {
        this.state = 'new';
        await this.handle?.close().catch(() => {});
        this.handle = null;
        await this.seqFile.close().catch(() => {});
        throw error;
      }
      this.log.info({ dir: this.deps.dir, depth: this.depth, segments: this.segments.length, nextSeq: this.highWater + 1 }, 'outbox opened');
    });
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    await this.queue.catch(() => {});
    this.dropWarnings.stop();
    const handle = this.handle;
    this.handle = null;
    if (handle) {
      await handle.datasync().catch(() => {});
      await handle.close();
    }
    await this.seqFile.close();
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
      if (this.waiting.has(checked.id)) return;
      if (checked.seq > this.highWater) this.highWater = checked.seq;
      const drops = this.makeRoom(checked, body.length);
      const parts = drops.filter((e) => e !== checked).map((e) => encodeRecord({ t: 'x', id: e.id }));
      const accepted = !drops.includes(checked);
      if (accepted) parts.push(body);
      if (parts.length > 0) await this.write(Buffer.concat(parts), accepted);
      if (accepted) {
        await this.seqFile.raise(checked.seq);
        this.hold(checked, body.length, this.current());
      }
      for (const e of drops) this.emit('dropped', e);
      if (accepted) this.emit('appended', checked);
      await this.reclaim();
    });
  }

  /**
   * The lowest seq among `channel`'s waiting events (Infinity when none waits): asked for
   * each channel whose state is due, so it reads that channel's events only.
   */
  oldestWaitingSeq(channel: string): number {
    let oldest = Infinity;
    const seqs = this.waitingByChannel.get(channel);
    if (seqs) for (const seq of seqs.values()) if (seq < oldest) oldest = seq;
    return oldest;
  }

  /** Waiting events, in seq order. */
  pending(): UrgencyEvent[] {
    return [...this.waiting.values()].map((w) => w.event).sort((a, b) => a.seq - b.seq);
  }

  /** The broker acknowledged `id`: it leaves the outbox. Unknown ids are ignored (already acked or dropped). */
  ack(id: string): Promise<void> {
    this.assertOpen('ack');
    return this.enqueue(() => this.release(id));
  }

  /**
   * The broker refused `id` for good: it is appended durably to `rejectedPath` with
   * `reason`, then leaves the outbox like an acknowledged event. Unknown ids are ignored.
   * When the rejected file cannot be written the event stays in the outbox (and the error says so).
   */
  reject(id: string, reason: string): Promise<void> {
    this.assertOpen('reject');
    return this.enqueue(async () => {
      const entry = this.waiting.get(id);
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

  private async release(id: string): Promise<void> {
    if (!this.waiting.has(id)) return;
    this.forget(id);
    await this.write(encodeRecord({ t: 'a', id }), false);
    await this.reclaim();
  }

  /** `event` waits, its newest copy in `segment`. */
  private hold(event: UrgencyEvent, bytes: number, segment: Segment): void {
    const before = this.waiting.get(event.id);
    if (before) {
      before.segment.waiting.delete(event.id);
      this.waitingBytes -= before.bytes;
    }
    this.waiting.set(event.id, { event, bytes, segment });
    let seqs = this.waitingByChannel.get(event.channel);
    if (!seqs) this.waitingByChannel.set(event.channel, (seqs = new Map()));
    seqs.set(event.id, event.seq);
    segment.waiting.add(event.id);
    this.waitingBytes += bytes;
  }

  private forget(id: string): void {
    const entry = this.waiting.get(id);
    if (!entry) return;
    this.waiting.delete(id);
    const seqs = this.waitingByChannel.get(entry.event.channel);
    seqs?.delete(id);
    if (seqs?.size === 0) this.waitingByChannel.delete(entry.event.channel);
    entry.segment.waiting.delete(id);
    this.waitingBytes -= entry.bytes;
  }

  private current(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /**
   * Keeps the disk within its bound: a full current segment is closed, segments with
   * nothing waiting leave from the oldest, and past `maxBytes + segmentBytes` the oldest
   * segments' waiting events are copied forward so those segments can leave too. One
   * pass over the segments is enough: afterwards only the current one holds anything but
   * waiting events.
   */
  private async reclaim(): Promise<void> {
    if (this.current().bytes >= this.segmentBytes) await this.openSegment();
    await this.dropSettledSegments();
    for (let passes = this.segments.length - 1; passes > 0 && this.diskBytes > this.deps.maxBytes + this.segmentBytes; passes--) {
      const oldest = this.segments[0]!;
      if (oldest === this.current()) break;
      await this.copyForward(oldest);
      await this.dropSettledSegments();
    }
  }

  /** Rewrites `segment`'s waiting events into the current segment, durably, so it holds nothing waiting. */
  private async copyForward(segment: Segment): Promise<void> {
    const events = [...segment.waiting].map((id) => this.waiting.get(id)!.event).sort((a, b) => a.seq - b.seq);
    if (events.length === 0) return;
    for (const event of events) {
      if (this.current().bytes >= this.segmentBytes) await this.openSegment();
      const body = encodeRecord({ t: 'e', e: event });
      await this.write(body, false);
      this.hold(event, body.length, this.current());
    }
    await this.handle!.datasync();
  }

  private async dropSettledSegments(): Promise<void> {
    while (this.segments.length > 1 && this.segments[0]!.waiting.size === 0) {
      const oldest = this.segments.shift()!;
      await unlink(oldest.path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  }

  /** Closes the current segment (if any) and opens the next, durably, with the high-water mark first. */
  private async openSegment(): Promise<void> {
    const index = (this.segments.length > 0 ? this.current().index : 0) + 1;
    const path = join(this.deps.dir, `outbox-${String(index).padStart(12, '0')}.seg`);
    const header = encodeRecord({ t: 'h', seq: this.highWater });
    const handle = await open(path, 'wx');
    try {
      await writeAll(handle, header, path);
      await handle.datasync();
      await syncDirectory(this.deps.dir);
    } catch (error) {
      await handle.close();
      await rm(path, { force: true });
      throw error;
    }
    const previous = this.handle;
    this.handle = handle;
    this.segments.push({ index, path, bytes: header.length, waiting: new Set() });
    if (previous) {
      await previous.datasync().catch(() => {});
      await previous.close();
    }
  }

  /** Reads what the directory holds, sets damage aside, and opens a fresh current segment. */
  private async recover(): Promise<void> {
    const { dir } = this.deps;
    await mkdir(dir, { recursive: true });
    // Left by the single-file journal of an older ser-edge when a compaction was cut short: the journal itself is whole.
    await rm(join(dir, `${LEGACY_JOURNAL}.tmp`), { force: true });
    const names = await readdir(dir);
    const found: { index: number; name: string }[] = names.flatMap((name) => {
      const m = SEGMENT.exec(name);
      return m ? [{ index: Number(m[1]), name }] : [];
    });
    found.sort((a, b) => a.index - b.index);
    if (names.includes(LEGACY_JOURNAL)) found.unshift({ index: 0, name: LEGACY_JOURNAL });

    // The seq file is written before any event is published, so when it reads whole it
    // bounds every seq a consumer has seen; otherwise the segments must all read whole.
    const seqRead = await readHighWater(this.seqFile.path);
    if (seqRead.state === 'valid') this.highWater = seqRead.seq;
    if (seqRead.state === 'damaged') await this.setAsideFile(SEQ_FILE, seqRead.reason);
    let journalWhole = true;

    const read: Segment[] = [];
    const damaged: Segment[] = [];
    for (const [i, { index, name }] of found.entries()) {
      const path = join(dir, name);
      const segment: Segment = { index, path, bytes: 0, waiting: new Set() };
      let data: Buffer;
      try {
        data = await readFile(path);
      } catch (error) {
        journalWhole = false;
        await this.setAsideFile(name, `cannot be read: ${(error as Error).message}`);
        continue;
      }
      segment.bytes = data.length;
      const { records, skippedBytes, onlyTornTail } = readJournal(data);
      const newest = i === found.length - 1;
      let invalidEvents = 0;
      for (const record of records) if (!this.apply(record, segment)) invalidEvents++;
      if ((skippedBytes > 0 && !(newest && onlyTornTail)) || invalidEvents > 0) {
        journalWhole = false;
        damaged.push(segment);
        this.log.warn({ path, skippedBytes, invalidEvents, intactRecords: records.length }, 'outbox segment is damaged: its intact waiting events are kept and the file is set aside');
      } else if (skippedBytes > 0) {
        this.log.warn({ path, skippedBytes }, 'outbox segment ended in a torn record (power loss during a write); it was skipped');
      }
      read.push(segment);
    }
    if (seqRead.state !== 'valid' && !journalWhole) {
      // What was handed out before the damage may be above anything still readable.
      const floor = Date.now();
      if (floor > this.highWater) {
        this.log.error({ dir, readable: this.highWater, continuesAt: floor + 1 }, 'outbox seq high-water mark could not be read whole: seq continues from the current time in ms, above anything published before');
        this.highWater = floor;
      }
    }
    this.segments = read;
    await this.openSegment();
    // A shrunk maxBytes (new config) is honoured at once.
    const drops = this.makeRoom(null, 0);
    if (drops.length > 0) await this.write(Buffer.concat(drops.map((e) => encodeRecord({ t: 'x', id: e.id }))), false);
    for (const segment of [...damaged, ...read.filter((s) => s.index === 0)]) await this.copyForward(segment);
    for (const segment of damaged) {
      this.segments.splice(this.segments.indexOf(segment), 1);
      await this.setAsideFile(segment.path.slice(dir.length + 1), 'damaged records');
    }
    const legacy = this.segments.find((s) => s.index === 0);
    if (legacy) {
      this.segments.splice(this.segments.indexOf(legacy), 1);
      await unlink(legacy.path);
    }
    await this.seqFile.open(this.highWater);
    await this.reclaim();
  }

  /** Applies one record read at start; false for an event that fails the schema. */
  private apply(r: JournalRecord, segment: Segment): boolean {
    switch (r.t) {
      case 'h':
        this.highWater = Math.max(this.highWater, r.seq);
        return true;
      case 'e': {
        const parsed = UrgencyEvent.safeParse(r.e);
        if (!parsed.success) return false;
        this.highWater = Math.max(this.highWater, parsed.data.seq);
        this.hold(parsed.data, encodeRecord({ t: 'e', e: parsed.data }).length, segment);
        return true;
      }
      case 'a':
      case 'x':
        this.forget(r.id);
        return true;
    }
  }

  private async setAsideFile(name: string, reason: string): Promise<void> {
    const { dir } = this.deps;
    await mkdir(join(dir, DAMAGED_DIR), { recursive: true });
    const target = join(dir, DAMAGED_DIR, `${name}.${new Date().toISOString().replace(/[:.]/g, '-')}`);
    try {
      await rename(join(dir, name), target);
    } catch (error) {
      throw new OutboxError(`outbox file ${join(dir, name)} is damaged (${reason}) and cannot be moved aside to ${target}: ${(error as Error).message}; check the directory's permissions`);
    }
    this.setAsidePaths.push(target);
    this.log.error({ file: join(dir, name), keptAt: target, reason }, 'outbox file damaged: moved aside for inspection');
  }

  /**
   * Chooses what leaves so `incoming` (null: nothing new, at start) fits: lowest
   * `dropRank` first, oldest first within a rank.
   */
  private makeRoom(incoming: UrgencyEvent | null, incomingBytes: number): UrgencyEvent[] {
    const drops: UrgencyEvent[] = [];
    let bytes = this.waitingBytes + incomingBytes;
    if (bytes <= this.deps.maxBytes) return drops;
    const candidates = [...this.pending(), ...(incoming ? [incoming] : [])].sort((a, b) => dropRank(a) - dropRank(b) || a.seq - b.seq);
    for (const victim of candidates) {
      if (bytes <= this.deps.maxBytes) break;
      drops.push(victim);
      this.dropped[victim.level]++;
      if (victim === incoming) {
        bytes -= incomingBytes;
        break;
      }
      bytes -= this.waiting.get(victim.id)!.bytes;
      this.forget(victim.id);
    }
    this.reportDrops(drops);
    return drops;
  }

  /** A long outage drops on every new event: one warning, then a count every 30 s, not a line per drop. */
  private reportDrops(drops: UrgencyEvent[]): void {
    const latest = drops.map((d) => ({ id: d.id, seq: d.seq, level: d.level }));
    this.dropWarnings.warn('outbox-full', { latest, droppedByLevel: this.droppedCounts, maxBytes: this.deps.maxBytes }, 'outbox full: dropped events');
  }

  private async write(buf: Buffer, durable: boolean): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new OutboxError(`outbox ${this.deps.dir} has no open segment`);
    const segment = this.current();
    try {
      await writeAll(handle, buf, segment.path);
      segment.bytes += buf.length;
    } catch (error) {
      // Even a partial write takes room on disk.
      segment.bytes = (await handle.stat().catch(() => null))?.size ?? segment.bytes + buf.length;
      throw error;
    }
    if (durable) await handle.datasync();
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
    if (this.state === 'open') return;
    if (this.state === 'stopped') throw new OutboxError(`outbox ${this.deps.dir} is stopped: ${what}() is not possible after stop()`);
    throw new OutboxError(`outbox ${this.deps.dir} is not started: await start() before ${what}()`);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => {});
    return run;
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
      throw new OutboxError(`outbox segment ${path} took ${offset} of ${data.length} bytes and then no more; check the free space of its filesystem`);
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
