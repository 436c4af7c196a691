import { ulid } from 'ulid';
import type { CallContext } from '../model/classifier.js';
import type { CallUrgency } from '../urgency/call-urgency.js';
import type { LiveModel } from './model-slot.js';
import type { ShadowCall, ShadowTrial } from './shadow-trial.js';

/**
 * One call on one headset channel: its id, its urgency (level and trackers) and the model's context
 * for it (a caller baseline). A new session per call is the reset: the next caller starts
 * at low, and is compared with their own voice, whatever the last one said.
 */
export class CallSession {
  readonly urgency: CallUrgency;
  readonly callId: string;
  readonly startedBy: 'command' | 'speech';
  /** Last window's verdict, for the clear event a call end may have to send. */
  last: { emotion: string; probabilities: Record<string, number>; window: { startMs: number; endMs: number }; model: { name: string; version: string } } | null = null;
  /** What the model keeps about this call; null for a model that keeps nothing. */
  private context: CallContext | null = null;
  /** The model `context` came from. */
  private contextOf: LiveModel | null = null;
  private shadowCall: ShadowCall | null = null;

  constructor(dependencies: { model: LiveModel; callId?: string; startedBy: 'command' | 'speech' }) {
    this.urgency = dependencies.model.urgency.newCall();
    // The telephony system's id when it told us; otherwise a ULID, sortable by start time.
    this.callId = dependencies.callId ?? ulid();
    this.startedBy = dependencies.startedBy;
  }

  /**
   * This call's context for `model`. A model switched in during the call gets a context
   * of its own (another model's baseline means nothing to it), built from the windows it
   * judges from then on; the call's urgency so far carries on under the new model's
   * urgency stage (`CallUrgency.follow`).
   */
  contextFor(model: LiveModel): CallContext | null {
    if (model !== this.contextOf) {
      this.context = model.classifier.newCallContext();
      this.contextOf = model;
      this.urgency.follow(model.urgency);
    }
    return this.context;
  }

  /** How `trial`'s model follows this call, from the first window it judges. */
  shadowFor(trial: ShadowTrial): ShadowCall {
    if (this.shadowCall === null || this.shadowCall.trial !== trial) this.shadowCall = trial.openCall();
    return this.shadowCall;
  }
}
