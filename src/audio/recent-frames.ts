/**
 * Copies of the last few raw frames, kept while the voice-activity detector cannot yet
 * say whether they begin an utterance. When a voice proves they do, their features are
 * computed from these copies, so the utterance keeps its onset; until then they cost one
 * copy each and no features. Every buffer is allocated here, once.
 */
export class RecentFrames {
  private readonly frames: Float32Array[];
  private readonly indices: Float64Array;
  private next = 0;
  private kept = 0;

  constructor(
    readonly capacity: number,
    frameSize: number,
  ) {
    this.frames = Array.from({ length: capacity }, () => new Float32Array(frameSize));
    this.indices = new Float64Array(capacity);
  }

  /** How many frames are held (at most `capacity`: older ones are overwritten). */
  get count(): number {
    return this.kept;
  }

  keep(frame: Float32Array, index: number): void {
    if (this.capacity === 0) return;
    this.frames[this.next]!.set(frame);
    this.indices[this.next] = index;
    this.next = (this.next + 1) % this.capacity;
    if (this.kept < this.capacity) this.kept++;
  }

  clear(): void {
    this.kept = 0;
  }

  /** Of the newest `n` frames held, the k-th, oldest first (0 ≤ k < n ≤ count). Owned here: read it before the next `keep`. */
  frame(n: number, k: number): Float32Array {
    return this.frames[this.slot(n, k)]!;
  }

  /** Stream-frame index of `frame(n, k)`. */
  index(n: number, k: number): number {
    return this.indices[this.slot(n, k)]!;
  }

  private slot(n: number, k: number): number {
    return (this.next - n + k + 2 * this.capacity) % this.capacity;
  }
}
