import { readFile } from 'node:fs/promises';
import { AudioInputError, type DecodedAudio } from './audio-source.js';
import { decodeFlac } from './decode-flac.js';
import { decodeOggOpus } from './decode-ogg-opus.js';
import { decodeWav } from './decode-wav.js';

/**
 * Decodes a WAV, FLAC or Ogg Opus file to one Float32Array per channel at the file's own
 * rate (48 kHz for Opus, whatever rate it was encoded from). The format comes from the
 * first bytes, never the extension: recordings get renamed.
 * Every failure is an AudioInputError naming the file.
 */
export async function decodeAudioFile(path: string): Promise<DecodedAudio> {
  const bytes = await readAudioBytes(path);
  switch (detectContainer(bytes)) {
    case 'wav':
      return decodeWav(bytes, path);
    case 'flac':
      return decodeFlac(bytes, path);
    case 'ogg':
      return decodeOggOpus(bytes, path);
    default:
      if (looksLikeTruncatedSignature(bytes)) {
        throw new AudioInputError(path, `truncated header: the file is only ${bytes.length} bytes; export or record it again`);
      }
      throw new AudioInputError(
        path,
        'not a WAV, FLAC or Ogg Opus file (no RIFF/WAVE, fLaC or OggS signature at its start); pass a WAV, FLAC or Opus recording, or convert it with `sox in.ext out.wav`',
      );
  }
}

export type AudioContainer = 'wav' | 'flac' | 'ogg' | 'unknown';

export function detectContainer(bytes: Uint8Array): AudioContainer {
  if (bytes.length >= 12 && isRiffFamily(bytes) && ascii(bytes, 8, 4) === 'WAVE') return 'wav';
  if (bytes.length >= 4 && ascii(bytes, 0, 4) === 'fLaC') return 'flac';
  if (bytes.length >= 4 && ascii(bytes, 0, 4) === 'OggS') return 'ogg';
  return 'unknown';
}

async function readAudioBytes(path: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AudioInputError(path, 'no such file; check the path');
    if (code === 'EISDIR') throw new AudioInputError(path, 'is a directory, not an audio file; pass a WAV, FLAC or Ogg Opus file');
    if (code === 'EACCES') throw new AudioInputError(path, 'permission denied; check the file is readable by this user');
    throw new AudioInputError(path, `cannot read the file (${(error as Error).message})`);
  }
  if (bytes.length === 0) {
    throw new AudioInputError(path, 'the file is empty (0 bytes); export or record it again');
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

function isRiffFamily(bytes: Uint8Array): boolean {
  const id = ascii(bytes, 0, 4);
  return id === 'RIFF' || id === 'RIFX';
}

/** A file too short to hold a whole signature but starting like one was cut short. */
function looksLikeTruncatedSignature(bytes: Uint8Array): boolean {
  if (bytes.length >= 12) return false;
  const start = ascii(bytes, 0, Math.min(4, bytes.length));
  return ['RIFF', 'RIFX', 'fLaC', 'OggS'].some((signature) => signature.startsWith(start));
}

function ascii(bytes: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}
