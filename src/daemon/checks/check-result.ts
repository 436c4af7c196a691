/**
 * One line of `ser-edge doctor`: what was checked, what was found and, when it is not
 * fine, what to do. `skip` is for checks that do not apply to this config (a demo source
 * has no capture device); `warn` for what works but deserves a look; `fail` for what
 * stops the daemon, or stops it from doing its job.
 */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable key for scripts: `node`, `config`, `recorder`, `capture`, `model`, `model-signature`, `model-keys`, `model-store`, `broker`, `state-dir`, `disk`, `clock`, `capacity`. */
  check: string;
  /** What the row is about when a check has one per thing: `sources[0]`, a directory. */
  subject: string | null;
  status: CheckStatus;
  /** What was found, in one sentence or two. */
  detail: string;
  /** What to do: set for every `fail` and `warn`. */
  fix: string | null;
  /** Measured figures, for --json. */
  data?: Record<string, unknown>;
}

type Row = Omit<CheckResult, 'check' | 'subject' | 'status' | 'fix'> & { subject?: string | null };

export const pass = (check: string, row: Row): CheckResult => ({ check, subject: row.subject ?? null, status: 'pass', detail: row.detail, fix: null, ...(row.data ? { data: row.data } : {}) });
export const skip = (check: string, row: Row): CheckResult => ({ check, subject: row.subject ?? null, status: 'skip', detail: row.detail, fix: null, ...(row.data ? { data: row.data } : {}) });
export const warn = (check: string, row: Row & { fix: string }): CheckResult => ({ check, subject: row.subject ?? null, status: 'warn', detail: row.detail, fix: row.fix, ...(row.data ? { data: row.data } : {}) });
export const fail = (check: string, row: Row & { fix: string }): CheckResult => ({ check, subject: row.subject ?? null, status: 'fail', detail: row.detail, fix: row.fix, ...(row.data ? { data: row.data } : {}) });

/** The reason a Node error names, for details: its code (`EACCES`) or its message. */
export function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException)?.code ?? (error as Error)?.message ?? String(error);
}
