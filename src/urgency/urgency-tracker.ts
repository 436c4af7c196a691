import { z } from 'zod';
import {
  DEFAULT_URGENCY_THRESHOLDS,
  URGENCY_LEVELS,
  levelRank,
  urgencyThresholdsSchema,
  type UrgencyLevel,
} from './urgency-score.js';

export const trackerConfigSchema = z
  .object({
    /** Weight of the newest window in the exponential moving average (0..1]. */
    smoothing: z.number().gt(0).max(1),
    thresholds: urgencyThresholdsSchema,
    /** A level is left only when the smoothed score falls this far below its threshold. */
    hysteresis: z.number().min(0).max(0.5),
    /** Consecutive windows above a threshold before the level rises: one loud window is not a flag. */
    raiseWindows: z.number().int().min(1).max(20),
    /** Consecutive windows below (threshold − hysteresis) before the level falls. */
    clearWindows: z.number().int().min(1).max(60),
  })
  .strict();
export type TrackerConfig = z.infer<typeof trackerConfigSchema>;

export const DEFAULT_TRACKER_CONFIG: TrackerConfig = {
  smoothing: 0.5,
  thresholds: DEFAULT_URGENCY_THRESHOLDS,
  hysteresis: 0.1,
  raiseWindows: 2,
  clearWindows: 3,
};

export interface UrgencyChange {
  kind: 'raise' | 'clear';
  level: UrgencyLevel;
  previous: UrgencyLevel;
  /** Smoothed score at the change. */
  score: number;
}

/**
 * One call's urgency: smooths window scores and moves between levels with hysteresis,
 * reporting only changes. Created per call (or reset at a call boundary), so one call's
 * anger never leaks into the next caller's score.
 */
export class UrgencyTracker {
  private smoothed = 0;
  private current: UrgencyLevel = 'low';
  private windows = 0;
  private aboveRun = 0;
  private belowRun = 0;

  constructor(private config: TrackerConfig = DEFAULT_TRACKER_CONFIG) {}

  get level(): UrgencyLevel {
    return this.current;
  }

  get score(): number {
    return this.smoothed;
  }

  /** Feeds one window's raw score; returns the level change it causes, if any. */
  update(rawScore: number): UrgencyChange | null {
    const x = Number.isFinite(rawScore) ? Math.min(1, Math.max(0, rawScore)) : 0;
    // Starting from the first window's score (not 0) would let a single window flag at once.
    this.smoothed = this.windows === 0 ? x * this.config.smoothing : this.config.smoothing * x + (1 - this.config.smoothing) * this.smoothed;
    this.windows++;

    const { thresholds, hysteresis } = this.config;
    const rank = levelRank(this.current);
    const target = this.smoothed >= thresholds.high ? 2 : this.smoothed >= thresholds.medium ? 1 : 0;

    if (target > rank) {
      this.belowRun = 0;
      if (++this.aboveRun >= this.config.raiseWindows) return this.move(URGENCY_LEVELS[target]!, 'raise');
      return null;
    }
    this.aboveRun = 0;
    const holdThreshold = rank === 2 ? thresholds.high : rank === 1 ? thresholds.medium : -Infinity;
    if (this.smoothed < holdThreshold - hysteresis) {
      if (++this.belowRun >= this.config.clearWindows) {
        // Leaving high lands on medium while the score still earns it, else straight on low.
        return this.move(rank === 2 && this.smoothed >= thresholds.medium ? 'medium' : 'low', 'clear');
      }
    } else {
      this.belowRun = 0;
    }
    return null;
  }

  /** New settings from the next window on; the level and smoothed score carry on (a model switch mid-call). */
  retune(config: TrackerConfig): void {
    this.config = config;
  }

  /**
   * Takes over a level another tracker reached (a model switch to other urgency drivers),
   * with its smoothed score, so the switch itself neither raises nor clears a flag.
   */
  hold(level: UrgencyLevel, score: number): void {
    this.current = level;
    this.smoothed = score;
    this.windows = Math.max(this.windows, 1);
    this.aboveRun = 0;
    this.belowRun = 0;
  }

  /** Forgets the call: level back to low without an event (the caller publishes the new state). */
  reset(): void {
    this.smoothed = 0;
    this.current = 'low';
    this.windows = 0;
    this.aboveRun = 0;
    this.belowRun = 0;
  }

  private move(level: UrgencyLevel, kind: UrgencyChange['kind']): UrgencyChange {
    const previous = this.current;
    this.current = level;
    this.aboveRun = 0;
    this.belowRun = 0;
    return { kind, level, previous, score: this.smoothed };
  }
}
