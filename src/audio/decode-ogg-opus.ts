import { OggOpusDecoder } from 'ogg-opus-decoder';
import { AudioInputError, type DecodedAudio } from './audio-source.js';
import { OggStructureError, packetEnds, readOggPages, type OggPage } from './ogg-pages.js';

/** Opus always decodes at 48 kHz (RFC 7845 §4); callers resample to the rate they need. */
export const OPUS_RATE = 48000;

/** The fields of the identification header (`OpusHead`, RFC 7845 §5.1) that decoding needs. */
interface OpusHead {
  channels: number;
  /** Samples at 48 kHz to drop from the start: the encoder's look-ahead. */
  preSkip: number;
  /** Gain to apply to the decoded audio, in dB (stored in Q7.8). */
  outputGainDb: number;
}

const FIX = 'record or copy it again, or check it with `opusinfo` (Debian: opus-tools)';

/**
 * Decodes a whole Ogg Opus file held in memory on the calling thread, at 48 kHz. The
 * container is checked first (readOggPages), because the wasm decoder skips damaged pages
 * and stops quietly where a file ends; then the decoded length is compared with the one
 * the stream's granule positions declare, so no audio can go missing unnoticed.
 */
export async function decodeOggOpus(bytes: Uint8Array, source: string): Promise<DecodedAudio> {
  let pages: OggPage[];
  try {
    pages = readOggPages(bytes);
  } catch (error) {
    if (!(error instanceof OggStructureError)) throw error;
    throw new AudioInputError(source, describeStructureError(error));
  }
  const head = readOpusHead(pages[0]!, source);
  const expected = declaredSampleCount(pages, head, source);
  const decoder = new OggOpusDecoder();
  try {
    await decoder.ready;
    const decoded = await decoder.decodeFile(bytes.subarray(0, pages[pages.length - 1]!.end)).catch((error: Error) => {
      throw new AudioInputError(source, `the Opus decoder failed (${error.message}); the file is corrupt: ${FIX}`);
    });
    if (decoded.errors.length > 0) {
      const first = decoded.errors[0]!;
      throw new AudioInputError(
        source,
        `${decoded.errors.length} Opus packet(s) failed to decode (first at byte ${first.inputBytes}: ${first.message}); the file is corrupt: ${FIX}`,
      );
    }
    if (decoded.samplesDecoded < expected || decoded.channelData.length !== head.channels) {
      throw new AudioInputError(
        source,
        `only ${decoded.samplesDecoded} of the ${expected} samples per channel its pages declare (${seconds(decoded.samplesDecoded)} of ${seconds(expected)} s) could be decoded${decoded.channelData.length !== head.channels ? `, in ${decoded.channelData.length} of its ${head.channels} channels` : ''}; the file is corrupt: ${FIX}`,
      );
    }
    const gain = 10 ** (head.outputGainDb / 20);
    return {
      sampleRate: OPUS_RATE,
      channels: decoded.channelData.map((channel) => finish(channel.subarray(0, expected), gain)),
    };
  } finally {
    decoder.free();
  }
}

/**
 * The header's output gain applied (RFC 7845 asks every player to), and the signal held
 * to [-1, 1] as every other decoder delivers it: a lossy codec overshoots a little on
 * loud passages, which an integer decode (`opusdec` to WAV) clips the same way.
 */
function finish(channel: Float32Array, gain: number): Float32Array {
  for (let i = 0; i < channel.length; i++) {
    const v = channel[i]! * gain;
    channel[i] = v > 1 ? 1 : v < -1 ? -1 : v;
  }
  return channel;
}

function readOpusHead(first: OggPage, source: string): OpusHead {
  const packet = first.body;
  const magic = ascii(packet, 0, 8);
  if (magic !== 'OpusHead') {
    throw new AudioInputError(source, `an Ogg file of ${codecName(packet)}, not Opus: ser-edge reads Ogg Opus, WAV and FLAC; convert it, e.g. \`ffmpeg -i in.ogg -c:a flac out.flac\``);
  }
  const version = packet[8] ?? 0;
  const channels = packet[9] ?? 0;
  // A major version above 0 changes the header incompatibly (RFC 7845 §5.1).
  if (packet.length < 19 || version >> 4 !== 0) {
    throw new AudioInputError(source, `its Opus header is ${packet.length < 19 ? `${packet.length} bytes, short of the 19 it needs` : `of version ${version >> 4}.${version & 15}, which this decoder does not know`}; the file is corrupt or from a newer encoder`);
  }
  if (channels === 0) throw new AudioInputError(source, `its Opus header declares 0 channels; the file is corrupt: ${FIX}`);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  return { channels, preSkip: view.getUint16(10, true), outputGainDb: view.getInt16(16, true) / 256 };
}

