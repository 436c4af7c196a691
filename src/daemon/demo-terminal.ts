import type { UrgencyLevel } from '../urgency/urgency-score.js';

/** What the status line reports, read from the running daemon once a second. */
export interface DemoStatus {
  /** Each channel's state (PipelineMetrics.channels): starting, running, retrying, ended. */
  channels: readonly { state: string }[];
  /** Windows classified since start, all channels. */
  windows: number;
  lastFlag: { channel: string; kind: 'raise' | 'clear'; level: UrgencyLevel; atMs: number } | null;
  broker: { url: string; connected: boolean };
}

interface TerminalStream {
  write(text: string): unknown;
  /** A terminal's width; the status line is cut to it, as a wrapped line cannot be redrawn in place. */
  columns?: number;
}

export interface DemoTerminalDependencies {
  out: TerminalStream;
  err: TerminalStream;
  /** Draw the status line below the printed lines: only when `out` is a terminal. */
  statusLine: boolean;
  read: () => DemoStatus;
  intervalMs?: number;
  now?: () => number;
}

const ERASE_LINE = '\r\x1b[2K';
const RATE_SPAN_MS = 5000;
const LEVEL_TEXT: Record<UrgencyLevel, string> = { high: 'HIGH', medium: 'MEDIUM', low: 'low' };

/**
 * The terminal of `ser-edge run` for a person watching it (the demo): lines printed above
 * (flag lines, short warnings, pretty logs) and one status line kept at the bottom, redrawn
 * in place every second. Everything meant for that terminal goes through `print`, which takes
 * the status line away, writes, and draws it again, so the two never mix on one line.
 */
export class DemoTerminal {
  private readonly deps: DemoTerminalDependencies;
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;
  private running = false;
  private rate = 0;
  /** The window counts of the last RATE_SPAN_MS, oldest first: windows come about once a second, so a one-second rate would flicker between 0 and 2. */
  private readonly counts: { windows: number; atMs: number }[] = [];

  constructor(dependencies: DemoTerminalDependencies) {
    this.deps = dependencies;
  }

  start(): void {
    if (!this.deps.statusLine || this.running) return;
    this.running = true;
    this.tick();
    // unref'd: a status line must never be what keeps the process alive.
    this.timer = setInterval(() => this.tick(), this.deps.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** A line above the status line, on stdout (`out`) or stderr (`err`). */
  print(text: string, to: 'out' | 'err' = 'out'): void {
    this.erase();
    (to === 'out' ? this.deps.out : this.deps.err).write(text.endsWith('\n') ? text : `${text}\n`);
    this.draw();
  }

  /** Takes the status line away for good (at shutdown), leaving the printed lines. */
  stop(): void {
    clearInterval(this.timer);
    this.erase();
    this.running = false;
  }

  private tick(): void {
    const now = (this.deps.now ?? Date.now)();
    const { windows } = this.deps.read();
    this.counts.push({ windows, atMs: now });
    while (this.counts.length > 2 && now - this.counts[1]!.atMs >= RATE_SPAN_MS) this.counts.shift();
    const first = this.counts[0]!;
    if (now > first.atMs) this.rate = ((windows - first.windows) * 1000) / (now - first.atMs);
    this.erase();
    this.draw();
  }

  private draw(): void {
    if (!this.running) return;
    const text = [...statusText(this.deps.read(), this.rate, (this.deps.now ?? Date.now)())];
    const width = this.deps.out.columns;
    this.deps.out.write(width !== undefined && width > 1 && text.length >= width ? `${text.slice(0, width - 2).join('')}…` : text.join(''));
    this.drawn = true;
  }

  private erase(): void {
    if (!this.drawn) return;
    this.deps.out.write(ERASE_LINE);
    this.drawn = false;
  }
}

/** The status line: channels, windows per second, the last flag, the broker. */
export function statusText(status: DemoStatus, windowsPerSecond: number, nowMs: number): string {
  const running = status.channels.filter((c) => c.state === 'running').length;
  const other = status.channels.length - running;
  const channels = `${status.channels.length} channel${status.channels.length === 1 ? '' : 's'}${other > 0 ? ` (${running} running)` : ''}`;
  const flag = status.lastFlag
    ? `last flag: ${status.lastFlag.channel} ${LEVEL_TEXT[status.lastFlag.level]}, ${status.lastFlag.kind === 'raise' ? 'raised' : 'cleared'} ${ago(nowMs - status.lastFlag.atMs)}`
    : 'no flag yet';
  const broker = `broker ${status.broker.url} ${status.broker.connected ? 'connected' : 'not connected'}`;
  return `● ${channels} · ${windowsPerSecond.toFixed(1)} windows/s · ${flag} · ${broker}`;
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s ago` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}
