import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DroppedCounts } from '../mqtt/payload-schemas.js';
import { PIPELINE_STAGES, type PipelineMetrics } from './pipeline-metrics.js';

export interface PrometheusEndpointDependencies {
  /** Loopback only: the endpoint has no authentication; a local agent scrapes it. */
  host: '127.0.0.1' | '::1' | 'localhost';
  port: number;
  metrics: PipelineMetrics;
  outbox: { readonly depth: number; readonly droppedCounts: DroppedCounts; readonly rejectedCount: number };
  reconnects: () => number;
  logger: Logger;
}

/**
 * `GET /metrics` in the Prometheus text format, for sites that scrape gateways with a
 * local agent instead of (or besides) reading MQTT telemetry. Values are read at scrape
 * time from the same counters telemetry uses; nothing is duplicated on the hot path.
 */
export class PrometheusEndpoint {
  private readonly deps: PrometheusEndpointDependencies;
  private server: Server | undefined;
  private readonly registry = new Registry();

  constructor(dependencies: PrometheusEndpointDependencies) {
    this.deps = dependencies;
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    const { metrics, outbox, reconnects } = this.deps;
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'ser_edge_' });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
    gauge('ser_edge_windows_total', 'Speech windows classified since start', () => metrics.windows);
    gauge('ser_edge_dropped_windows_total', 'Windows not classified (audio skipped while behind real time, one per hop; or bad model output)', () => metrics.droppedWindows);
    new Gauge({
      name: 'ser_edge_channel_dropped_windows_total',
      help: 'Windows not classified per channel (audio skipped while behind real time, one per hop; or bad model output)',
      labelNames: ['channel'],
      registers: [registry],
      collect() {
        for (const [channel, health] of metrics.channels) this.set({ channel }, health.droppedWindows);
      },
    });
    gauge('ser_edge_audio_seconds_total', 'Seconds of audio taken in, all channels', () => metrics.audioSeconds);
    gauge('ser_edge_flags_raised_total', 'Urgency flags raised', () => metrics.flagsRaised);
    gauge('ser_edge_flags_cleared_total', 'Urgency flags cleared', () => metrics.flagsCleared);
    gauge('ser_edge_channel_failures_total', 'Audio source failures (each retried)', () => metrics.channelFailures);
    gauge('ser_edge_outbox_depth', 'Events waiting in the outbox for a broker acknowledgement', () => outbox.depth);
    gauge('ser_edge_outbox_rejected_total', 'Events the broker refused for good, kept in rejected.jsonl', () => outbox.rejectedCount);
    gauge('ser_edge_mqtt_reconnects_total', 'MQTT reconnects since start', reconnects);
    new Gauge({
      name: 'ser_edge_outbox_dropped_total',
      help: 'Events dropped because the outbox was full, by level',
      labelNames: ['level'],
      registers: [registry],
      collect() {
        for (const [level, count] of Object.entries(outbox.droppedCounts)) this.set({ level }, count);
      },
    });
    new Gauge({
      name: 'ser_edge_stage_latency_ms',
      help: 'Per-stage latency quantiles over the last few telemetry intervals',
      labelNames: ['stage', 'quantile'],
      registers: [registry],
      collect() {
        for (const stage of PIPELINE_STAGES) {
          for (const q of [0.5, 0.99]) {
            const value = metrics.latency[stage].quantile(q);
            if (value !== null) this.set({ stage, quantile: String(q) }, value);
          }
        }
      },
    });
    new Gauge({
      name: 'ser_edge_agent_strain',
      help: 'Smoothed strain score of agent channels (well-being signal, 0..1)',
      labelNames: ['channel'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [channel, score] of metrics.agentStrain) this.set({ channel }, score);
      },
    });

    this.server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
        return;
      }
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      );
    });
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.deps.port, this.deps.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.deps.logger.info({ url: `http://${this.deps.host}:${this.port}/metrics` }, 'Prometheus endpoint listening (loopback only)');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