/**
 * Samples per channel after the pre-skip, from the granule positions: the last page's
 * counts from the stream's start, which the first audio page fixes (a stream cut from a
 * live one may start above 0, RFC 7845 §4.5).
 */
function declaredSampleCount(pages: OggPage[], head: OpusHead, source: string): number {
  const firstAudio = firstAudioPage(pages);
  const last = [...pages].reverse().find((p) => p.granule >= 0n);
  if (firstAudio === undefined || last === undefined) throw new AudioInputError(source, 'the Ogg Opus file holds its headers but no audio; record or export it again');
  let start = 0n;
  if (!firstAudio.endsStream) {
    const onPage = packetEnds(firstAudio).reduce(
      (sum, end, i, ends) => sum + opusPacketSamples(firstAudio.body.subarray(i === 0 ? 0 : ends[i - 1]!, end)),
      0,
    );
    start = firstAudio.granule - BigInt(onPage);
    if (start < 0n) start = 0n;
  }
  const total = Number(last.granule - start) - head.preSkip;
  if (total <= 0) throw new AudioInputError(source, 'the Ogg Opus file holds no audio after its pre-skip; record or export it again');
  return total;
}

/** The page on which the first audio packet starts: packets 0 and 1 are the headers, which end their pages. */
function firstAudioPage(pages: OggPage[]): OggPage | undefined {
  let packets = 0;
  for (const page of pages) {
    if (packets >= 2 && page.body.length > 0) return page;
    packets += packetEnds(page).length;
  }
  return undefined;
}

/** Samples at 48 kHz in one Opus packet, from its table-of-contents byte (RFC 6716 §3.1). */
export function opusPacketSamples(packet: Uint8Array): number {
  if (packet.length === 0) return 0;
  const toc = packet[0]!;
  const config = toc >> 3;
  // SILK-only configs 0–11: 10/20/40/60 ms; hybrid 12–15: 10/20 ms; CELT-only 16–31: 2.5/5/10/20 ms.
  const frame = config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? [480, 960][config & 1]! : [120, 240, 480, 960][config & 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : (packet[1] ?? 0) & 0x3f;
  return frames * frame;
}

function describeStructureError(error: OggStructureError): string {
  if (error.kind === 'unsupported') return error.message;
  if (error.kind === 'corrupt') return `${error.message}; ${FIX}`;
  const audio = audioBeforeCut(error.wholePages);
  const held = audio === null ? '' : `; the whole pages before the cut hold ${audio === '0.00' ? 'no audio' : `${audio} s of audio`}`;
  return `${error.message}${held}; the file is truncated: ${FIX}`;
}

/** Seconds of audio in the whole pages before a cut, from the last granule and the header's pre-skip; null when not known. */
function audioBeforeCut(wholePages: readonly OggPage[]): string | null {
  const head = wholePages[0]?.body;
  const last = [...wholePages].reverse().find((p) => p.granule >= 0n);
  if (head === undefined || last === undefined || ascii(head, 0, 8) !== 'OpusHead' || head.length < 12) return null;
  const preSkip = head[10]! | (head[11]! << 8);
  return seconds(Math.max(0, Number(last.granule) - preSkip));
}

function codecName(packet: Uint8Array): string {
  if (ascii(packet, 1, 6) === 'vorbis') return 'Vorbis audio';
  if (ascii(packet, 0, 8) === 'Speex   ') return 'Speex audio';
  if (ascii(packet, 1, 4) === 'FLAC') return 'FLAC audio';
  if (ascii(packet, 1, 6) === 'theora') return 'Theora video';
  return 'an unknown codec';
}

function seconds(samples: number): string {
  return (samples / OPUS_RATE).toFixed(2);
}

function ascii(bytes: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}
