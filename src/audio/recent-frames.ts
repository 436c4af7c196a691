/**
 * Copies of the last few raw frames, kept while the voice-activity detector cannot yet
 * say whether they begin an utterance. When a voice proves they do, their features are
 * computed from these copies, so the utterance keeps its onset; until then they cost one
 * copy each and no features. Each copy has room for its frame's pitch columns, which the
 * detector has usually estimated already (it asks for the pitch of every frame above the
 * floor): kept with the frame, they are not computed a second time. Every buffer is
 * allocated here, once.
 */
export class RecentFrames {
  private readonly frames: Float32Array[];
  private readonly indices: Float64Array;
  /** Per slot: the frame's pitch columns (log2 F0 / 50 Hz, periodicity), NaN when not estimated. */
  private readonly pitches: Float64Array[];
  private next = 0;
  private kept = 0;

  constructor(
    readonly capacity: number,
    frameSize: number,
  ) {
    this.frames = Array.from({ length: capacity }, () => new Float32Array(frameSize));
    this.indices = new Float64Array(capacity);
    this.pitches = Array.from({ length: capacity }, () => new Float64Array(2));
  }

  /** How many frames are held (at most `capacity`: older ones are overwritten). */
  get count(): number {
    return this.kept;
  }

  /**
   * Keeps a copy of the frame; returns the slot for its pitch columns (owned here, NaN
   * until the caller fills it), or null when nothing is kept (capacity 0).
   */
  keep(frame: Float32Array, index: number): Float64Array | null {
    if (this.capacity === 0) return null;
    const slot = this.next;
    this.frames[slot]!.set(frame);
    this.indices[slot] = index;
    const pitch = this.pitches[slot]!;
    pitch[0] = NaN;
    this.next = (slot + 1) % this.capacity;
    if (this.kept < this.capacity) this.kept++;
    return pitch;
  }

  clear(): void {
    this.kept = 0;
  }

  /** Of the newest `n` frames held, the k-th, oldest first (0 ≤ k < n ≤ count). Owned here: read it before the next `keep`. */
  frame(n: number, k: number): Float32Array {
    return this.frames[this.slot(n, k)]!;
  }

  /** The pitch columns kept with `frame(n, k)`: NaN in the first when they were not estimated. */
  pitch(n: number, k: number): Float64Array {
    return this.pitches[this.slot(n, k)]!;
  }

  /** Stream-frame index of `frame(n, k)`. */
  index(n: number, k: number): number {
    return this.indices[this.slot(n, k)]!;
  }

  private slot(n: number, k: number): number {
    return (this.next - n + k + 2 * this.capacity) % this.capacity;
  }
}
