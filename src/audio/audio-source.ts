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
  /**
   * Yields blocks until the input ends or `close()` is called. A block's arrays are
   * read-only: they may be views of the source's own buffers (file replay), which stay
   * valid, so a consumer may keep them but never writes into them.
   */
  blocks(): AsyncIterable<Float32Array[]>;
  /**
   * Live sources that can jump ahead (real-time file replay) skip the audio they are
   * late with and return how many samples per channel they skipped; between blocks.
   * Capture from a device or a pipe cannot: what it could not deliver in time is lost
   * upstream.
   */
  skipToPresent?(): number;
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
