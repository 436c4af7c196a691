import type { HeadsetRole } from '../audio/channel-map.js';
import type { WindowingConfig } from '../audio/speech-windower.js';
import type { Emotion } from '../model/emotions.js';
import { frameFeatureDifferences } from '../features/feature-config.js';
import { SpeechFeatureStream, type SpeechWindow } from '../pipeline/speech-feature-stream.js';
import { judgeWindow, probabilityRecord } from '../pipeline/window-verdict.js';
import type { PipelineMetrics } from '../telemetry/pipeline-metrics.js';
import type { UrgencyLevel } from '../urgency/urgency-score.js';
import { CallSession } from './call-session.js';
import type { CallBoundaryEvent, DaemonBus } from './daemon-events.js';
import type { LiveModel, ModelSlot } from './model-slot.js';
import type { ShadowTrial } from './shadow-trial.js';

export interface HeadsetChannelDependencies {
  id: string;
  role: HeadsetRole;
  /** The live model: every window is judged by `model.current` at that moment, and by the shadow model while a trial runs. */
  model: ModelSlot;
  windowing: WindowingConfig;
  callSilenceSeconds: number;
  /** The config's call id for calls no cmd/call names; a ULID per call when absent. */
  callId?: string;
  bus: DaemonBus;
  metrics: PipelineMetrics;
}

/**
 * One headset channel (one direction of one headset): speech segmentation and features,
 * the model, and the current call's urgency. Customer channels announce level changes as
 * urgency events; agent channels only keep a strain score for telemetry.
 *
 * Call boundaries come from cmd/call (`beginCall`/`endCall`) or, without them, from the
 * audio: the first speech window opens a call, and `callSilenceSeconds` without speech
 * closes it.
 *
 * Under overload the runner `skip`s audio instead of pushing it: no features, no model,
 * and the skipped hops are counted as dropped windows for this channel.
 *
 * The model can change between any two windows (see ModelSlot): the call goes on, with
 * its urgency, and the new model gets a context of its own for it. A shadow trial's model
 * judges the same windows beside it and publishes nothing.
 */
export class HeadsetChannel {
  private readonly deps: HeadsetChannelDependencies;
  private stream: SpeechFeatureStream;
  /** The model whose frame features `stream` computes (the current one, once a push has seen it). */
  private streamModel: LiveModel;
  /** The channel's clock (`audioSeconds`) when `stream` started: the stream's seconds are its own. */
  private streamOriginSeconds = 0;
  /** The audio sources' rate: the slot's, fixed for the daemon's lifetime. */
  private readonly sampleRate: number;
  private call: CallSession | null = null;
  /** Seconds of audio fed (or skipped) since start: the channel's clock, which outlives a rebuilt stream. */
  private audioSeconds = 0;
  private lastSpeechSeconds = 0;
  private speechFramesSeen = 0;
  /** Wall clock (epoch ms) of the newest block's last sample: maps stream seconds to time. */
  private blockWallMs = Date.now();
  /** Hops of skipped audio not yet counted as a whole dropped window. */
  private skippedHops = 0;
  /** Calls that took the configured call id, so the next one gets a new suffix. */
  private configuredCalls = 0;
  private lastCallId: string | null = null;
  private modelMsInPush = 0;
  private readonly onWindow = (window: SpeechWindow) => this.classify(window);

  constructor(dependencies: HeadsetChannelDependencies) {
    this.deps = dependencies;
    this.sampleRate = dependencies.model.sampleRate;
    this.streamModel = dependencies.model.current;
    this.stream = new SpeechFeatureStream({ features: this.streamModel.classifier.manifest.features, windowing: dependencies.windowing });
  }

  get id(): string {
    return this.deps.id;
  }

  get role(): HeadsetRole {
    return this.deps.role;
  }

  get callId(): string | null {
    return this.call?.callId ?? null;
  }

  get level(): UrgencyLevel {
    return this.call?.urgency.level ?? 'low';
  }

  /** Publishes the idle state once, so a subscriber sees the channel before its first call. */
  start(): void {
    this.announceLevel();
  }

