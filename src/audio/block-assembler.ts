/**
 * Regroups per-channel sample runs of any length into blocks of exactly `blockSize`
 * samples per channel. Each emitted block is freshly allocated (sources promise the
 * pipeline fresh arrays), so no block is ever overwritten after it is handed out.
 */
export class BlockAssembler {
  private current: Float32Array[];
  private filled = 0;

  constructor(
    readonly channelCount: number,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`block size must be a positive whole number of samples, got ${blockSize}`);
    }
    this.current = this.newBlock();
  }

  /** Adds equally long runs, one per channel; returns the blocks they complete (often none). */
  push(channels: readonly Float32Array[]): Float32Array[][] {
    const length = channels.length === 0 ? 0 : channels[0].length;
    const complete: Float32Array[][] = [];
    let offset = 0;
    while (offset < length) {
      const take = Math.min(this.blockSize - this.filled, length - offset);
      for (let c = 0; c < this.channelCount; c++) {
        this.current[c].set(channels[c].subarray(offset, offset + take), this.filled);
      }
      this.filled += take;
      offset += take;
      if (this.filled === this.blockSize) {
        complete.push(this.current);
        this.current = this.newBlock();
        this.filled = 0;
      }
    }
    return complete;
  }

  /** The last, shorter block at end of input, or undefined if nothing is held. */
  drain(): Float32Array[] | undefined {
    if (this.filled === 0) return undefined;
    const last = this.current.map((channel) => channel.slice(0, this.filled));
    this.filled = 0;
    return last;
  }

  private newBlock(): Float32Array[] {
    return Array.from({ length: this.channelCount }, () => new Float32Array(this.blockSize));
  }
}

/** Samples per block for a block duration, rejecting durations that round to nothing. */
export function samplesPerBlock(sampleRate: number, blockMs: number): number {
  const size = Math.round((sampleRate * blockMs) / 1000);
  if (!Number.isFinite(size) || size < 1) {
    throw new RangeError(`blockMs ${blockMs} at ${sampleRate} Hz gives no whole sample per block; use a larger blockMs`);
  }
  return size;
}
