import wavefile from 'wavefile';
import { AudioInputError, type DecodedAudio } from './audio-source.js';

const { WaveFile } = wavefile;

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Names for the codes people actually meet, so the error says more than a number. */
const FORMAT_NAMES: Record<number, string> = {
  2: 'Microsoft ADPCM',
  6: 'A-law',
  7: 'mu-law',
  0x11: 'IMA ADPCM',
  0x31: 'GSM 6.10',
  0x55: 'MPEG Layer 3',
};

/** The parts of wavefile's untyped `fmt` chunk we read. */
interface FmtChunk {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** For WAVE_FORMAT_EXTENSIBLE: the sub-format GUID as four little-endian uint32. */
  subformat: number[];
}

const CONVERT_HINT = 'convert it to 16-bit PCM, e.g. `sox in.wav -e signed-integer -b 16 out.wav`';

/**
 * Decodes a RIFF/RIFX WAV held in memory. wavefile parses the container; the sample
 * conversion is ours because wavefile's getSamples() builds a Float64Array of the whole
 * file plus a de-interleaved copy, which is too much memory on a Pi for long replays, and
 * the data chunk's extent is ours too: a file cut short is refused, saying how much of it
 * is missing, while a header a streaming writer could not finish is read to the end.
 */
export function decodeWav(bytes: Uint8Array, source: string): DecodedAudio {
  const wav = new WaveFile();
  try {
    wav.fromBuffer(bytes, true);
  } catch (error) {
    // wavefile reports a missing chunk whenever the file ends before it.
    throw new AudioInputError(
      source,
      `truncated or damaged WAV header (${(error as Error).message}); the file was probably cut short while being written or copied — export or record it again`,
    );
  }
  const fmt = wav.fmt as FmtChunk;
  const bigEndian = wav.container === 'RIFX';
  if (!fmtChunkComplete(bytes, bigEndian)) {
    throw new AudioInputError(source, 'truncated WAV header (the "fmt " chunk is incomplete); export or record the file again');
  }
  if (fmt.numChannels < 1 || fmt.sampleRate < 1 || fmt.bitsPerSample < 1) {
    throw new AudioInputError(
      source,
      `corrupt WAV header (${fmt.numChannels} channels, ${fmt.sampleRate} Hz, ${fmt.bitsPerSample} bits per sample); export or record the file again`,
    );
  }

  const formatCode = fmt.audioFormat === WAVE_FORMAT_EXTENSIBLE ? extensibleSubformat(fmt, source) : fmt.audioFormat;
  const bytesPerSample = Math.ceil(fmt.bitsPerSample / 8);
  checkEncodingSupported(formatCode, bytesPerSample, fmt.bitsPerSample, source);

  const frameBytes = bytesPerSample * fmt.numChannels;
  const payload = dataPayload(bytes, bigEndian, source);
  const seconds = (frames: number) => (frames / fmt.sampleRate).toFixed(2);
  if (payload.declaredBytes !== undefined && payload.bytes < payload.declaredBytes) {
    const found = Math.floor(payload.bytes / frameBytes);
    const declared = Math.floor(payload.declaredBytes / frameBytes);
    throw new AudioInputError(
      source,
      `only ${payload.bytes} of the ${payload.declaredBytes} data bytes its header declares are in the file (${found} of ${declared} samples per channel, ${seconds(found)} of ${seconds(declared)} s); the file is truncated — it was probably cut short while being written or copied: export or record it again`,
    );
  }
  // A data chunk may end in part of a frame (a writer stopped mid-frame): whole frames only.
  const frameCount = Math.floor(payload.bytes / frameBytes);
  if (frameCount === 0) {
    throw new AudioInputError(source, 'the WAV file contains no audio samples');
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset + payload.offset, frameCount * frameBytes);
  const littleEndian = !bigEndian;
  const channels: Float32Array[] = [];
  for (let c = 0; c < fmt.numChannels; c++) {
    channels.push(new Float32Array(frameCount));
  }

  if (formatCode === WAVE_FORMAT_IEEE_FLOAT) {
    const nonFinite = readFloat(view, channels, bytesPerSample, littleEndian);
    if (nonFinite > 0) {
      throw new AudioInputError(source, `${nonFinite} samples are NaN or infinite; the file is corrupt`);
    }
  } else {
    readInteger(view, channels, bytesPerSample, littleEndian);
  }
  return { sampleRate: fmt.sampleRate, channels };
}

/**
 * The data sizes a writer leaves in the header when it cannot go back and fill it in (it
 * writes to a pipe, or was stopped before it could): 0, and anything from sox's 0x7FFFF000
 * up (arecord writes 0x80000000, ffmpeg and others 0xFFFFFFFF). No real data chunk of a
 * call is that big (2 GiB is 18 hours of 16 kHz mono), so such a chunk runs to the end of
 * the file.
 */
function isStreamingPlaceholder(size: number): boolean {
  return size === 0 || size >= 0x7ffff000;
}

/** The chunks after the RIFF header, each as its id, declared size and where its payload starts. */
function* chunks(bytes: Uint8Array, bigEndian: boolean): Generator<{ id: string; size: number; payload: number }> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);
    const size = view.getUint32(at + 4, !bigEndian);
    yield { id, size, payload: at + 8 };
    // An odd-sized chunk is followed by a pad byte that is not part of it.
    at += 8 + size + (size % 2);
  }
}

