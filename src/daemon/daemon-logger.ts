import { closeSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Where the daemon's log goes:
 * - `json`: JSON lines on stderr, one per event (systemd's journal, the tests, log shippers).
 * - `file`: the same JSON lines appended to a file, with a short line per warning or error
 *   on the terminal; the demo's default, so its flag lines are not buried.
 * - `pretty`: one readable line per event (pino-pretty) on the terminal.
 */
export const LOG_FORMATS = ['file', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface DaemonLoggerOptions {
  level: string;
  site: string;
  gateway: string;
  format: LogFormat;
  /** `file`: the log file, appended to; at LOG_FILE_MAX_BYTES it is moved to `{file}.1` at start. */
  file?: string;
  /**
   * Writes text to the terminal (the demo's screen, which keeps its status line below it).
   * `pretty` lines and, for `file`, the short warning lines go here; `json` lines too when
   * given, instead of straight to stderr. Default: stderr.
   */
  terminal?: (text: string) => void;
  /** `pretty`: colour the levels (a terminal that is not NO_COLOR). */
  colour?: boolean;
}

export interface DaemonLog {
  logger: Logger;
  /** Where the JSON lines are written: the file for `file`, else `stderr`. */
  writesTo: string;
  /** Set when the `file` could not be opened and the log went to stderr instead: why. */
  fallback?: string;
}

/** A log file larger than this at start is kept as `{file}.1` (replacing the one before), so the demo's log never grows without end. */
export const LOG_FILE_MAX_BYTES = 10 * 1024 * 1024;

/**
 * The daemon's pino logger. Every destination is written synchronously, in this process
 * (no transport, no worker thread: neither works inside the esbuild bundle), so the last
 * lines before an exit are never lost. Credentials never reach a log: the config holds only
 * file paths, and these keys are censored wherever they appear.
 */
export async function createDaemonLogger(options: DaemonLoggerOptions): Promise<DaemonLog> {
  const settings = {
    level: options.level,
    base: { site: options.site, gateway: options.gateway },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['password', 'username', '*.password', '*.username', 'options.password', 'options.username'], censor: '[redacted]' },
  };
  const terminal = options.terminal ?? ((text: string) => process.stderr.write(text));
  if (options.format === 'pretty') {
    // Imported here: only a person at a terminal asks for it, and the service never pays for it.
    const { prettyFactory } = await import('pino-pretty');
    const pretty = prettyFactory({ colorize: options.colour ?? false, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,site,gateway', singleLine: true });
    return { logger: pino(settings, lineSink((line) => terminal(pretty(line)))), writesTo: 'stderr' };
  }
  if (options.format === 'file' && options.file !== undefined) {
    try {
      const fd = openLogFile(options.file);
      return {
        logger: pino(
          settings,
          lineSink((line) => {
            writeSync(fd, line);
            const short = warningLine(line);
            if (short !== null) terminal(short);
          }, () => closeSync(fd)),
        ),
        writesTo: options.file,
      };
    } catch (error) {
      const fallback = `cannot write the log file ${options.file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); logging JSON to stderr instead`;
      return { logger: pino(settings, pino.destination({ fd: 2, sync: true })), writesTo: 'stderr', fallback };
    }
  }
  if (options.terminal !== undefined) return { logger: pino(settings, lineSink(options.terminal)), writesTo: 'stderr' };
  return { logger: pino(settings, pino.destination({ fd: 2, sync: true })), writesTo: 'stderr' };
}

/** A pino destination that hands each JSON line (with its newline) to `write` at once. */
function lineSink(write: (line: string) => void, close?: () => void): DestinationStream & { end(): void } {
  return { write, end: () => close?.() };
}

function openLogFile(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  try {
    if (statSync(path).size > LOG_FILE_MAX_BYTES) renameSync(path, `${path}.1`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return openSync(path, 'a', 0o640);
}

const LEVEL_NAMES: Record<number, string> = { 40: 'WARN', 50: 'ERROR' };

/**
 * For a warning or an error, one short human line (time, level, message, the error if any);
 * null for the rest, and for `fatal`: `run` prints its start-up failure itself, as the one
 * `ser-edge run: …` line every log format shows.
 */
export function warningLine(jsonLine: string): string | null {
  let entry: { level?: unknown; time?: unknown; msg?: unknown; error?: unknown };
  try {
    entry = JSON.parse(jsonLine) as typeof entry;
  } catch {
    return null;
  }
  if (typeof entry.level !== 'number' || entry.level < 40 || entry.level >= 60) return null;
  const time = typeof entry.time === 'string' ? new Date(entry.time).toLocaleTimeString('en-GB', { hour12: false }) : '';
  const error = typeof entry.error === 'string' && !String(entry.msg).includes(entry.error) ? `: ${entry.error}` : '';
  return `${time}  ${LEVEL_NAMES[Math.floor(entry.level / 10) * 10] ?? 'WARN'}  ${String(entry.msg ?? '')}${error}\n`;
}

/** A broker url safe to log: any user:password@ part removed. */
export function loggableUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}
