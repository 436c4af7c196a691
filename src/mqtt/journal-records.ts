import zlib from 'node:zlib';
import type { UrgencyEvent } from './payload-schemas.js';

/**
 * The outbox's record format, shared by every segment file:
 *
 *     magic "SEJ1" | body length u32 BE | CRC-32 of body u32 BE | body (UTF-8 JSON)
 *
 * Bodies: `{t:"e", e: event}` (an event), `{t:"a", id}` (acknowledged by the broker, or
 * moved to rejected.jsonl), `{t:"x", id}` (dropped because the outbox was full) and
 * `{t:"h", seq}` (the highest seq handed out when the segment was opened). A record cut
 * short by power loss, or one whose CRC does not match, is skipped, and reading resumes
 * at the next magic, so damage never spreads to the records after it. A record whose CRC
 * matches but whose body is not one of these shapes (a hand edit, a bug in an older
 * version) counts as damage too: a checksum proves the bytes are as written, not that
 * what was written makes sense.
 */
export type JournalRecord = { t: 'e'; e: UrgencyEvent } | { t: 'a'; id: string } | { t: 'x'; id: string } | { t: 'h'; seq: number };

const MAGIC = Buffer.from('SEJ1', 'ascii');
const HEADER_BYTES = 12;
/** No honest record comes close; a larger length field is damage, not data. */
const MAX_RECORD_BYTES = 1024 * 1024;

export function encodeRecord(record: JournalRecord): Buffer {
  const body = Buffer.from(JSON.stringify(record), 'utf8');
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(body.length, 4);
  header.writeUInt32BE(crc32(body), 8);
  return Buffer.concat([header, body]);
}

export interface JournalRead {
  /** Every intact, well-formed record, in file order (events not yet checked against the schema). */
  records: JournalRecord[];
  /** Bytes stepped over: torn, checksum-failed or malformed records and garbage between them. */
  skippedBytes: number;
  /** Whether all of the damage is one torn record at the very end (what a power cut leaves). */
  onlyTornTail: boolean;
}

/** Reads a segment's bytes; never throws, whatever they hold. */
export function readJournal(data: Buffer): JournalRead {
  const records: JournalRecord[] = [];
  let skippedBytes = 0;
  let offset = 0;
  /** End of the last intact record: a power cut can only damage what comes after it. */
  let lastGoodEnd = 0;
  /** Whole records with a matching checksum but a body no outbox writes: never a power cut's doing. */
  let malformed = 0;
  const resync = () => {
    const next = data.indexOf(MAGIC, offset + 1);
    const to = next < 0 ? data.length : next;
    skippedBytes += to - offset;
    offset = to;
  };
  while (offset < data.length) {
    if (data.length - offset < HEADER_BYTES || !data.subarray(offset, offset + 4).equals(MAGIC)) {
      resync();
      continue;
    }
    const length = data.readUInt32BE(offset + 4);
    const end = offset + HEADER_BYTES + length;
    if (length > MAX_RECORD_BYTES || end > data.length || crc32(data.subarray(offset + HEADER_BYTES, end)) !== data.readUInt32BE(offset + 8)) {
      resync();
      continue;
    }
    const record = parseRecord(data.subarray(offset + HEADER_BYTES, end));
    if (record === null) {
      skippedBytes += end - offset;
      malformed++;
    } else {
      records.push(record);
      lastGoodEnd = end;
    }
    offset = end;
  }
  // What a power cut leaves: the start of one record (its magic) after the last whole one, and nothing else.
  const tail = data.subarray(lastGoodEnd, lastGoodEnd + MAGIC.length);
  const onlyTornTail =
    skippedBytes === 0 || (malformed === 0 && skippedBytes === data.length - lastGoodEnd && tail.equals(MAGIC.subarray(0, tail.length)) && data.indexOf(MAGIC, lastGoodEnd + 1) < 0);
  return { records, skippedBytes, onlyTornTail };
}

/** The largest seq the outbox accepts: beyond it JSON numbers stop being exact integers. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export function isValidSeq(seq: unknown): seq is number {
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 && seq <= MAX_SEQ;
}

function parseRecord(body: Buffer): JournalRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  switch (r.t) {
    case 'h':
      return isValidSeq(r.seq) ? { t: 'h', seq: r.seq } : null;
    case 'a':
    case 'x':
      return typeof r.id === 'string' && r.id.length > 0 ? { t: r.t, id: r.id } : null;
    case 'e':
      return typeof r.e === 'object' && r.e !== null ? { t: 'e', e: r.e as UrgencyEvent } : null;
    default:
      return null;
  }
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
