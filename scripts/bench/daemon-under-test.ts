/**
 * `ser-edge run --config …` as a child process, as systemd runs it on a gateway, with what
 * the daemon benchmarks read from outside it: CPU time of its main thread (the event loop,
 * the one core a daemon gets) and of the whole process, resident memory, and its JSON log.
 * A daemon that crashes costs the figure that started it, never the bench.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../../bin/ser-edge.js', import.meta.url));
const clockTicks = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(r.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();

export interface CpuTimes {
  /** Seconds of CPU of the main thread: the event loop that runs every channel. */
  mainThread: number;
  /** All threads: the event loop, GC helpers, libuv's pool (fsync). */
  process: number;
  /** Seconds the main thread was ready to run but waited for a core: other work on the machine. */
  mainThreadWaiting: number;
}

export class DaemonUnderTest {
  readonly child: ChildProcess;
  readonly configFile: string;
  private readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  /**
   * Starts the daemon on `config` (written to `dir`); `stdin` (a pipe, e.g. a recorder's
   * stdout) feeds a stdin source. `program` is the checkout's bin/ser-edge.js unless given
   * (the bundle's ser-edge.mjs).
   */
  constructor(options: { dir: string; config: Record<string, unknown>; stdin?: Readable; env?: Record<string, string>; program?: string }) {
    this.configFile = join(options.dir, 'config.json');
    this.logFile = join(options.dir, 'daemon.log');
    writeFileSync(this.configFile, JSON.stringify(options.config, null, 2));
    // The log goes to a file, not a pipe: the daemon writes it synchronously, and a pipe the
    // bench is slow to read would stall the daemon rather than measure it.
    const log = openSync(this.logFile, 'w');
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SER_EDGE_'))), ...options.env };
    this.child = spawn(process.execPath, [options.program ?? cli, 'run', '--config', this.configFile], { stdio: [options.stdin ?? 'ignore', 'ignore', log], env });
    closeSync(log);
    // A bench that dies must not leave a daemon behind.
    const kill = () => this.child.kill('SIGKILL');
    process.once('exit', kill);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        process.off('exit', kill);
        resolve(this.exit);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Throws, with the end of its log, when the daemon is no longer running. */
  assertRunning(during: string): void {
    if (this.exit !== null) throw new Error(`the daemon exited (code ${this.exit.code}, signal ${this.exit.signal}) during ${during}; its log ends:\n${this.logTail()}`);
  }

  cpu(): CpuTimes {
    // schedstat: ns on a CPU, ns waiting on a run queue, time slices.
    const waitingNs = Number(readFileSync(`/proc/${this.pid}/task/${this.pid}/schedstat`, 'utf8').split(' ')[1]);
    return {
      mainThread: ticksOf(`/proc/${this.pid}/task/${this.pid}/stat`) / clockTicks,
      process: ticksOf(`/proc/${this.pid}/stat`) / clockTicks,
      mainThreadWaiting: waitingNs / 1e9,
    };
  }

  /** Resident memory now, MB. */
  rssMb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  }

  /** The JSON log lines written so far. */
  logs(): Record<string, unknown>[] {
    if (!existsSync(this.logFile)) return [];
    const lines: Record<string, unknown>[] = [];
    for (const line of readFileSync(this.logFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // the last line may be half written
      }
    }
    return lines;
  }

  logTail(chars = 2000): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').slice(-chars) : '(no log)';
  }

  /** The daemon's own counters from its Prometheus endpoint, and when they arrived (epoch ms). */
  async scrape(url: string): Promise<{ atMs: number; values: Map<string, number> }> {
    let text: string;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      text = await response.text();
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause?.message;
      throw new Error(`the daemon's Prometheus endpoint ${url} did not answer: ${(error as Error).message}${cause ? ` (${cause})` : ''}`);
    }
    const atMs = Date.now();
    const values = new Map<string, number>();
    for (const line of text.split('\n')) {
      const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (match) values.set(match[1]!, Number(match[2]));
    }
    return { atMs, values };
  }

  /** Log lines at warn level or above, for the report: a clean run has none. */
  warnings(): string[] {
    return this.logs()
      .filter((l) => typeof l.level === 'number' && l.level >= 40)
      .map((l) => String(l.msg));
  }

  /** Waits until `check` passes or `timeoutMs` is over; fails early if the daemon exits. */
  async waitUntil(check: () => boolean, timeoutMs: number, what: string, pollMs = 50): Promise<void> {
    const until = performance.now() + timeoutMs;
    while (!check()) {
      this.assertRunning(`waiting for ${what}`);
      if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the daemon's log ends:\n${this.logTail()}`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** SIGTERM, as systemd stops it; SIGKILL if it is still there after the README's 5 s. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exit !== null) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 6000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

/** utime + stime of a /proc stat file. The command name may hold spaces, so fields count from its closing parenthesis. */
function ticksOf(statFile: string): number {
  const fields = readFileSync(statFile, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** One daemon config for the benchmarks: site `bench`, the shipped model, the given broker and sources. */
export function benchConfig(options: {
  gateway: string;
  stateDir: string;
  brokerUrl: string;
  sources: unknown[];
  telemetrySeconds: number;
  /** The loopback Prometheus endpoint on a free port (its address is logged). */
  prometheus?: boolean;
  urgency?: Record<string, unknown>;
  logLevel?: string;
}): Record<string, unknown> {
  return {
    extends: 'generic-linux',
    site: 'bench',
    gateway: options.gateway,
    stateDir: options.stateDir,
    logLevel: options.logLevel ?? 'info',
    mqtt: { url: options.brokerUrl },
    telemetry: { intervalSeconds: options.telemetrySeconds, ...(options.prometheus ? { prometheus: { enabled: true, port: 0 } } : {}) },
    ...(options.urgency ? { urgency: options.urgency } : {}),
    sources: options.sources,
  };
}
