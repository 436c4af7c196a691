export interface LoadShedderOptions {
  /** A live source further behind real time than this skips ahead to the present (`audio.maxLagSeconds`). */
  maxLagSeconds: number;
  /** While not every channel can be served: how long the served channels stay the same before the next ones take over. */
  rotateSeconds?: number;
}

/** How often the number of served channels is reconsidered. */
const CONTROL_MS = 1000;
/** Served channels are cut to this share of what was measured to keep up, so the backlog drains. */
const CUT_MARGIN = 0.9;
/**
 * …but by half at most on the first step past the threshold: a stall (the CPU taken by
 * another process for seconds) measures as a capacity near zero. A lag that stays past
 * it for a second step is overload, and the cut goes all the way.
 */
const FIRST_CUT = 0.5;
/** While keeping up, the served channels grow by this share each control step. */
const GROWTH = 0.05;
export const DEFAULT_ROTATE_SECONDS = 30;

/**
 * Decides which live channels are analysed when the CPU cannot analyse them all in real
 * time. The channels of every live source form one rota, interleaved (each source's
 * first channel, then each one's second…); a contiguous run of it is served (its audio is
 * analysed), the others skip theirs. A skipped channel costs almost nothing, so shedding
 * keeps the event loop turning whatever the number of channels, and every source has its
 * share of the served channels at any time.
 *
 * - How many are served follows the sources' lag: when the worst lag of the last second
 *   (a block still being analysed counts with the lag it has reached) was past half of
 *   `maxLagSeconds` and is not shrinking, the served count is cut to 90% of the channels
 *   actually analysed in real time over the last second (the capacity, as measured), by
 *   half at most the first time (a stall is not overload); while the lag stays under a
 *   tenth of `maxLagSeconds`, the served count grows by 5% a second until all are served.
 * - The served run moves on by its own length every `rotateSeconds`, so every channel is
 *   served in turn, in stretches long enough to form windows and raise flags.
 */
export class LoadShedder {
  readonly maxLagSeconds: number;
  private readonly rotateMs: number;
  private readonly shedAboveSeconds: number;
  private readonly growBelowSeconds: number;
  /** Live sources by the order they first ran in, so the rota keeps its order across restarts of a source. */
  private readonly rank = new WeakMap<object, number>();
  private nextRank = 0;
  /** Per live source: its channels, the most it lagged since the last control step, and the block it is on. */
  private readonly sources = new Map<object, SourceLag>();
  private order: string[] = [];
  private readonly position = new Map<string, number>();
  private first = 0;
  private served = 0;
  private intervalStartMs = Number.NaN;
  private intervalServedSeconds = 0;
  private lastLagSeconds = 0;
  private rotatedAtMs = Number.NaN;

  constructor(options: LoadShedderOptions) {
    this.maxLagSeconds = options.maxLagSeconds;
    this.rotateMs = (options.rotateSeconds ?? DEFAULT_ROTATE_SECONDS) * 1000;
    this.shedAboveSeconds = options.maxLagSeconds / 2;
    this.growBelowSeconds = options.maxLagSeconds / 10;
  }

  /** Channels of running live sources. */
  get liveChannels(): number {
    return this.order.length;
  }

  /** Of those, how many are analysed now (all of them unless the CPU falls behind). */
  get servedChannels(): number {
    return Math.min(this.served, this.order.length);
  }

  /** A live source started delivering audio: its channels join the rota. */
  enlist(source: object, ids: readonly string[]): void {
    if (!this.rank.has(source)) this.rank.set(source, this.nextRank++);
    const servingAll = this.served >= this.order.length;
    this.sources.set(source, { ids, lagSeconds: 0, blockSince: Number.NaN, blockLagSeconds: 0 });
    this.rebuild();
    if (servingAll) this.served = this.order.length;
  }

  /** A live source stopped (failed, ended, shut down): its channels leave the rota. */
  withdraw(source: object): void {
    if (!this.sources.delete(source)) return;
    this.rebuild();
  }

