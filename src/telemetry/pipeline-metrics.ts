import { LatencyHistogram } from './latency-histogram.js';

export const PIPELINE_STAGES = ['features', 'model', 'publish'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

/**
 * The daemon's running counters, written by the channels and the publisher and read by
 * telemetry and the Prometheus endpoint. Plain fields, no locking: one event loop.
 */
export class PipelineMetrics {
  readonly latency: Record<PipelineStage, LatencyHistogram> = {
    features: new LatencyHistogram(),
    model: new LatencyHistogram(),
    publish: new LatencyHistogram(),
  };
  /** Windows classified since start. */
  windows = 0;
  /** Windows not classified, all channels (each channel's share is in `channels`): see ChannelHealth.droppedWindows. */
  droppedWindows = 0;
  /** Seconds of audio taken in, all channels. */
  audioSeconds = 0;
  flagsRaised = 0;
  flagsCleared = 0;
  channelFailures = 0;
  /** Per channel id: what the channel is doing now, for telemetry. */
  readonly channels = new Map<string, ChannelHealth>();
  /** Per agent channel id: the smoothed strain score (0..1), a well-being signal only. */
  readonly agentStrain = new Map<string, number>();
}

export interface ChannelHealth {
  role: 'customer' | 'agent';
  /** `failed`: refused for good (its source cannot carry the channel); not retried. */
  state: 'starting' | 'running' | 'retrying' | 'ended' | 'failed';
  source: string;
  lastError?: string;
  failures: number;
  /**
   * Windows of this channel not classified since start: one per hop of audio skipped
   * because the daemon was behind real time (the windows it would have had, had its
   * caller spoken throughout), and any window whose model output was unusable.
   */
  droppedWindows: number;
}