  /** Audio at the model's rate, just captured (or replayed). */
  push(samples: Float32Array): void {
    const { metrics } = this.deps;
    if (this.deps.model.current !== this.streamModel) this.followModel();
    this.blockWallMs = Date.now();
    this.modelMsInPush = 0;
    // Counted first: windows found in this block are placed in time against its end.
    this.audioSeconds += samples.length / this.sampleRate;
    metrics.audioSeconds += samples.length / this.sampleRate;
    const started = performance.now();
    this.stream.push(samples, this.onWindow);
    metrics.latency.features.record(performance.now() - started - this.modelMsInPush);

    if (this.stream.speechFrames !== this.speechFramesSeen) {
      this.speechFramesSeen = this.stream.speechFrames;
      this.lastSpeechSeconds = this.audioSeconds;
    } else if (this.call !== null && this.audioSeconds - this.lastSpeechSeconds >= this.deps.callSilenceSeconds) {
      this.endCall(undefined, 'silence');
    }
  }

  /**
   * `sampleCount` samples of this channel's audio that will not be analysed: its source
   * is behind real time and the daemon sheds load. A dropped window is one hop of
   * skipped audio (`windowing.hopSeconds`): the windows the channel would have had,
   * had its caller spoken throughout. No window spans the gap, and the call-silence
   * clock stands still over it: audio nobody listened to is neither speech nor silence,
   * so a skip never ends a call.
   */
  skip(sampleCount: number): void {
    if (sampleCount <= 0) return;
    if (this.deps.model.current !== this.streamModel) this.followModel();
    const seconds = sampleCount / this.sampleRate;
    this.stream.skip(sampleCount);
    this.audioSeconds += seconds;
    this.lastSpeechSeconds += seconds;
    this.skippedHops += seconds / this.deps.windowing.hopSeconds;
    // The small epsilon keeps ten 0.1 s skips of a 1 s hop from summing to 0.9999….
    const whole = Math.floor(this.skippedHops + 1e-9);
    if (whole > 0) {
      this.skippedHops -= whole;
      this.countDropped(whole);
    }
  }

  /** A call starts (cmd/call start): the previous one, if any, ends first. */
  beginCall(callId?: string): string {
    if (this.call !== null) this.endCall(undefined, 'superseded');
    return this.openCall(callId, 'command');
  }

  /**
   * A call ends (cmd/call end, silence, shutdown). With `callId`, only that call ends, so
   * a late end for a previous call cannot cut the current one short. Returns whether one ended.
   */
  endCall(callId?: string, reason: CallBoundaryEvent['reason'] = 'command'): boolean {
    const call = this.call;
    if (call === null || (callId !== undefined && callId !== call.callId)) return false;
    if (this.deps.role === 'customer' && call.urgency.level !== 'low') {
      // The queue must see the flag go down with the call, not hang on for the next caller.
      const now = Date.now();
      this.deps.metrics.flagsCleared++;
      this.deps.bus.emit('urgency', {
        channel: this.deps.id,
        callId: call.callId,
        kind: 'clear',
        level: 'low',
        previous: call.urgency.level,
        score: call.urgency.score,
        driver: call.urgency.driver,
        emotion: (call.last?.emotion ?? 'neutral') as Emotion,
        probabilities: call.last?.probabilities ?? {},
        window: call.last?.window ?? { startMs: now, endMs: now },
        cause: 'call-end',
        model: call.last?.model ?? this.deps.model.current.ref,
      });
    }
    this.call = null;
    // Speech of the old call must not fill the first window of the next one.
    this.stream.resetSpeech();
    this.deps.bus.emit('call', { channel: this.deps.id, callId: call.callId, action: 'end', reason });
    if (this.deps.role === 'agent') this.deps.metrics.agentStrain.delete(this.deps.id);
    this.announceLevel();
    return true;
  }

  private openCall(callId: string | undefined, reason: 'command' | 'speech'): string {
    // Speech heard before the telephony system said the call began belongs to no call.
    if (reason === 'command') this.stream.resetSpeech();
    if (callId === undefined && this.deps.callId !== undefined) {
      // Never the id of the call just before, which cmd/call may have named the same.
      do {
        this.configuredCalls++;
        callId = this.configuredCalls === 1 ? this.deps.callId : `${this.deps.callId}-${this.configuredCalls}`;
      } while (callId === this.lastCallId);
    }
    this.call = new CallSession({ model: this.deps.model.current, callId, startedBy: reason });
    this.lastCallId = this.call.callId;
    this.lastSpeechSeconds = this.audioSeconds;
    this.deps.bus.emit('call', { channel: this.deps.id, callId: this.call.callId, action: 'start', reason });
    this.announceLevel();
    return this.call.callId;
  }

