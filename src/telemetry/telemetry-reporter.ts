import type { Logger } from 'pino';
import type { DroppedCounts, TelemetryPayload } from '../mqtt/payload-schemas.js';
import { SCHEMA_VERSION } from '../mqtt/payload-schemas.js';
import type { UrgencyLevel } from '../urgency/urgency-score.js';
import type { HealthProbe } from './health-probe.js';
import { PIPELINE_STAGES, type PipelineMetrics } from './pipeline-metrics.js';

export interface TelemetryReporterDependencies {
  site: string;
  gateway: string;
  intervalSeconds: number;
  metrics: PipelineMetrics;
  probe: HealthProbe;
  /** Which implementation runs the model, as the classifier reports it. */
  backend: () => string;
  outbox: { readonly depth: number; readonly droppedCounts: DroppedCounts; readonly rejectedCount: number; readonly diskBytes: number; readonly setAside: readonly string[] };
  reconnects: () => number;
  /** Each channel's current call and level. */
  channelLevels: () => Map<string, { callId: string | null; level: UrgencyLevel }>;
  /** The shadow trial's report and the staged model, while a model is staged; null (or absent) otherwise. */
  shadow?: () => TelemetryPayload['pipeline']['shadow'] | null;
  publish: (payload: TelemetryPayload) => void | Promise<void>;
  logger: Logger;
}

/**
 * Every `intervalSeconds`: the gateway's health and the pipeline's figures, published
 * retained on `…/telemetry`, so a dashboard opened later sees the latest at once.
 */
export class TelemetryReporter {
  private readonly deps: TelemetryReporterDependencies;
  private timer: NodeJS.Timeout | undefined;
  private lastAt = performance.now();
  private lastWindows = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** When the current report was due: the next one is due an interval later, however long this one took. */
  private dueAt = 0;

  constructor(dependencies: TelemetryReporterDependencies) {
    this.deps = dependencies;
  }

  start(): void {
    this.stopped = false;
    this.lastAt = performance.now();
    this.lastWindows = this.deps.metrics.windows;
    // The first report comes soon, so a gateway shows up on dashboards right after boot.
    const first = Math.min(2000, this.deps.intervalSeconds * 1000);
    this.dueAt = performance.now() + first;
    this.timer = setTimeout(() => this.tick(), first);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One report, built now (also what tests and `--once` use). */
  async snapshot(): Promise<TelemetryPayload> {
    const { metrics } = this.deps;
    // Read first: every figure below then comes from one moment, so per-channel counts add up to the totals.
    const reading = await this.deps.probe.read();
    const now = performance.now();
    const elapsed = (now - this.lastAt) / 1000;
    const windowsPerSecond = elapsed > 0 ? (metrics.windows - this.lastWindows) / elapsed : 0;
    this.lastAt = now;
    this.lastWindows = metrics.windows;
    const latencyMs: Record<string, { p50: number; p99: number }> = {};
    for (const stage of PIPELINE_STAGES) {
      const h = metrics.latency[stage];
      const p50 = h.quantile(0.5);
      const p99 = h.quantile(0.99);
      if (p50 !== null && p99 !== null) latencyMs[stage] = { p50: round(p50, 3), p99: round(p99, 3) };
      h.decay();
    }
    const levels = this.deps.channelLevels();
    const channels: TelemetryPayload['pipeline']['channels'] = {};
    for (const [id, health] of metrics.channels) {
      const level = levels.get(id);
      channels[id] = {
        role: health.role,
        state: health.state,
        source: health.source,
        failures: health.failures,
        droppedWindows: health.droppedWindows,
        ...(health.lastError !== undefined ? { lastError: health.lastError } : {}),
        ...(level ? { callId: level.callId, level: level.level } : {}),
      };
    }
    const shadow = this.deps.shadow?.() ?? null;
    const agentStrain: Record<string, { score: number }> = {};
    for (const [id, score] of metrics.agentStrain) agentStrain[id] = { score: round(Math.min(1, Math.max(0, score)), 4) };
    return {
      schema: SCHEMA_VERSION,
      ts: new Date().toISOString(),
      site: this.deps.site,
      gateway: this.deps.gateway,
      health: reading,
      pipeline: {
        backend: this.deps.backend(),
        latencyMs,
        windowsPerSecond: round(windowsPerSecond, 3),
        windows: metrics.windows,
        droppedWindows: metrics.droppedWindows,
        outboxDepth: this.deps.outbox.depth,
        outboxDropped: { ...this.deps.outbox.droppedCounts },
        outboxRejected: this.deps.outbox.rejectedCount,
        outboxBytes: this.deps.outbox.diskBytes,
        ...(this.deps.outbox.setAside.length > 0 ? { outboxSetAside: [...this.deps.outbox.setAside] } : {}),
        reconnects: this.deps.reconnects(),
        channels,
        audioSeconds: round(metrics.audioSeconds, 1),
        flagsRaised: metrics.flagsRaised,
        flagsCleared: metrics.flagsCleared,
        channelFailures: metrics.channelFailures,
        ...(shadow ? { shadow } : {}),
      },
      ...(Object.keys(agentStrain).length > 0 ? { agentStrain } : {}),
    };
  }

  private tick(): void {
    this.running = (async () => {
      try {
        await this.deps.publish(await this.snapshot());
      } catch (error) {
        this.deps.logger.warn({ err: error }, 'telemetry report failed; the next one is due at the usual interval');
      }
    })();
    void this.running.finally(() => {
      if (this.stopped) return;
      // On a fixed cadence, so a slow health read (a busy CPU) does not stretch every interval;
      // a report that took longer than the interval is followed by the next one at once, never by a burst.
      const intervalMs = this.deps.intervalSeconds * 1000;
      const now = performance.now();
      this.dueAt = Math.max(this.dueAt + intervalMs, now);
      this.timer = setTimeout(() => this.tick(), this.dueAt - now);
      this.timer.unref();
    });
  }
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
