import type { Readable } from 'node:stream';
import { AudioInputError, type AudioSource } from './audio-source.js';
import { pcmStreamBlocks, type PcmStreamFormat } from './pcm-stream-blocks.js';

export interface StdinSourceOptions {
  /** Where the PCM comes from; process.stdin unless given (tests, sockets). */
  input?: Readable;
  /** Rate of the incoming PCM in Hz. */
  inputRate: number;
  /** Interleaved channels in the incoming PCM. Default 1. */
  channels?: number;
  /** Rate of the yielded blocks. Default 16000. */
  sampleRate?: number;
  /** Block duration. Default 100 ms. */
  blockMs?: number;
  /** For logs and errors. Default `stdin`. */
  description?: string;
}

/**
 * Raw interleaved s16le PCM from a stream, e.g. `arecord -f S16_LE -t raw | ser-edge …`
 * or a SIP gateway piping call audio. Ends when the stream ends; an incomplete frame at
 * the very end (the writer died mid-frame) is dropped.
 */
export class StdinSource implements AudioSource {
  readonly description: string;
  readonly sampleRate: number;
  readonly channelCount: number;
  private readonly input: Readable;
  private readonly format: PcmStreamFormat;
  private closed = false;
  private started = false;

  constructor(dependencies: { input: Readable; format: PcmStreamFormat; description: string }) {
    this.input = dependencies.input;
    this.format = dependencies.format;
    this.description = dependencies.description;
    this.sampleRate = dependencies.format.sampleRate;
    this.channelCount = dependencies.format.channelCount;
  }

  async *blocks(): AsyncGenerator<Float32Array[]> {
    if (this.started) throw new AudioInputError(this.description, 'blocks() was already called; a stream can be read only once');
    this.started = true;
    try {
      for await (const block of pcmStreamBlocks(this.input, this.format)) {
        if (this.closed) return;
        yield block;
      }
    } catch (error) {
      // Destroying the stream in close() makes the pending read fail; that is a normal end.
      if (this.closed) return;
      throw new AudioInputError(this.description, `reading PCM failed: ${(error as Error).message ?? String(error)}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.input.destroy();
  }
}

export function openStdinSource(options: StdinSourceOptions): StdinSource {
  const description = options.description ?? 'stdin';
  const format: PcmStreamFormat = {
    inputRate: options.inputRate,
    channelCount: options.channels ?? 1,
    sampleRate: options.sampleRate ?? 16000,
    blockMs: options.blockMs ?? 100,
  };
  checkPcmFormat(format, description);
  return new StdinSource({ input: options.input ?? process.stdin, format, description });
}

/** Checked once, at open, so a bad flag fails before any audio flows. */
export function checkPcmFormat(format: PcmStreamFormat, description: string): void {
  const problems: string[] = [];
  if (!Number.isInteger(format.inputRate) || format.inputRate <= 0) problems.push(`input rate ${format.inputRate} Hz`);
  if (!Number.isInteger(format.sampleRate) || format.sampleRate <= 0) problems.push(`sample rate ${format.sampleRate} Hz`);
  if (!Number.isInteger(format.channelCount) || format.channelCount < 1) problems.push(`channel count ${format.channelCount}`);
  if (!(format.blockMs > 0) || Math.round((format.sampleRate * format.blockMs) / 1000) < 1) problems.push(`block length ${format.blockMs} ms`);
  if (problems.length > 0) {
    throw new AudioInputError(description, `invalid PCM format: ${problems.join(', ')}; rates and channel counts must be positive whole numbers`);
  }
}
