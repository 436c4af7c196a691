import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { AudioInputError, type DecodedAudio } from './audio-source.js';

/**
 * @wasm-audio-decoders/flac silently drops a last frame that ends exactly at the end of
 * its input (seen on valid CREMA-D files that `flac -t` passes: 1087_TAI_FEA_XX lost its
 * final 3360 samples). A few bytes after the last frame let it find the frame's end;
 * FLAC readers ignore trailing bytes, so the decoded audio is otherwise identical.
 */
const TRAILING_PADDING = 16;

function withTrailingPadding(bytes: Uint8Array): Uint8Array {
  const padded = new Uint8Array(bytes.length + TRAILING_PADDING);
  padded.set(bytes);
  return padded;
}

/**
 * Decodes a whole FLAC file held in memory on the calling thread. The decoder instance is
 * per call: after the first, creating one costs well under a millisecond (the compiled
 * WASM module is cached), and a private instance cannot be reset under another caller.
 */
export async function decodeFlac(bytes: Uint8Array, source: string): Promise<DecodedAudio> {
  const decoder = new FLACDecoder();
  try {
    await decoder.ready;
    const decoded = await decoder.decodeFile(withTrailingPadding(bytes));
    if (decoded.errors.length > 0) {
      const first = decoded.errors[0];
      throw new AudioInputError(
        source,
        `${decoded.errors.length} FLAC frame(s) failed to decode (first at byte ${first.inputBytes}: ${first.message}); the file is corrupt — check it with \`flac -t\``,
      );
    }
    if (decoded.samplesDecoded === 0 || decoded.channelData.length === 0) {
      throw new AudioInputError(
        source,
        'the FLAC file contains no decodable audio (truncated header or no frames); export or record it again',
      );
    }
    // The decoder stops silently at the first unrecoverable frame, whether the file was cut
    // short or damaged in the middle, so compare with the length the header declares.
    const declared = declaredSampleCount(bytes);
    if (declared !== undefined && decoded.samplesDecoded < declared) {
      throw new AudioInputError(
        source,
        `only ${decoded.samplesDecoded} of the ${declared} samples its header declares could be decoded; the file is truncated or corrupt — check it with \`flac -t\``,
      );
    }
    return {
      sampleRate: decoded.sampleRate,
      channels: decoded.channelData.map((channel) => channel.subarray(0, decoded.samplesDecoded)),
    };
  } finally {
    decoder.free();
  }
}

/**
 * Total samples per channel from STREAMINFO, or undefined when the encoder left it 0
 * (unknown, as when encoding from a live stream). STREAMINFO is always the first
 * metadata block, so its 36-bit total sits at fixed bytes 21–25 of the file.
 */
function declaredSampleCount(bytes: Uint8Array): number | undefined {
  if (bytes.length < 26 || (bytes[4] & 0x7f) !== 0) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const total = (bytes[21] & 0x0f) * 2 ** 32 + view.getUint32(22);
  return total > 0 ? total : undefined;
}
