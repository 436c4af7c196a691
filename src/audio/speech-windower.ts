/**
 * Turns a stream of speech frames into overlapping analysis windows. Silence is skipped,
 * so a window holds the last `windowFrames` frames of speech; a window is due every
 * `hopFrames` new speech frames, and once more at the end of an utterance if enough new
 * speech arrived since the last one (so a short utterance still gets a verdict).
 */
export interface WindowingConfig {
  /** Window length in seconds of speech. */
  windowSeconds: number;
  /** Seconds of new speech between windows. */
  hopSeconds: number;
  /** Least new speech (seconds) that earns a window at an utterance's end. */
  minSpeechSeconds: number;
}

export const DEFAULT_WINDOWING: WindowingConfig = { windowSeconds: 3, hopSeconds: 1, minSpeechSeconds: 0.5 };

export interface WindowFrames {
  /** Row-major frames × dim, oldest first. Owned by the windower: valid until the next window. */
  rows: Float32Array;
  frames: number;
  dim: number;
  /** Stream-frame index of the first and last frame in the window. */
  firstFrame: number;
  lastFrame: number;
}

export class SpeechWindower {
  readonly windowFrames: number;
  readonly hopFrames: number;
  readonly minFrames: number;
  /**
   * The last `windowFrames` speech frames, row-major. The next frame's features are
   * written in place at `rowOffset` (e.g. `analyser.extract(ring, rowOffset)`), then
   * `commit` stores them: no view or copy per frame.
   */
  readonly ring: Float32Array;
  private readonly ringFrameIndex: Float64Array;
  private readonly windowRows: Float32Array;
  private writePos = 0;
  private stored = 0;
  private sinceLastWindow = 0;

  constructor(
    readonly dim: number,
    framesPerSecond: number,
    config: WindowingConfig = DEFAULT_WINDOWING,
  ) {
    if (!(config.windowSeconds > 0) || !(config.hopSeconds > 0)) throw new Error('windowing: windowSeconds and hopSeconds must be positive');
    if (config.hopSeconds > config.windowSeconds) throw new Error('windowing: hopSeconds must not exceed windowSeconds');
    this.windowFrames = Math.max(1, Math.round(config.windowSeconds * framesPerSecond));
    this.hopFrames = Math.max(1, Math.round(config.hopSeconds * framesPerSecond));
    this.minFrames = Math.max(1, Math.round(config.minSpeechSeconds * framesPerSecond));
    this.ring = new Float32Array(this.windowFrames * dim);
    this.ringFrameIndex = new Float64Array(this.windowFrames);
    this.windowRows = new Float32Array(this.windowFrames * dim);
  }

  /** Where in `ring` the next speech frame's `dim` values go; call `commit` once they are written. */
  get rowOffset(): number {
    return this.writePos * this.dim;
  }

  /** Stores the row written at `rowOffset`; returns a window when one is due. */
  commit(frameIndex: number): WindowFrames | null {
    this.ringFrameIndex[this.writePos] = frameIndex;
    this.writePos = (this.writePos + 1) % this.windowFrames;
    if (this.stored < this.windowFrames) this.stored++;
    this.sinceLastWindow++;
    if (this.stored === this.windowFrames && this.sinceLastWindow >= this.hopFrames) return this.emit();
    return null;
  }

  /** End of an utterance (or of the stream): a window if enough new speech is waiting. */
  endOfSpeech(): WindowFrames | null {
    if (this.sinceLastWindow >= this.minFrames) return this.emit();
    return null;
  }

  /** Forgets all speech, as at a call boundary. */
  reset(): void {
    this.writePos = 0;
    this.stored = 0;
    this.sinceLastWindow = 0;
  }

  private emit(): WindowFrames {
    const frames = this.stored;
    const start = (this.writePos - frames + this.windowFrames) % this.windowFrames;
    const firstPart = Math.min(frames, this.windowFrames - start);
    this.windowRows.set(this.ring.subarray(start * this.dim, (start + firstPart) * this.dim), 0);
    if (firstPart < frames) this.windowRows.set(this.ring.subarray(0, (frames - firstPart) * this.dim), firstPart * this.dim);
    this.sinceLastWindow = 0;
    return {
      rows: this.windowRows.subarray(0, frames * this.dim),
      frames,
      dim: this.dim,
      firstFrame: this.ringFrameIndex[start]!,
      lastFrame: this.ringFrameIndex[(start + frames - 1) % this.windowFrames]!,
    };
  }
}
