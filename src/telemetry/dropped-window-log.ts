import type { Logger } from 'pino';
import type { PipelineMetrics } from './pipeline-metrics.js';

export interface DroppedWindowLogDependencies {
  metrics: PipelineMetrics;
  logger: Logger;
  /** Live channels and how many of them are analysed now, for the line's context. */
  served?: () => { served: number; live: number };
  /** At most one line per this many seconds. Default 30. */
  intervalSeconds?: number;
}

/** Channels named one by one in a line; the rest are summed, so a line stays readable with thousands of channels. */
const NAMED_CHANNELS = 20;
/** How often the counters are looked at: the first drops are reported within this, later ones at the interval. */
const CHECK_MS = 1000;

/**
 * A warning when windows are dropped (the CPU cannot analyse every channel in real time),
 * at most one line every `intervalSeconds`, saying which channels dropped how many since
 * the line before. Telemetry carries the running totals per channel; this is the line an
 * operator reading the journal sees.
 */
export class DroppedWindowLog {
  private readonly deps: DroppedWindowLogDependencies;
  private readonly intervalMs: number;
  private readonly reported = new Map<string, number>();
  private reportedTotal = 0;
  private lastLineAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(dependencies: DroppedWindowLogDependencies) {
    this.deps = dependencies;
    this.intervalMs = (dependencies.intervalSeconds ?? 30) * 1000;
  }

  start(): void {
    this.reportedTotal = this.deps.metrics.droppedWindows;
    for (const [id, health] of this.deps.metrics.channels) this.reported.set(id, health.droppedWindows);
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Logs the drops since the last line, if there are any and the interval has passed. */
  check(now = performance.now()): void {
    const { metrics } = this.deps;
    if (metrics.droppedWindows === this.reportedTotal || now - this.lastLineAt < this.intervalMs) return;
    const sinceSeconds = Number.isFinite(this.lastLineAt) ? Math.round((now - this.lastLineAt) / 1000) : undefined;
    const dropped: [string, number][] = [];
    for (const [id, health] of metrics.channels) {
      const before = this.reported.get(id) ?? 0;
      if (health.droppedWindows > before) dropped.push([id, health.droppedWindows - before]);
      this.reported.set(id, health.droppedWindows);
    }
    const total = metrics.droppedWindows - this.reportedTotal;
    this.reportedTotal = metrics.droppedWindows;
    this.lastLineAt = now;
    dropped.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const named = dropped.slice(0, NAMED_CHANNELS);
    const others = dropped.slice(NAMED_CHANNELS);
    const served = this.deps.served?.();
    const list = named.map(([id, n]) => `${id} ${n}`).join(', ') + (others.length > 0 ? `, ${others.length} other channels ${sum(others)} in all` : '');
    this.deps.logger.warn(
      {
        droppedWindows: total,
        channels: dropped.length,
        byChannel: Object.fromEntries(named),
        ...(others.length > 0 ? { otherChannels: { channels: others.length, droppedWindows: sum(others) } } : {}),
        ...(served !== undefined ? { servedChannels: served.served, liveChannels: served.live } : {}),
        ...(sinceSeconds !== undefined ? { sinceSeconds } : {}),
      },
      `windows dropped${sinceSeconds !== undefined ? ` in the last ${sinceSeconds} s` : ''}: ${total} on ${dropped.length} channel${dropped.length === 1 ? '' : 's'} (${list})` +
        (served !== undefined && served.served < served.live ? `; ${served.served} of ${served.live} live channels are analysed at a time, in turns` : '') +
        '; the CPU cannot analyse every channel in real time (see README, Capacity and overload)',
    );
  }
}

const sum = (entries: [string, number][]) => entries.reduce((n, [, count]) => n + count, 0);
