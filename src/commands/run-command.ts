import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, sep } from 'node:path';
import { ConfigError, loadDaemonConfig, type ResolvedConfig } from '../config/load-daemon-config.js';
import { Daemon } from '../daemon.js';
import { createDaemonLogger, loggableUrl, type LogFormat } from '../daemon/daemon-logger.js';
import { DemoTerminal, type DemoStatus } from '../daemon/demo-terminal.js';
import { ModelTrustError } from '../daemon/model-trust.js';
import { StateDirectoryError, StateDirectoryLockedError } from '../daemon/state-dir-lock.js';
import { LinkConfigError, redactUrl } from '../mqtt/mqtt-link.js';
import { commandToRun } from './program-invocation.js';

export interface RunCommandOptions {
  config?: string;
  printFlags?: boolean;
  /** Where the log goes; by default `file` for the demo on a terminal, else `json` on stderr. */
  log?: LogFormat;
}

/** What `run` knows about where it prints; process.stdout/stderr by default, given by tests. */
export interface RunTerminal {
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
}

/** The log file of a `--log file` run, in the state directory beside the outbox. */
export const LOG_FILE_NAME = 'ser-edge.log';

/**
 * How `run` presents itself. JSON on stderr is what systemd's journal, log shippers and the
 * tests read, so it stays the default whenever there is a config or stderr is not a
 * terminal. Only the demo (no --config) on a terminal sends its JSON to a file by default,
 * so that its few flag lines are what the person who just typed `ser-edge run` sees.
 * The status line needs the flag lines on a terminal.
 */
export function terminalView(options: Pick<RunCommandOptions, 'config' | 'log'>, printFlags: boolean, terminal: RunTerminal): { log: LogFormat; statusLine: boolean } {
  return {
    log: options.log ?? (options.config === undefined && terminal.stderrIsTTY ? 'file' : 'json'),
    statusLine: printFlags && terminal.stdoutIsTTY,
  };
}

/**
 * The backstop behind the daemon's own 4 s shutdown deadline (SHUTDOWN_DEADLINE_MS): the
 * process is gone within systemd's and the README's 5 s even if a step hangs, or a step
 * the daemon gave up on (a recorder ignoring SIGTERM) keeps the event loop alive.
 */
const HARD_EXIT_MS = 4500;

/**
 * `ser-edge run`: loads the config, starts the daemon, and stops it in order on SIGTERM
 * or SIGINT (exit 0). Start-up failures print one line naming what to fix and exit 2
 * (config, a state directory that is locked or cannot be written, a model bundle whose
 * signature does not let it run) or 1 (anything else: model, broker, outbox).
 */
