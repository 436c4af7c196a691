/**
 * Turns a byte stream of interleaved signed 16-bit little-endian PCM into per-channel
 * Float32 arrays. Stream chunks split samples and frames anywhere (a pipe may deliver
 * an odd number of bytes), so the incomplete frame at the end of a chunk is carried
 * into the next one.
 */
export class S16leDeinterleaver {
  private readonly frameBytes: number;
  /** The start of a frame left over from the previous chunk. */
  private readonly carry: Uint8Array;
  private carryLength = 0;

  constructor(readonly channelCount: number) {
    if (!Number.isInteger(channelCount) || channelCount < 1) {
      throw new RangeError(`channel count must be a positive whole number, got ${channelCount}`);
    }
    this.frameBytes = 2 * channelCount;
    this.carry = new Uint8Array(this.frameBytes);
  }

  /** Whole frames available after this chunk, one fresh array per channel (possibly empty). */
  push(chunk: Uint8Array): Float32Array[] {
    const totalBytes = this.carryLength + chunk.length;
    const frameCount = Math.floor(totalBytes / this.frameBytes);
    const channels: Float32Array[] = [];
    for (let c = 0; c < this.channelCount; c++) channels.push(new Float32Array(frameCount));

    let consumed = 0;
    let frame = 0;
    if (this.carryLength > 0 && frameCount > 0) {
      // Complete the carried frame from the head of this chunk; one frame only, so a tiny copy.
      consumed = this.frameBytes - this.carryLength;
      this.carry.set(chunk.subarray(0, consumed), this.carryLength);
      readFrame(this.carry, 0, channels, 0);
      this.carryLength = 0;
      frame = 1;
    }
    for (; frame < frameCount; frame++) {
      readFrame(chunk, consumed, channels, frame);
      consumed += this.frameBytes;
    }
    const rest = chunk.subarray(consumed);
    this.carry.set(rest, this.carryLength);
    this.carryLength += rest.length;
    return channels;
  }

  /** Bytes of an incomplete frame still held; non-zero at end of stream means the input was cut mid-frame. */
  get heldBytes(): number {
    return this.carryLength;
  }
}

function readFrame(bytes: Uint8Array, offset: number, channels: Float32Array[], frame: number): void {
  for (let c = 0; c < channels.length; c++) {
    const low = bytes[offset + 2 * c];
    const high = bytes[offset + 2 * c + 1];
    // Shift into the top of a 32-bit int and back to sign-extend the 16-bit value.
    channels[c][frame] = (((high << 24) | (low << 16)) >> 16) / 32768;
  }
}