/**
 * wavefile reads a cut-off "fmt " chunk without complaint (as garbage), and its published
 * build is minified, so its chunk index is not reachable: walk the chunk headers here.
 */
function fmtChunkComplete(bytes: Uint8Array, bigEndian: boolean): boolean {
  for (const chunk of chunks(bytes, bigEndian)) {
    if (chunk.id === 'fmt ') return chunk.size >= 16 && chunk.payload + chunk.size <= bytes.length;
  }
  return false;
}

/**
 * Where the samples are and how many bytes of them the file holds. `declaredBytes` is the
 * header's size, or undefined when it is a streaming placeholder (the samples then run to
 * the end of the file). wavefile is not asked: it returns no samples for a size of 0.
 */
function dataPayload(bytes: Uint8Array, bigEndian: boolean, source: string): { offset: number; bytes: number; declaredBytes: number | undefined } {
  for (const chunk of chunks(bytes, bigEndian)) {
    if (chunk.id !== 'data') continue;
    const inFile = Math.max(0, bytes.length - chunk.payload);
    if (isStreamingPlaceholder(chunk.size)) return { offset: chunk.payload, bytes: inFile, declaredBytes: undefined };
    // The pad byte after an odd size is not counted, so a file that ends without it is whole.
    return { offset: chunk.payload, bytes: Math.min(inFile, chunk.size), declaredBytes: chunk.size };
  }
  // wavefile refuses a file without a data chunk before we get here; kept for a clear error all the same.
  throw new AudioInputError(source, 'the WAV file has no "data" chunk; export or record it again');
}

function extensibleSubformat(fmt: FmtChunk, source: string): number {
  if (fmt.subformat.length < 1) {
    throw new AudioInputError(source, 'truncated WAV header (WAVE_FORMAT_EXTENSIBLE without its sub-format); export or record the file again');
  }
  // The sub-format GUID's first two bytes are the ordinary format code.
  return fmt.subformat[0] & 0xffff;
}

function checkEncodingSupported(formatCode: number, bytesPerSample: number, bits: number, source: string): void {
  if (formatCode === WAVE_FORMAT_PCM) {
    if (bytesPerSample <= 4) return;
    throw new AudioInputError(source, `unsupported WAV encoding: ${bits}-bit integer PCM; ${CONVERT_HINT}`);
  }
  if (formatCode === WAVE_FORMAT_IEEE_FLOAT) {
    if (bits === 32 || bits === 64) return;
    throw new AudioInputError(source, `unsupported WAV encoding: ${bits}-bit float; ${CONVERT_HINT}`);
  }
  const name = FORMAT_NAMES[formatCode];
  const code = `0x${formatCode.toString(16).padStart(4, '0')}`;
  throw new AudioInputError(
    source,
    `unsupported WAV encoding: format code ${formatCode} (${code}${name === undefined ? '' : `, ${name}`}); only integer PCM and IEEE float are read — ${CONVERT_HINT}`,
  );
}

/** Returns how many samples were NaN or infinite. Finite values beyond ±1 are clipped, as a DAC would. */
function readFloat(view: DataView, channels: Float32Array[], bytesPerSample: number, littleEndian: boolean): number {
  const channelCount = channels.length;
  const frameCount = channels[0].length;
  let nonFinite = 0;
  let offset = 0;
  for (let i = 0; i < frameCount; i++) {
    for (let c = 0; c < channelCount; c++) {
      const value = bytesPerSample === 4 ? view.getFloat32(offset, littleEndian) : view.getFloat64(offset, littleEndian);
      offset += bytesPerSample;
      if (!Number.isFinite(value)) {
        nonFinite++;
        continue;
      }
      channels[c][i] = value > 1 ? 1 : value < -1 ? -1 : value;
    }
  }
  return nonFinite;
}

function readInteger(view: DataView, channels: Float32Array[], bytesPerSample: number, littleEndian: boolean): void {
  const channelCount = channels.length;
  const frameCount = channels[0].length;
  let offset = 0;
  for (let i = 0; i < frameCount; i++) {
    for (let c = 0; c < channelCount; c++) {
      channels[c][i] = readIntegerSample(view, offset, bytesPerSample, littleEndian);
      offset += bytesPerSample;
    }
  }
}

function readIntegerSample(view: DataView, offset: number, bytesPerSample: number, littleEndian: boolean): number {
  switch (bytesPerSample) {
    // 8-bit WAV is the one unsigned width: silence is 128.
    case 1:
      return (view.getUint8(offset) - 128) / 128;
    case 2:
      return view.getInt16(offset, littleEndian) / 32768;
    case 3: {
      const b0 = view.getUint8(offset);
      const b1 = view.getUint8(offset + 1);
      const b2 = view.getUint8(offset + 2);
      const value = littleEndian ? b0 | (b1 << 8) | (b2 << 16) : b2 | (b1 << 8) | (b0 << 16);
      // Shift up and back down to sign-extend the 24-bit value.
      return ((value << 8) >> 8) / 8388608;
    }
    default:
      return view.getInt32(offset, littleEndian) / 2147483648;
  }
}
