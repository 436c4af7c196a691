/**
 * What every audio input (microphone, file replay, stdin) looks like to the pipeline:
 * a stream of blocks already converted to Float32 in [-1, 1] at `sampleRate`, one array
 * per input channel, all of the same length.
 */
export interface AudioSource {
  /** Human-readable origin for logs and errors: a file path, `stdin`, `mic:hw:1,0`. */
  readonly description: string;
  /** Rate of the blocks this source yields (after resampling). */
  readonly sampleRate: number;
  readonly channelCount: number;
  /** Yields blocks until the input ends or `close()` is called. Each block is a fresh array. */
  blocks(): AsyncIterable<Float32Array[]>;
  close(): Promise<void>;
}

/** A whole decoded file: one Float32Array per channel at the file's own rate. */
export interface DecodedAudio {
  sampleRate: number;
  channels: Float32Array[];
}

/** A bad or unsupported input, with the file (or stream) it came from. */
export class AudioInputError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'AudioInputError';
  }
}
