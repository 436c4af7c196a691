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
 * it cannot tell us how much of a truncated data chunk is whole frames.
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
  if (!fmtChunkComplete(bytes, wav.container === 'RIFX')) {
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

  const data = (wav.data as { chunkSize: number; samples: Uint8Array });
  // wavefile includes the RIFF pad byte of an odd-sized chunk, and a truncated file gives
  // fewer bytes than declared: take the smaller, then whole frames only.
  const available = Math.min(data.chunkSize, data.samples.length);
  const frameBytes = bytesPerSample * fmt.numChannels;
  const frameCount = Math.floor(available / frameBytes);
  if (frameCount === 0) {
    throw new AudioInputError(source, 'the WAV file contains no audio samples');
  }

  const view = new DataView(data.samples.buffer, data.samples.byteOffset, frameCount * frameBytes);
  const littleEndian = wav.container !== 'RIFX';
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
 * wavefile reads a cut-off "fmt " chunk without complaint (as garbage), and its published
 * build is minified, so its chunk index is not reachable: walk the chunk headers here.
 */
function fmtChunkComplete(bytes: Uint8Array, bigEndian: boolean): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 12; at + 8 <= bytes.length; ) {
    const id = String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
    const size = view.getUint32(at + 4, !bigEndian);
    if (id === 'fmt ') return size >= 16 && at + 8 + size <= bytes.length;
    at += 8 + size + (size % 2);
  }
  return false;
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
