/**
 * The Ogg container (RFC 3533), walked page by page before any audio is decoded. The
 * wasm decoder does not check page checksums and stops quietly where a file ends, so a
 * file cut short or damaged in transit would otherwise come out as shorter audio with no
 * error. Every fault found here is a sentence for the user, naming the page and the byte.
 */

/** One Ogg page: where it lies in the file, its header fields and its body. */
export interface OggPage {
  /** 0-based position of the page in the file (not its sequence number). */
  index: number;
  /** Byte offset of the page's `OggS` capture pattern. */
  offset: number;
  /** Byte offset just past the page's body. */
  end: number;
  beginsStream: boolean;
  endsStream: boolean;
  /** Samples (at 48 kHz for Opus) up to the end of the last packet that ends on this page; -1 when none ends here. */
  granule: bigint;
  serial: number;
  sequence: number;
  /** The page's lacing values: a value below 255 ends a packet. */
  lacing: Uint8Array;
  body: Uint8Array;
}

/**
 * What is wrong with a file's Ogg structure: `truncated` when it was cut short (with the
 * whole pages before the cut, from which a caller can say how much audio is there),
 * `corrupt` when it was damaged, `unsupported` for a valid layout ser-edge does not read.
 */
export class OggStructureError extends Error {
  constructor(
    readonly kind: 'truncated' | 'corrupt' | 'unsupported',
    message: string,
    readonly wholePages: readonly OggPage[] = [],
  ) {
    super(message);
    this.name = 'OggStructureError';
  }
}

const HEADER_BYTES = 27;
const FLAG_BEGIN = 0x02;
const FLAG_END = 0x04;

/**
 * The pages of the one logical stream a file holds, up to its end-of-stream page, each
 * checked: complete, intact (CRC), in sequence, of one stream. Bytes after the
 * end-of-stream page that are not another Ogg page are left alone (tag writers append
 * them); another stream there is a chained file, which is refused.
 */
export function readOggPages(bytes: Uint8Array): OggPage[] {
  const pages: OggPage[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset < bytes.length) {
    const index = pages.length;
    const last = pages[index - 1];
    if (last?.endsStream) {
      if (isCapturePattern(bytes, offset)) {
        throw new OggStructureError('unsupported', `a second Ogg stream starts at byte ${offset}, after the first one ended: a chained file (e.g. two recordings joined with \`cat\`); split it, or decode it to one WAV with \`opusdec\``);
      }
      break;
    }
    const remaining = bytes.length - offset;
    if (remaining < HEADER_BYTES && isCapturePattern(bytes, offset, Math.min(4, remaining))) {
      throw truncatedAfter(pages, `the file ends at byte ${bytes.length}, inside the header of Ogg page ${index}`);
    }
    if (!isCapturePattern(bytes, offset)) {
      throw new OggStructureError('corrupt', `no Ogg page where page ${index} should start (byte ${offset}${last ? `, just after page ${index - 1}` : ''}): the file is damaged`);
    }
    const version = bytes[offset + 4]!;
    if (version !== 0) throw new OggStructureError('corrupt', `Ogg page ${index} (byte ${offset}) has stream structure version ${version}, not 0: the file is damaged or not Ogg`);
    const flags = bytes[offset + 5]!;
    const segments = bytes[offset + 26]!;
    const lacingStart = offset + HEADER_BYTES;
    if (bytes.length < lacingStart + segments) throw truncatedAfter(pages, `the file ends at byte ${bytes.length}, inside the header of Ogg page ${index}`);
    const lacing = bytes.subarray(lacingStart, lacingStart + segments);
    let bodyBytes = 0;
    for (const value of lacing) bodyBytes += value;
    const bodyStart = lacingStart + segments;
    const end = bodyStart + bodyBytes;
    if (end > bytes.length) {
      throw truncatedAfter(pages, `the file ends at byte ${bytes.length}, inside Ogg page ${index}, ${end - bytes.length} of whose ${end - offset} bytes are missing`);
    }
    const stored = view.getUint32(offset + 22, true);
    if (oggCrc(bytes.subarray(offset, end), 22) !== stored) {
      throw new OggStructureError('corrupt', `Ogg page ${index} (bytes ${offset}–${end - 1}) fails its CRC check: the file is damaged`);
    }
    const page: OggPage = {
      index,
      offset,
      end,
      beginsStream: (flags & FLAG_BEGIN) !== 0,
      endsStream: (flags & FLAG_END) !== 0,
      granule: view.getBigInt64(offset + 6, true),
      serial: view.getUint32(offset + 14, true),
      sequence: view.getUint32(offset + 18, true),
      lacing,
      body: bytes.subarray(bodyStart, end),
    };
    if (index === 0 && !page.beginsStream) throw new OggStructureError('corrupt', 'the first Ogg page does not begin a stream: the start of the file is missing or damaged');
    if (last) {
      if (page.serial !== last.serial || page.beginsStream) {
        throw new OggStructureError('unsupported', `Ogg page ${index} (byte ${offset}) belongs to another logical stream (serial ${page.serial.toString(16)}, not ${last.serial.toString(16)}): a file that interleaves streams (e.g. audio with video) is not read; extract the audio, e.g. \`ffmpeg -i in.ogg -map 0:a:0 -c copy out.opus\``);
      }
      if (page.sequence !== last.sequence + 1) {
        throw new OggStructureError('corrupt', `Ogg page ${index} (byte ${offset}) is numbered ${page.sequence}, where ${last.sequence + 1} was due: ${page.sequence > last.sequence ? `${page.sequence - last.sequence - 1} page(s) are missing` : 'pages are out of order'}, so the file is damaged`);
      }
    }
    pages.push(page);
    offset = end;
  }
  const last = pages[pages.length - 1];
  if (last === undefined) throw new OggStructureError('truncated', 'the file holds no Ogg page');
  if (!last.endsStream) throw truncatedAfter(pages, `the file ends at byte ${bytes.length}, after Ogg page ${last.index}, without the page that ends the stream`);
  return pages;
}

/** The byte offsets in `page.body` where each packet ending on the page ends. */
export function packetEnds(page: OggPage): number[] {
  const ends: number[] = [];
  let at = 0;
  for (const value of page.lacing) {
    at += value;
    if (value < 255) ends.push(at);
  }
  return ends;
}

function truncatedAfter(wholePages: OggPage[], message: string): OggStructureError {
  return new OggStructureError('truncated', message, wholePages);
}

function isCapturePattern(bytes: Uint8Array, offset: number, length = 4): boolean {
  const pattern = 'OggS';
  for (let i = 0; i < length; i++) if (bytes[offset + i] !== pattern.charCodeAt(i)) return false;
  return true;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let b = 0; b < 8; b++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/**
 * Ogg's page checksum: CRC-32 with polynomial 0x04c11db7, not reflected, initial value 0,
 * no final XOR, over the whole page with its own 4 checksum bytes (at `crcAt`) read as 0.
 */
export function oggCrc(page: Uint8Array, crcAt: number): number {
  let crc = 0;
  for (let i = 0; i < page.length; i++) {
    const byte = i >= crcAt && i < crcAt + 4 ? 0 : page[i]!;
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  }
  return crc;
}
