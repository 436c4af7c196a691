import { EventEmitter } from 'node:events';
import type { HeadsetRole } from '../audio/channel-map.js';
import type { Emotion } from '../model/emotions.js';
import type { UrgencyDriver } from '../urgency/call-urgency.js';
import type { UrgencyLevel } from '../urgency/urgency-score.js';

/** A customer channel's urgency moved: the event that becomes a flag on `…/urgency`. */
export interface UrgencyChangeEvent {
  channel: string;
  callId: string;
  kind: 'raise' | 'clear';
  level: UrgencyLevel;
  previous: UrgencyLevel;
  /** Smoothed score of the call at the change, 0..1. */
  score: number;
  /** Which urgency score set the level (angry or sad with a trained head, weighted without). */
  driver: UrgencyDriver;
  /** Top emotion of the window that caused it (of the last window when a call ends). */
  emotion: Emotion;
  probabilities: Record<string, number>;
  /** Wall-clock span of that window, epoch ms. */
  window: { startMs: number; endMs: number };
  /** Why: a window moved the smoothed score, or the call ended with a flag up. */
  cause: 'window' | 'call-end';
  /** The model that judged that window. */
  model: { name: string; version: string };
}

/** What a channel's retained state says now; sent on every level change and call boundary. */
export interface ChannelLevelEvent {
  channel: string;
  role: HeadsetRole;
  callId: string | null;
  level: UrgencyLevel;
  score: number;
}

export interface CallBoundaryEvent {
  channel: string;
  callId: string;
  action: 'start' | 'end';
  /** command: cmd/call; speech: the first speech after a silent gap; silence: callSilenceSeconds passed; superseded: a new call began. */
  reason: 'command' | 'speech' | 'silence' | 'superseded' | 'shutdown';
}

export interface SourceEvent {
  source: string;
  channels: string[];
}

export interface SourceFailureEvent extends SourceEvent {
  error: string;
  attempt: number;
  retryInMs: number;
  /** Refused for good (it cannot carry its channel mapping): not retried. */
  permanent: boolean;
}

/**
 * The bus between the daemon's parts: channels announce what happened, and the outbox
 * writer, the state publisher, telemetry and the terminal printer each listen for their
 * part, so no stage calls another directly.
 */
export interface DaemonEventMap {
  urgency: [UrgencyChangeEvent];
  'channel-level': [ChannelLevelEvent];
  call: [CallBoundaryEvent];
  'source-running': [SourceEvent];
  'source-failed': [SourceFailureEvent];
  'source-ended': [SourceEvent];
}

export class DaemonBus extends EventEmitter<DaemonEventMap> {}
