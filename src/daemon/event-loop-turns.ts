/** How long one source may compute before timers, MQTT and the other sources get the thread. */
export const TURN_MS = 10;
/**
 * With many sources waiting, turns shrink so a round of all of them stays about this
 * long: a source's next turn must not be seconds away (its lag would swing by as much),
 * and a turn costs only one pass of the event loop (tens of microseconds).
 */
export const ROUND_MS = 40;
/** The shortest turn, however many sources wait. */
export const MIN_TURN_MS = 1;

/**
 * Turn-taking on the event loop's single thread. Every audio source works in turns of at
 * most `turnMs` (shorter while many wait: a round of all of them takes about `roundMs`
 * of work); between two turns the event loop goes round once (timers: telemetry;
 * I/O: MQTT acknowledgements, commands, signals), and sources waiting for a turn get it
 * in the order they asked, so a busy source cannot starve another. Turns are measured
 * in time spent, not in blocks, since a block costs anything from microseconds (silence)
 * to many milliseconds (hundreds of channels of speech).
 *
 * One instance is shared by every source of the daemon: the thread is one resource.
 */
export class EventLoopTurns {
  private readonly turnMs: number;
  private readonly roundMs: number;
  private readonly waiting: (() => void)[] = [];
  private turnEndsAt = -Infinity;
  private releaseScheduled = false;

  constructor(options: { turnMs?: number; roundMs?: number } = {}) {
    this.turnMs = options.turnMs ?? TURN_MS;
    this.roundMs = options.roundMs ?? ROUND_MS;
  }

  /** True once the current turn has run out: the caller must `next()` before computing more. */
  get due(): boolean {
    return performance.now() >= this.turnEndsAt;
  }

  /** Sources waiting for a turn now. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves at the caller's next turn: after the event loop has gone round, and after
   * every caller that asked before. Each turn of the loop starts one waiting caller.
   */
  next(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.scheduleRelease();
    });
  }

  private scheduleRelease(): void {
    if (this.releaseScheduled) return;
    this.releaseScheduled = true;
    // setImmediate runs after the loop's timers and I/O: exactly the gap a turn must leave.
    setImmediate(this.release);
  }

  private readonly release = (): void => {
    this.releaseScheduled = false;
    const next = this.waiting.shift();
    if (next === undefined) return;
    const turnMs = Math.max(MIN_TURN_MS, Math.min(this.turnMs, this.roundMs / (this.waiting.length + 1)));
    this.turnEndsAt = performance.now() + turnMs;
    next();
    if (this.waiting.length > 0) this.scheduleRelease();
  };
}