  /** Whether this channel's audio is analysed now; channels outside the rota (replay) always are. */
  serves(id: string): boolean {
    const count = this.order.length;
    if (this.served >= count) return true;
    const at = this.position.get(id);
    if (at === undefined) return true;
    return (at - this.first + count) % count < this.served;
  }

  /** A live source's block arrived, `lagSeconds` behind real time, and is being analysed. */
  blockArrived(source: object, lagSeconds: number, nowMs: number): void {
    const entry = this.sources.get(source);
    if (entry === undefined) return;
    entry.blockSince = nowMs;
    entry.blockLagSeconds = lagSeconds;
    entry.lagSeconds = Math.max(entry.lagSeconds, lagSeconds);
  }

  /** The source is done with that block; `servedSeconds` is its length times the channels analysed. */
  blockDone(source: object, servedSeconds: number, nowMs: number): void {
    const entry = this.sources.get(source);
    if (entry === undefined) return;
    entry.lagSeconds = Math.max(entry.lagSeconds, lagOf(entry, nowMs));
    entry.blockSince = Number.NaN;
    this.intervalServedSeconds += servedSeconds;
    if (Number.isNaN(this.intervalStartMs)) {
      this.intervalStartMs = nowMs;
      this.rotatedAtMs = nowMs;
      return;
    }
    const elapsedMs = nowMs - this.intervalStartMs;
    if (elapsedMs >= CONTROL_MS) {
      this.control(elapsedMs / 1000, nowMs);
      this.intervalStartMs = nowMs;
      this.intervalServedSeconds = 0;
    }
    const count = this.order.length;
    if (this.served >= count) {
      this.rotatedAtMs = nowMs;
    } else if (nowMs - this.rotatedAtMs >= this.rotateMs) {
      this.first = (this.first + this.served) % count;
      this.rotatedAtMs = nowMs;
    }
  }

  private control(elapsedSeconds: number, nowMs: number): void {
    const count = this.order.length;
    let lag = 0;
    for (const entry of this.sources.values()) {
      lag = Math.max(lag, entry.lagSeconds, lagOf(entry, nowMs));
      entry.lagSeconds = 0;
    }
    if (lag > this.shedAboveSeconds && lag >= this.lastLagSeconds) {
      // Channels analysed per second of wall time: what the CPU carries right now.
      const capacity = this.intervalServedSeconds / elapsedSeconds;
      const measured = Math.floor(Math.min(this.served, capacity) * CUT_MARGIN);
      const sustained = this.lastLagSeconds > this.shedAboveSeconds;
      const cut = sustained ? measured : Math.max(Math.ceil(this.served * FIRST_CUT), measured);
      this.served = Math.max(1, Math.min(count, cut));
    } else if (lag < this.growBelowSeconds && this.served < count) {
      this.served = Math.min(count, this.served + Math.max(1, Math.ceil(this.served * GROWTH)));
    }
    this.lastLagSeconds = lag;
  }

  private rebuild(): void {
    const sources = [...this.sources.entries()].sort(([a], [b]) => this.rank.get(a)! - this.rank.get(b)!).map(([, { ids }]) => ids);
    // Interleaved, first channels of every source, then the second ones…: any run of the
    // rota takes its share from each source, so no source waits for another's turn.
    this.order = [];
    const longest = Math.max(0, ...sources.map((ids) => ids.length));
    for (let at = 0; at < longest; at++) for (const ids of sources) if (at < ids.length) this.order.push(ids[at]!);
    this.position.clear();
    this.order.forEach((id, at) => this.position.set(id, at));
    if (this.order.length > 0) this.first %= this.order.length;
    else this.first = 0;
  }
}

interface SourceLag {
  ids: readonly string[];
  /** The most this source lagged since the last control step. */
  lagSeconds: number;
  /** When its current block arrived (NaN between blocks), and how late it was then. */
  blockSince: number;
  blockLagSeconds: number;
}

/** How late the block a source is still working on is by now: a source stuck in a long block falls behind as it works. */
function lagOf(entry: SourceLag, nowMs: number): number {
  return Number.isNaN(entry.blockSince) ? 0 : entry.blockLagSeconds + (nowMs - entry.blockSince) / 1000;
}
