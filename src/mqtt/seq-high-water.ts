import { open, readFile, type FileHandle } from 'node:fs/promises';
import { crc32, isValidSeq } from './journal-records.js';

/**
 * The highest seq the outbox has handed out for an event it stored, kept in a file of its
 * own (`{dir}/seq`) so it survives every segment being deleted and any of them being
 * damaged. Two 16-byte slots, written in turn:
 *
 *     magic "SEQ1" | seq u64 BE | CRC-32 of the first 12 bytes u32 BE
 *
 * A write that a power cut tears can spoil only the slot being written; the other still
 * holds the value before it, and reading takes the larger valid one. The file is
 * fdatasync'ed before an event's append resolves, that is before the event can be
 * published, so every seq a consumer has seen is at most what this file says.
 */
const MAGIC = Buffer.from('SEQ1', 'ascii');
const SLOT_BYTES = 16;

export type HighWaterRead = { state: 'missing' } | { state: 'valid'; seq: number } | { state: 'damaged'; reason: string };

export async function readHighWater(path: string): Promise<HighWaterRead> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    return { state: 'damaged', reason: `cannot be read: ${(error as Error).message}` };
  }
  let best: number | null = null;
  for (let at = 0; at + SLOT_BYTES <= data.length && at < 2 * SLOT_BYTES; at += SLOT_BYTES) {
    const seq = decodeSlot(data.subarray(at, at + SLOT_BYTES));
    if (seq !== null && (best === null || seq > best)) best = seq;
  }
  if (best === null) return { state: 'damaged', reason: `no valid slot in ${data.length} bytes` };
  return { state: 'valid', seq: best };
}

function decodeSlot(slot: Buffer): number | null {
  if (!slot.subarray(0, 4).equals(MAGIC)) return null;
  if (crc32(slot.subarray(0, 12)) !== slot.readUInt32BE(12)) return null;
  const seq = Number(slot.readBigUInt64BE(4));
  return isValidSeq(seq) ? seq : null;
}

export class HighWaterFile {
  private handle: FileHandle | null = null;
  private written = 0;
  private readonly slot = Buffer.alloc(SLOT_BYTES);
  private nextSlot = 0;

  constructor(readonly path: string) {}

  /** Opens (creating) the file and makes `seq` durable in both slots. */
  async open(seq: number): Promise<void> {
    // Not truncated first: a crash right after a truncation would leave no slot at all.
    this.handle = await open(this.path, 'r+').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return open(this.path, 'wx+');
      throw error;
    });
    await this.writeSlot(0, seq);
    await this.writeSlot(1, seq);
    await this.handle.datasync();
    this.written = seq;
  }

  /** Makes `seq` durable if it is above what the file holds. */
  async raise(seq: number): Promise<void> {
    if (seq <= this.written) return;
    const handle = this.handle;
    if (handle === null) throw new Error(`seq file ${this.path} is not open`);
    await this.writeSlot(this.nextSlot, seq);
    this.nextSlot ^= 1;
    await handle.datasync();
    this.written = seq;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }

  private async writeSlot(index: number, seq: number): Promise<void> {
    MAGIC.copy(this.slot, 0);
    this.slot.writeBigUInt64BE(BigInt(seq), 4);
    this.slot.writeUInt32BE(crc32(this.slot.subarray(0, 12)), 12);
    for (let done = 0; done < SLOT_BYTES; ) {
      const { bytesWritten } = await this.handle!.write(this.slot, done, SLOT_BYTES - done, index * SLOT_BYTES + done);
      if (bytesWritten <= 0) throw new Error(`seq file ${this.path} took ${done} of ${SLOT_BYTES} bytes and then no more; check the free space of its filesystem`);
      done += bytesWritten;
    }
  }
}
