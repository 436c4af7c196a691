import type { HeadsetRole } from '../audio/channel-map.js';
import type { CallContext } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import type { ShadowTrialReport } from '../mqtt/payload-schemas.js';
import type { SpeechWindow } from '../pipeline/speech-feature-stream.js';
import { judgeWindow } from '../pipeline/window-verdict.js';
import type { UrgencyLevel } from '../urgency/urgency-score.js';
import type { CallUrgency } from '../urgency/call-urgency.js';
import type { LiveModel } from './model-slot.js';

export interface ShadowTrialDependencies {
  /** The staged model: it judges the live windows and never publishes. */
  model: LiveModel;
  /** Length of the trial; after it the trial keeps its report and judges no more. */
  minutes: number;
  /** Epoch ms; tests drive the trial's clock. */
  now?: () => number;
}

/**
 * One call as the shadow model follows it: its own context (a caller baseline) and its
 * own urgency trackers (the staged bundle's), so its levels are what the call would have shown had it been active. A
 * trial that starts during a call follows that call from its next window: its trackers
 * start at low then, where the active one may already be higher.
 */
export interface ShadowCall {
  readonly trial: ShadowTrial;
  readonly context: CallContext | null;
  readonly urgency: CallUrgency;
}

/**
 * A staged model judged on the same live windows as the active one, for a while, without
 * publishing anything: how often the two agree on the top emotion and on the call's
 * smoothed urgency level, and how many flags each raised (or would have). That tells a
 * field tech, before switching, whether the new model would flood the queue or miss
 * the callers the old one flags.
 *
 * Only customer channels count towards flags, as only they raise any; agent channels'
 * windows count towards agreement. A window the shadow model answers with garbage (a
 * non-finite score) is not one both models classified, and is left out.
 */
export class ShadowTrial {
  readonly model: LiveModel;
  readonly startedAtMs: number;
  readonly endsAtMs: number;
  private readonly now: () => number;
  private windows = 0;
  private emotionAgreed = 0;
  private levelAgreed = 0;
  private activeFlags = 0;
  private shadowFlags = 0;

  constructor(dependencies: ShadowTrialDependencies) {
    if (!(dependencies.minutes > 0) || !Number.isFinite(dependencies.minutes)) {
      throw new Error(`shadow trial of ${dependencies.model.ref.name} ${dependencies.model.ref.version}: minutes must be a positive number, got ${dependencies.minutes}`);
    }
    this.model = dependencies.model;
    this.now = dependencies.now ?? Date.now;
    this.startedAtMs = this.now();
    this.endsAtMs = this.startedAtMs + dependencies.minutes * 60_000;
  }

  /** The trial's time is over: it judges no more windows, and its report stays as it was. */
  get done(): boolean {
    return this.now() >= this.endsAtMs;
  }

  /** A call the shadow model starts following (at the call's first window in the trial). */
  openCall(): ShadowCall {
    return { trial: this, context: this.model.classifier.newCallContext(), urgency: this.model.urgency.newCall() };
  }

  /**
   * The active model has judged `window` of `call`'s channel: its top emotion, the call's
   * level after it, and whether that raised a flag. The shadow model judges the same
   * window. Does nothing once the trial is done. Positional arguments, as it runs once
   * per window beside the active model: nothing is allocated here beyond the verdict.
   */
  judge(call: ShadowCall, window: SpeechWindow, role: HeadsetRole, activeEmotion: Emotion, activeLevel: UrgencyLevel, activeRaised: boolean): void {
    if (this.done) return;
    const flags = role === 'customer';
    if (flags && activeRaised) this.activeFlags++;
    const verdict = judgeWindow(this.model.classifier, window, this.model.labelWeights, call.context);
    if (!Number.isFinite(verdict.score)) return;
    const change = call.urgency.update(verdict.probabilities);
    this.windows++;
    if (verdict.emotion === activeEmotion) this.emotionAgreed++;
    if (call.urgency.level === activeLevel) this.levelAgreed++;
    if (flags && change !== null && change.kind === 'raise') this.shadowFlags++;
  }

  /** What the trial has seen up to `nowMs` (at most its end). */
  report(nowMs: number = this.now()): ShadowTrialReport {
    const hours = Math.max(0, Math.min(nowMs, this.endsAtMs) - this.startedAtMs) / 3_600_000;
    const perHour = (flags: number) => (hours > 0 ? Number((flags / hours).toFixed(2)) : 0);
    // Cut, never rounded up: 0.99996 must not read as full agreement.
    const share = (agreed: number) => (this.windows > 0 ? Math.floor((agreed / this.windows) * 10_000) / 10_000 : null);
    return {
      startedAt: new Date(this.startedAtMs).toISOString(),
      endsAt: new Date(this.endsAtMs).toISOString(),
      done: nowMs >= this.endsAtMs,
      windows: this.windows,
      agreement: { emotion: share(this.emotionAgreed), level: share(this.levelAgreed) },
      flagsPerHour: { active: perHour(this.activeFlags), shadow: perHour(this.shadowFlags) },
      flags: { active: this.activeFlags, shadow: this.shadowFlags },
    };
  }
}
