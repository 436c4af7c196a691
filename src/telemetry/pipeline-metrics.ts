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
  /** Windows not classified: the channel was too far behind real time, or the model returned garbage. */
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
  state: 'starting' | 'running' | 'retrying' | 'ended';
  source: string;
  lastError?: string;
  failures: number;
}
