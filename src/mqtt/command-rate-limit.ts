/**
 * Token buckets for commands: `burst` commands may arrive at once, after which they are
 * let through at `ratePerMinute`. A telephony bridge sends a start and an end per call, so
 * a channel's bucket must fit a few short calls back to back, while a start every half
 * second (which would keep the channel from ever finishing a window) is refused.
 */

export interface CommandRate {
  /** Tokens added per minute: the sustained rate. */
  ratePerMinute: number;
  /** Bucket size: how many may arrive at once after a quiet spell. */
  burst: number;
}

/**
 * cmd/call per channel: a start and an end per call, so 6 at once fits three short calls
 * back to back, and 6 a minute (one every 10 s) is more than one agent's headset sees
 * for long. A start every half second, which would keep a channel from ever flagging, is not.
 */
export const DEFAULT_CALL_RATE: CommandRate = { ratePerMinute: 6, burst: 6 };

/** Every command but `call`, together, per gateway: an operator's tools ping now and then, not several times a second. */
export const DEFAULT_COMMAND_RATE: CommandRate = { ratePerMinute: 60, burst: 20 };

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/** Buckets past this count are pruned of the full ones, so a stream of new keys cannot grow the map without bound. */
const MAX_IDLE_BUCKETS = 1024;

/** One bucket per key (a channel id, or one key for the whole gateway). */
export class CommandRateLimiter {
  private readonly rate: CommandRate;
  private readonly now: () => number;
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(dependencies: { rate: CommandRate; now?: () => number }) {
    if (!(dependencies.rate.ratePerMinute > 0) || !(dependencies.rate.burst >= 1)) {
      throw new RangeError(`a command rate needs ratePerMinute > 0 and burst >= 1, got ${JSON.stringify(dependencies.rate)}`);
    }
    this.rate = dependencies.rate;
    // Monotonic: a wall-clock step (NTP on a gateway that booted without a clock) must not refill or drain buckets.
    this.now = dependencies.now ?? (() => performance.now());
  }

  get limits(): CommandRate {
    return this.rate;
  }

  /** Takes one token from `key`'s bucket; when it is empty, says how long until the next token. */
  take(key = ''): RateDecision {
    const now = this.now();
    const perMs = this.rate.ratePerMinute / 60_000;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_IDLE_BUCKETS) this.prune(now, perMs);
      bucket = { tokens: this.rate.burst, atMs: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.rate.burst, bucket.tokens + (now - bucket.atMs) * perMs);
      bucket.atMs = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / perMs) };
  }

  private prune(now: number, perMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.atMs) * perMs >= this.rate.burst) this.buckets.delete(key);
    }
  }
}
