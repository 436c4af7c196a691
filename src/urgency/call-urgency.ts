import { z } from 'zod';
import type { Emotion } from '../model/emotions.js';
import { UrgencyHead, urgencyHeadSchema, type HeadBaseline } from './urgency-head.js';
import { levelForScore, levelRank, resolveWeights, urgencyScore, urgencyThresholdsSchema, weightsForLabels, URGENCY_LEVELS, type UrgencyLevel, type UrgencyWeights } from './urgency-score.js';
import { DEFAULT_TRACKER_CONFIG, trackerConfigSchema, UrgencyTracker, type TrackerConfig, type UrgencyChange } from './urgency-tracker.js';

/**
 * Which score set a call's level: `angry` or `sad` (a bundle with a trained urgency head
 * follows each on its own tracker), or `weighted` (Σ weight × probability, one tracker).
 */
export const URGENCY_DRIVERS = ['angry', 'sad', 'weighted'] as const;
export type UrgencyDriver = (typeof URGENCY_DRIVERS)[number];

/** A bundle's `urgency` section: the trained head and each emotion's tracker settings, as chosen on simulated calls of held-out speakers. */
export const urgencySectionSchema = z
  .object({
    head: urgencyHeadSchema,
    trackers: z.object({ angry: trackerConfigSchema, sad: trackerConfigSchema }).strict(),
    /** How the head was fitted and the thresholds chosen (speakers, calls, targets): provenance for the model card. */
    chosenOn: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type UrgencySection = z.infer<typeof urgencySectionSchema>;

/** A site's changes to one emotion's tracker (`urgency.emotions.angry` in the config). */
export const trackerOverrideSchema = z
  .object({
    smoothing: z.number().gt(0).max(1).optional(),
    thresholds: urgencyThresholdsSchema.optional(),
    hysteresis: z.number().min(0).max(0.5).optional(),
    raiseWindows: z.number().int().min(1).max(20).optional(),
    clearWindows: z.number().int().min(1).max(60).optional(),
  })
  .strict();
export type TrackerOverride = z.infer<typeof trackerOverrideSchema>;

export interface UrgencySettings {
  /** The tracker of a bundle without a head (the config's `urgency.*`). */
  tracker: TrackerConfig;
  /** Site overrides of the bundle's emotion weights (bundles without a head). */
  weights?: Partial<UrgencyWeights> | undefined;
  /** Site overrides of a head bundle's per-emotion trackers. */
  emotions?: Partial<Record<'angry' | 'sad', TrackerOverride>> | undefined;
}

export interface UrgencyChangeOf extends UrgencyChange {
  driver: UrgencyDriver;
}

/**
 * How one model's windows become a call's urgency, resolved once when the model loads:
 * with a trained head, an angry and a sad score per window, each on a tracker of its own
 * (sad can need a lower threshold and a longer confirmation than angry); without one, the
 * weighted score on the one tracker the config sets.
 */
export class UrgencyStage {
  readonly drivers: readonly UrgencyDriver[];
  readonly configs: readonly TrackerConfig[];
  readonly head: UrgencyHead | null;
  /** Urgency weights for the model's labels: the whole-file and per-window `score` of a bundle without a head. */
  readonly labelWeights: Float32Array;
  private readonly scratch = new Float64Array(3);

  constructor(labels: readonly Emotion[], section: UrgencySection | undefined, bundleWeights: Partial<UrgencyWeights> | undefined, settings: UrgencySettings) {
    this.labelWeights = weightsForLabels(labels, resolveWeights(bundleWeights, settings.weights));
    if (section === undefined) {
      this.head = null;
      this.drivers = ['weighted'];
      this.configs = [settings.tracker];
      return;
    }
    this.head = new UrgencyHead(section.head, labels.length);
    this.drivers = ['angry', 'sad'];
    this.configs = (['angry', 'sad'] as const).map((e) => {
      const o = settings.emotions?.[e] ?? {};
      const merged = trackerConfigSchema.safeParse({ ...section.trackers[e], ...o, thresholds: { ...section.trackers[e].thresholds, ...o.thresholds } });
      if (!merged.success) {
        // Each part was valid alone: only the site's change over the bundle's settings can clash.
        const why = merged.error.issues.map((i) => `${i.path.join('.') || 'tracker'}: ${i.message}`).join('; ');
        throw new Error(`urgency.emotions.${e}: over the model's own ${e} tracker (${JSON.stringify(section.trackers[e])}) it gives an invalid tracker (${why})`);
      }
      return merged.data;
    });
  }

  /** A model's stage: its bundle's head and weights, under `settings` (the daemon's defaults when absent). */
  static of(model: { labels: readonly Emotion[]; manifest: { urgency?: UrgencySection | undefined; urgencyWeights?: Partial<UrgencyWeights> | undefined } }, settings: UrgencySettings = { tracker: DEFAULT_TRACKER_CONFIG }): UrgencyStage {
    return new UrgencyStage(model.labels, model.manifest.urgency, model.manifest.urgencyWeights, settings);
  }

  newCall(): CallUrgency {
    return new CallUrgency(this);
  }

  /**
   * One window's raw scores into `out` (one per driver) for `call`'s head baseline (which
   * the window then joins), without touching any tracker.
   */
  scoresInto(probabilities: ArrayLike<number>, baseline: HeadBaseline | null, out: Float64Array): void {
    if (this.head === null) {
      out[0] = urgencyScore(probabilities, this.labelWeights);
      return;
    }
    this.head.scoresInto(probabilities, baseline!, this.scratch);
    out[0] = this.scratch[0]!;
    out[1] = this.scratch[1]!;
  }

  /** The level raw `scores` would earn on their own, with the driver that earns it (a window's level in `classify`). */
  levelOf(scores: ArrayLike<number>): { level: UrgencyLevel; score: number; driver: UrgencyDriver } {
    let best = { level: 'low' as UrgencyLevel, score: scores[0]!, driver: this.drivers[0]! };
    this.drivers.forEach((driver, d) => {
      const level = levelForScore(scores[d]!, this.configs[d]!.thresholds);
      if (levelRank(level) > levelRank(best.level) || (level === best.level && scores[d]! > best.score)) best = { level, score: scores[d]!, driver };
    });
    return best;
  }
}

/**
 * One call's urgency under a stage: a tracker per driver, the level the highest of them,
 * and the head's baseline of the caller. Reports only changes of the call's level.
 */
export class CallUrgency {
  private trackers: UrgencyTracker[];
  private baseline: HeadBaseline | null;
  /** The last window's raw scores, one per driver. */
  readonly scores: Float64Array;

  constructor(private stage: UrgencyStage) {
    this.trackers = stage.configs.map((c) => new UrgencyTracker(c));
    this.baseline = stage.head?.newCall() ?? null;
    this.scores = new Float64Array(2);
  }

  get level(): UrgencyLevel {
    return URGENCY_LEVELS[this.rank()]!;
  }

  /** The driver behind the current level (the first tracker when all are low). */
  get driver(): UrgencyDriver {
    return this.stage.drivers[this.leader()]!;
  }

  /** The smoothed score of the driver behind the current level. */
  get score(): number {
    return this.trackers[this.leader()]!.score;
  }

  /** Judges one window's probabilities (in the stage's model's label order); returns the change of the call's level, if any. */
  update(probabilities: ArrayLike<number>): UrgencyChangeOf | null {
    this.stage.scoresInto(probabilities, this.baseline, this.scores);
    return this.updateScores(this.scores);
  }

  /** `update` for raw scores already made (one per driver): what simulate-calls replays over other tracker settings. */
  updateScores(scores: ArrayLike<number>): UrgencyChangeOf | null {
    const before = this.rank();
    for (let d = 0; d < this.trackers.length; d++) this.trackers[d]!.update(scores[d]!);
    const after = this.rank();
    if (after === before) return null;
    const lead = this.leader();
    return { kind: after > before ? 'raise' : 'clear', level: URGENCY_LEVELS[after]!, previous: URGENCY_LEVELS[before]!, score: this.trackers[lead]!.score, driver: this.stage.drivers[lead]! };
  }

  /**
   * Another model judges the call from the next window (a model switch). Its head starts a
   * baseline of its own (another model's probabilities mean nothing to it). With the same
   * drivers the trackers carry on under the new settings; with others, the new trackers
   * start at the call's level on their first driver, from which they clear as the new
   * model's scores say, so a switch never raises or drops a flag by itself.
   */
  follow(stage: UrgencyStage): void {
    if (stage === this.stage) return;
    const level = this.level;
    const score = this.score;
    const same = stage.drivers.join() === this.stage.drivers.join();
    this.stage = stage;
    this.baseline = stage.head?.newCall() ?? null;
    if (same) {
      this.trackers.forEach((t, d) => t.retune(stage.configs[d]!));
      return;
    }
    this.trackers = stage.configs.map((c) => new UrgencyTracker(c));
    this.trackers[0]!.hold(level, score);
  }

  // Plain loops: these run for every window, and a closure or a destructuring would allocate.
  private rank(): number {
    let r = 0;
    for (let d = 0; d < this.trackers.length; d++) r = Math.max(r, levelRank(this.trackers[d]!.level));
    return r;
  }

  /** The tracker at the highest level; among those, the one furthest above its threshold for it. */
  private leader(): number {
    let best = 0;
    let bestRank = -1;
    let bestMargin = -Infinity;
    for (let d = 0; d < this.trackers.length; d++) {
      const t = this.trackers[d]!;
      const rank = levelRank(t.level);
      const th = this.stage.configs[d]!.thresholds;
      const margin = t.score - (rank === 2 ? th.high : th.medium);
      if (rank > bestRank || (rank === bestRank && margin > bestMargin)) {
        best = d;
        bestRank = rank;
        bestMargin = margin;
      }
    }
    return best;
  }
}
