import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { AudioInputError, type AudioSource } from './audio-source.js';
import { samplesPerBlock } from './block-assembler.js';
import { decodeAudioFile } from './decode-audio-file.js';
import { resample } from './resampler.js';

export interface FileSourceOptions {
  /** Rate of the yielded blocks. Default 16000. */
  sampleRate?: number;
  /** Block duration. Default 100 ms. */
  blockMs?: number;
  /** Pace blocks at wall-clock speed, as a live headset would deliver them (demos, daemon replay). */
  realtime?: boolean;
  /** Start again from the beginning at the end, forever (demo replay). */
  loop?: boolean;
}

/**
 * A decoded WAV, FLAC or Ogg Opus file replayed as blocks. The whole file is decoded and resampled
 * up front: files are short call excerpts, and this keeps replay timing free of decode
 * jitter. Without `loop` the last block may be shorter than blockMs.
 *
 * Blocks are read-only views of the decoded audio (a copy only where a loop wraps
 * around), so replaying hundreds of channels costs no allocation per block.
 */
export class FileSource implements AudioSource {
  readonly description: string;
  readonly sampleRate: number;
  readonly channelCount: number;
  private readonly channels: Float32Array[];
  private readonly blockSize: number;
  private readonly realtime: boolean;
  private readonly loop: boolean;
  private readonly stop = new AbortController();
  private readonly release: () => void;
  /** Where replay stands: the next sample to yield, and how many were yielded or skipped since blocks() began. */
  private position = 0;
  private delivered = 0;
  private startedAt = 0;
  private ended = false;

  constructor(dependencies: {
    description: string;
    channels: Float32Array[];
    sampleRate: number;
    blockSize: number;
    realtime: boolean;
    loop: boolean;
    /** Called once on close: lets go of decoded audio shared with other sources of the same file. */
    release?: () => void;
  }) {
    this.description = dependencies.description;
    this.channels = dependencies.channels;
    this.sampleRate = dependencies.sampleRate;
    this.channelCount = dependencies.channels.length;
    this.blockSize = dependencies.blockSize;
    this.realtime = dependencies.realtime;
    this.loop = dependencies.loop;
    this.release = dependencies.release ?? (() => {});
  }

  /** Length of the file at `sampleRate`, in samples per channel. */
  get length(): number {
    return this.channels[0].length;
  }

  async *blocks(): AsyncGenerator<Float32Array[]> {
    this.startedAt = performance.now();
    this.position = 0;
    this.delivered = 0;
    this.ended = false;
    while (!this.stop.signal.aborted && !this.ended) {
      const size = this.loop ? this.blockSize : Math.min(this.blockSize, this.length - this.position);
      if (size <= 0) return;
      const block = this.channels.map((channel) => viewWrapping(channel, this.position, size));
      this.advance(size);
      if (this.realtime) {
        // A live source has a block only once its last sample has been spoken.
        const due = this.startedAt + (this.delivered / this.sampleRate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) {
          try {
            await sleep(wait, undefined, { signal: this.stop.signal });
          } catch {
            return;
          }
        }
      }
      if (this.stop.signal.aborted) return;
      yield block;
    }
  }

  /**
   * Real-time replay that fell behind the wall clock jumps to the present instead of
   * yielding the audio it is late with, as a headset would have spoken it meanwhile.
   * Returns the samples per channel skipped, whole blocks (0 when on time or not real-time); the
   * consumer counts them as lost. Call it between blocks.
   */
  skipToPresent(): number {
    if (!this.realtime || this.ended) return 0;
    const due = ((performance.now() - this.startedAt) / 1000) * this.sampleRate;
    // Whole blocks only: timer jitter is not worth skipping, and blocks stay aligned.
    let behind = Math.floor((due - this.delivered) / this.blockSize) * this.blockSize;
    if (behind <= 0) return 0;
    if (!this.loop) behind = Math.min(behind, this.length - this.position);
    this.advance(behind);
    return behind;
  }

  async close(): Promise<void> {
    if (!this.stop.signal.aborted) this.release();
    this.stop.abort();
  }

  private advance(samples: number): void {
    this.delivered += samples;
    if (this.loop) {
      this.position = (this.position + samples) % this.length;
    } else {
      this.position += samples;
      if (this.position >= this.length) this.ended = true;
    }
  }
}

/** `size` samples from `start`: a view, or a copy continuing from the beginning past the end (loop replay). */
function viewWrapping(channel: Float32Array, start: number, size: number): Float32Array {
  if (start + size <= channel.length) return channel.subarray(start, start + size);
  const block = new Float32Array(size);
  let filled = 0;
  let from = start;
  while (filled < size) {
    const take = Math.min(size - filled, channel.length - from);
    block.set(channel.subarray(from, from + take), filled);
    filled += take;
    from = 0;
  }
  return block;
}

/**
 * Decoded audio per file, rate and version of the file, shared by the sources replaying
 * it: a lab or load test that maps many sources onto one recording holds it in memory
 * once. Entries go when their last source closes.
 */
const decodedFiles = new Map<string, { users: number; channels: Promise<Float32Array[]> }>();

async function decodeShared(path: string, sampleRate: number): Promise<{ channels: Float32Array[]; release: () => void }> {
  let version = '';
  try {
    const info = await stat(path);
    version = `${info.size}:${info.mtimeMs}`;
  } catch {
    // decodeAudioFile names the problem (missing, unreadable) in its own words.
  }
  const key = `${sampleRate}:${version}:${path}`;
  let entry = decodedFiles.get(key);
  if (entry === undefined || version === '') {
    const decoding = decodeAudioFile(path).then((decoded) => decoded.channels.map((channel) => resample(channel, decoded.sampleRate, sampleRate)));
    entry = { users: 0, channels: decoding };
    if (version !== '') decodedFiles.set(key, entry);
  }
  const shared = entry;
  shared.users++;
  const release = () => {
    if (--shared.users === 0 && decodedFiles.get(key) === shared) decodedFiles.delete(key);
  };
  try {
    return { channels: await shared.channels, release };
  } catch (error) {
    release();
    // A failed decode is not kept: the file may be fixed before the next attempt.
    if (decodedFiles.get(key) === shared) decodedFiles.delete(key);
    throw error;
  }
}

export async function openFileSource(path: string, options: FileSourceOptions = {}): Promise<FileSource> {
  const sampleRate = options.sampleRate ?? 16000;
  const blockMs = options.blockMs ?? 100;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new AudioInputError(path, `sample rate ${sampleRate} Hz is invalid; use a positive whole number`);
  }
  let blockSize: number;
  try {
    blockSize = samplesPerBlock(sampleRate, blockMs);
  } catch (error) {
    throw new AudioInputError(path, (error as Error).message);
  }
  const { channels, release } = await decodeShared(path, sampleRate);
  return new FileSource({
    description: path,
    channels,
    sampleRate,
    blockSize,
    realtime: options.realtime ?? false,
    loop: options.loop ?? false,
    release,
  });
}