export async function runDaemon(options: RunCommandOptions, version: string, terminal: RunTerminal = { stdoutIsTTY: Boolean(process.stdout.isTTY), stderrIsTTY: Boolean(process.stderr.isTTY) }): Promise<number> {
  let loaded;
  try {
    loaded = loadDaemonConfig(options.config === undefined ? {} : { file: options.config });
  } catch (error) {
    process.stderr.write(`ser-edge run: ${(error as Error).message}\n`);
    return error instanceof ConfigError ? 2 : 1;
  }
  const config = { ...loaded.config, printFlags: options.printFlags ?? loaded.config.printFlags };
  const problem = brokerSettingsProblem(config);
  if (problem !== null) {
    process.stderr.write(`ser-edge run: invalid config${options.config === undefined ? '' : ` ${options.config}`}: ${problem}\n`);
    return 2;
  }
  const view = terminalView(options, config.printFlags, terminal);
  let daemon: Daemon | undefined;
  let lastFlag: DemoStatus['lastFlag'] = null;
  const screen = new DemoTerminal({
    out: process.stdout,
    err: process.stderr,
    statusLine: view.statusLine,
    read: () => ({
      channels: [...(daemon?.metrics.channels.values() ?? [])],
      windows: daemon?.metrics.windows ?? 0,
      lastFlag,
      broker: { url: daemon?.brokerUrl ? loggableUrl(daemon.brokerUrl) : '-', connected: daemon?.brokerConnected ?? false },
    }),
  });
  const logFile = join(config.stateDir, LOG_FILE_NAME);
  const log = await createDaemonLogger({
    level: config.logLevel,
    site: config.site,
    gateway: config.gateway,
    format: view.log,
    file: logFile,
    colour: terminal.stderrIsTTY && !process.env.NO_COLOR,
    // Through the screen when it keeps a status line, so the two never share a line.
    ...(view.statusLine ? { terminal: (text: string) => screen.print(text, 'err') } : {}),
  });
  const { logger } = log;
  // Said once, first: where to look when something goes wrong.
  const say = (line: string) => (config.printFlags ? process.stdout : process.stderr).write(`${line}\n`);
  if (log.fallback) say(`ser-edge run: ${log.fallback}`);
  else if (log.writesTo !== 'stderr') say(`ser-edge ${version} starting; logs go to ${tilde(log.writesTo)} (JSON lines; warnings are shown here too; --log pretty shows every line here)`);
  daemon = new Daemon({ config, logger, version, printLine: (line) => screen.print(line) });
  daemon.bus.on('urgency', (change) => (lastFlag = { channel: change.channel, kind: change.kind, level: change.level, atMs: Date.now() }));

  let stopping: Promise<number> | undefined;
  // A signal during start-up lands here too: daemon.stop() makes the start give up at its
  // next step, waits for it, and then stops whatever had started.
  const stop = (signal: string): Promise<number> => {
    stopping ??= (async () => {
      logger.info({ signal }, 'stopping');
      let stopped = false;
      // Not cleared once stopped, only unref'd: nothing left behind may outlive it.
      setTimeout(() => {
        if (stopped) logger.warn({}, `something the shutdown gave up on was still running after ${HARD_EXIT_MS} ms; exiting`);
        else logger.error({}, `shutdown took longer than ${HARD_EXIT_MS} ms; exiting anyway (the outbox keeps what was not acknowledged)`);
        screen.stop();
        process.exit(0);
      }, HARD_EXIT_MS).unref();
      try {
        await daemon.stop();
      } catch (error) {
        logger.error({ error: (error as Error).message }, 'error during shutdown');
      } finally {
        stopped = true;
        screen.stop();
      }
      return 0;
    })();
    return stopping;
  };

  // Listening before the first line is logged: from then on a SIGTERM is an orderly stop, never Node's default kill.
  const done = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
    process.once('SIGINT', () => void stop('SIGINT').then(resolve));
  });
  logger.info({ layers: loaded.layers, profile: config.profile, version }, 'configuration loaded');
  try {
    await daemon.start();
  } catch (error) {
    // Stopped by a signal before it was up: an orderly stop, exit 0.
    if (stopping !== undefined) return stopping;
    logger.fatal({ error: (error as Error).message }, 'ser-edge could not start');
    process.stderr.write(`ser-edge run: ${(error as Error).message}\n`);
    await daemon.stop({ flushMs: 0 }).catch(() => {});
    // What the link refuses before connecting (e.g. a certificate without its key) is config
    // too, and so is a state directory that is taken or cannot be written, and a model its
    // signature does not let run (retrying would refuse it again).
    return error instanceof LinkConfigError || error instanceof StateDirectoryLockedError || error instanceof StateDirectoryError || error instanceof ModelTrustError ? 2 : 1;
  }
  if (config.printFlags && stopping === undefined) {
    const channels = config.sources.flatMap((s) => s.channels.map((c) => `${c.id} (${c.role})`));
    const url = loggableUrl(daemon.brokerUrl);
    process.stdout.write(
      `ser-edge ${version}: ${config.sources.length} source${config.sources.length === 1 ? '' : 's'}, channel${channels.length === 1 ? '' : 's'} ${channels.join(', ')}\n` +
        `broker ${url}${config.mqtt.url === undefined ? ' (embedded, loopback only)' : ''}; watch it with: ${commandToRun()} watch --broker ${url}\n` +
        'flags appear below as they are raised and cleared; Ctrl-C stops.\n',
    );
    screen.start();
  }
  return done;
}

/** A path under the home directory as ~/…, as a person would type it. */
function tilde(path: string): string {
  const home = homedir();
  return home.length > 1 && path.startsWith(home + sep) ? `~${path.slice(home.length)}` : path;
}

/**
 * Broker settings that validate as JSON but cannot work: TLS required of a plain URL, or a
 * TLS or credential file that is not there. These are config errors (exit 2), found before
 * anything starts, named by their config key. Only paths are named, never file contents.
 */
export function brokerSettingsProblem(config: Pick<ResolvedConfig, 'mqtt'>): string | null {
  const { mqtt } = config;
  if (mqtt.requireTls) {
    if (mqtt.url === undefined) {
      return 'mqtt.requireTls is set but mqtt.url is not: the embedded broker is plain MQTT on loopback; set mqtt.url to an mqtts:// broker, or turn mqtt.requireTls off';
    }
    if (!/^(mqtts|wss):/i.test(mqtt.url)) {
      return `mqtt.url ${redactUrl(mqtt.url)} is not TLS but mqtt.requireTls is set: use an mqtts:// (or wss://) broker URL, or turn mqtt.requireTls off for a development broker`;
    }
  }
  const files: [key: string, path: string | undefined][] = [
    ['mqtt.tls.ca', mqtt.tls?.ca],
    ['mqtt.tls.cert', mqtt.tls?.cert],
    ['mqtt.tls.key', mqtt.tls?.key],
    ['mqtt.usernameFile', mqtt.usernameFile],
    ['mqtt.passwordFile', mqtt.passwordFile],
  ];
  for (const [key, path] of files) {
    if (path === undefined) continue;
    try {
      accessSync(path, constants.R_OK);
      if (!statSync(path).isFile()) return `${key}: ${path} is not a file; set ${key} to the file's path`;
    } catch (error) {
      return `${key}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); check the path and its permissions`;
    }
  }
  if (Boolean(mqtt.tls?.cert) !== Boolean(mqtt.tls?.key)) {
    return `${mqtt.tls?.cert ? 'mqtt.tls.key' : 'mqtt.tls.cert'} is missing: mqtt.tls.cert and mqtt.tls.key go together (a client certificate and its key), set both or neither`;
  }
  return null;
}
