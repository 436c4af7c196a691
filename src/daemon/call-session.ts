import { ulid } from 'ulid';
import type { CallContext } from '../model/classifier.js';
import { UrgencyTracker, type TrackerConfig } from '../urgency/urgency-tracker.js';

/**
 * One call on one headset channel: its id, its urgency tracker and the model's context
 * for it (a caller baseline). A new session per call is the reset: the next caller starts
 * at low, and is compared with their own voice, whatever the last one said.
 */
export class CallSession {
  readonly tracker: UrgencyTracker;
  readonly callId: string;
  readonly startedBy: 'command' | 'speech';
  /** What the model keeps about this call; null for a model that keeps nothing. */
  readonly model: CallContext | null;
  /** Last window's verdict, for the clear event a call end may have to send. */
  last: { emotion: string; probabilities: Record<string, number>; window: { startMs: number; endMs: number } } | null = null;

  constructor(dependencies: { tracker: TrackerConfig; callId?: string; startedBy: 'command' | 'speech'; model?: CallContext | null }) {
    this.model = dependencies.model ?? null;
    this.tracker = new UrgencyTracker(dependencies.tracker);
    // The telephony system's id when it told us; otherwise a ULID, sortable by start time.
    this.callId = dependencies.callId ?? ulid();
    this.startedBy = dependencies.startedBy;
  }
}
