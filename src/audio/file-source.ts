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
 * A decoded WAV/FLAC file replayed as blocks. The whole file is decoded and resampled
 * up front: files are short call excerpts, and this keeps replay timing free of decode
 * jitter. Without `loop` the last block may be shorter than blockMs.
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

  constructor(dependencies: { description: string; channels: Float32Array[]; sampleRate: number; blockSize: number; realtime: boolean; loop: boolean }) {
    this.description = dependencies.description;
    this.channels = dependencies.channels;
    this.sampleRate = dependencies.sampleRate;
    this.channelCount = dependencies.channels.length;
    this.blockSize = dependencies.blockSize;
    this.realtime = dependencies.realtime;
    this.loop = dependencies.loop;
  }

  /** Length of the file at `sampleRate`, in samples per channel. */
  get length(): number {
    return this.channels[0].length;
  }

  async *blocks(): AsyncGenerator<Float32Array[]> {
    const startedAt = performance.now();
    let position = 0;
    let delivered = 0;
    while (!this.stop.signal.aborted) {
      const size = this.loop ? this.blockSize : Math.min(this.blockSize, this.length - position);
      if (size <= 0) return;
      const block = this.channels.map((channel) => copyWrapping(channel, position, size));
      position = (position + size) % this.length;
      delivered += size;
      if (this.realtime) {
        // A live source has a block only once its last sample has been spoken.
        const due = startedAt + (delivered / this.sampleRate) * 1000;
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
      if (!this.loop && position === 0) return;
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
  }
}

/** `size` samples from `start`, continuing from the beginning past the end (for loop replay). */
function copyWrapping(channel: Float32Array, start: number, size: number): Float32Array {
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
  const decoded = await decodeAudioFile(path);
  const channels = decoded.channels.map((channel) => resample(channel, decoded.sampleRate, sampleRate));
  return new FileSource({
    description: path,
    channels,
    sampleRate,
    blockSize,
    realtime: options.realtime ?? false,
    loop: options.loop ?? false,
  });
}