  /**
   * A new model is current. Its frame features are what the stream computes, or the
   * stream is rebuilt for them (same rate: ModelSlot refuses another). A rebuild costs the
   * speech in progress: its frames were computed the old way, so the window being filled
   * starts over from the next speech frame, and the next verdict comes once the new
   * stream holds a full window of speech (`windowSeconds`, 3 s by default) or an
   * utterance ends, rather than a hop after the last; the voice detector also learns the
   * room's noise floor afresh. The call and its urgency carry on.
   */
  private followModel(): void {
    const next = this.deps.model.current;
    const features = next.classifier.manifest.features;
    if (frameFeatureDifferences(this.streamModel.classifier.manifest.features, features).length > 0) {
      this.stream = new SpeechFeatureStream({ features, windowing: this.deps.windowing });
      this.streamOriginSeconds = this.audioSeconds;
      this.speechFramesSeen = 0;
    }
    this.streamModel = next;
  }

  private classify(window: SpeechWindow): void {
    const { metrics, model: slot } = this.deps;
    // Read per window, never kept: whatever the slot holds now judges this window.
    const live = slot.current;
    const call = this.call ?? (this.openCall(undefined, 'speech'), this.call!);
    const started = performance.now();
    const verdict = judgeWindow(live.classifier, window, live.labelWeights, call.contextFor(live));
    const modelMs = performance.now() - started;
    this.modelMsInPush += modelMs;
    metrics.latency.model.record(modelMs);
    if (!Number.isFinite(verdict.score)) {
      this.countDropped(1);
      return;
    }
    metrics.windows++;

    const wallOf = (seconds: number) => Math.round(this.blockWallMs - (this.audioSeconds - this.streamOriginSeconds - seconds) * 1000);
    const probabilities = probabilityRecord(live.classifier.labels, verdict.probabilities);
    call.last = { emotion: verdict.emotion, probabilities, window: { startMs: wallOf(window.startSeconds), endMs: wallOf(window.endSeconds) }, model: live.ref };

    const before = call.urgency.level;
    const change = call.urgency.update(verdict.probabilities);
    const trial = slot.shadow;
    if (trial !== null && !trial.done) this.judgeInShadow(trial, call, window, verdict.emotion, change !== null && change.kind === 'raise');
    if (this.deps.role === 'agent') {
      metrics.agentStrain.set(this.deps.id, call.urgency.score);
      return;
    }
    if (change === null) return;
    if (change.kind === 'raise') metrics.flagsRaised++;
    else metrics.flagsCleared++;
    this.deps.bus.emit('urgency', {
      channel: this.deps.id,
      callId: call.callId,
      kind: change.kind,
      level: change.level,
      previous: before,
      score: change.score,
      driver: change.driver,
      emotion: verdict.emotion,
      probabilities,
      window: call.last.window,
      cause: 'window',
      model: live.ref,
    });
    // No separate state here: the event's publisher retains the new level with the event's id.
  }

  /** The shadow model judges the window too; what it says goes into the trial's counts only, never onto the bus. */
  private judgeInShadow(trial: ShadowTrial, call: CallSession, window: SpeechWindow, activeEmotion: Emotion, activeRaised: boolean): void {
    const started = performance.now();
    trial.judge(call.shadowFor(trial), window, this.deps.role, activeEmotion, call.urgency.level, activeRaised);
    // Model time, not feature time: the features latency of the push leaves it out.
    this.modelMsInPush += performance.now() - started;
  }

  private countDropped(windows: number): void {
    this.deps.metrics.droppedWindows += windows;
    const health = this.deps.metrics.channels.get(this.deps.id);
    if (health !== undefined) health.droppedWindows += windows;
  }

  private announceLevel(): void {
    this.deps.bus.emit('channel-level', {
      channel: this.deps.id,
      role: this.deps.role,
      callId: this.call?.callId ?? null,
      level: this.call?.urgency.level ?? 'low',
      score: this.call?.urgency.score ?? 0,
    });
  }
}
