import type { Logger } from './logger.js';

/**
 * At most one warning line per key per interval. A flood of refused commands must not
 * flood the log (on a gateway, the journal on an SD card): the first one is logged as it
 * happens, the rest of the interval is counted, and the count is logged as one line
 * (`suppressed: N`) when the interval ends.
 */
export class WarningThrottle {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly entries = new Map<string, { suppressed: number; fields: object; message: string; timer: NodeJS.Timeout }>();

  constructor(dependencies: { logger: Logger; intervalMs?: number }) {
    this.log = dependencies.logger;
    this.intervalMs = dependencies.intervalMs ?? 30_000;
  }

  warn(key: string, fields: object, message: string): void {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      entry.suppressed++;
      entry.fields = fields;
      entry.message = message;
      return;
    }
    this.log.warn(fields, message);
    this.open(key);
  }

  /** Logs what is still counted, now, and forgets every key. */
  stop(): void {
    for (const key of [...this.entries.keys()]) this.close(key, false);
  }

  private open(key: string): void {
    const timer = setTimeout(() => this.close(key, true), this.intervalMs);
    // A quiet interval left open must never keep a stopping process alive.
    timer.unref();
    this.entries.set(key, { suppressed: 0, fields: {}, message: '', timer });
  }

  private close(key: string, reopen: boolean): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.entries.delete(key);
    if (entry.suppressed === 0) return;
    this.log.warn({ ...entry.fields, suppressed: entry.suppressed }, `${entry.message} (and ${entry.suppressed} more like it in the last ${Math.round(this.intervalMs / 1000)} s)`);
    // The summary line starts the next interval, so a flood still gets one line per interval.
    if (reopen) this.open(key);
  }
}
