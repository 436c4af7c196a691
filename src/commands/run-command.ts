import { ConfigError, loadDaemonConfig } from '../config/load-daemon-config.js';
import { Daemon } from '../daemon.js';
import { createDaemonLogger } from '../daemon/daemon-logger.js';

export interface RunCommandOptions {
  config?: string;
  printFlags?: boolean;
}

/** The whole shutdown, flush included, stays under systemd's and the issue's 5 s. */
const HARD_EXIT_MS = 4500;

/**
 * `ser-edge run`: loads the config, starts the daemon, and stops it in order on SIGTERM
 * or SIGINT (exit 0). Start-up failures print one line naming what to fix and exit 2
 * (config) or 1 (anything else: model, broker, outbox).
 */
export async function runDaemon(options: RunCommandOptions, version: string): Promise<number> {
  let loaded;
  try {
    loaded = loadDaemonConfig(options.config === undefined ? {} : { file: options.config });
  } catch (error) {
    process.stderr.write(`ser-edge run: ${(error as Error).message}\n`);
    return error instanceof ConfigError ? 2 : 1;
  }
  const config = { ...loaded.config, printFlags: options.printFlags ?? loaded.config.printFlags };
  const logger = createDaemonLogger({ level: config.logLevel, site: config.site, gateway: config.gateway });
  logger.info({ layers: loaded.layers, profile: config.profile, version }, 'configuration loaded');
  const daemon = new Daemon({ config, logger, version });

  let stopping: Promise<number> | undefined;
  const stop = (signal: string): Promise<number> => {
    stopping ??= (async () => {
      logger.info({ signal }, 'stopping');
      const hard = setTimeout(() => {
        logger.error({}, `shutdown took longer than ${HARD_EXIT_MS} ms; exiting anyway (the outbox keeps what was not acknowledged)`);
        process.exit(0);
      }, HARD_EXIT_MS);
      try {
        await daemon.stop();
        return 0;
      } catch (error) {
        logger.error({ error: (error as Error).message }, 'error during shutdown');
        return 0;
      } finally {
        clearTimeout(hard);
      }
    })();
    return stopping;
  };

  const done = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
    process.once('SIGINT', () => void stop('SIGINT').then(resolve));
  });
  try {
    await daemon.start();
  } catch (error) {
    logger.fatal({ error: (error as Error).message }, 'ser-edge could not start');
    process.stderr.write(`ser-edge run: ${(error as Error).message}\n`);
    await daemon.stop(0).catch(() => {});
    return 1;
  }
  if (config.printFlags) {
    process.stdout.write(
      `ser-edge ${version}: ${config.sources.length} source(s), channels ${config.sources.flatMap((s) => s.channels.map((c) => `${c.id} (${c.role})`)).join(', ')}\n` +
        `broker ${daemon.brokerUrl} — watch it with: npx ser-edge watch --broker ${daemon.brokerUrl}\n` +
        'flags appear below as they are raised and cleared; Ctrl-C stops.\n',
    );
  }
  return done;
}
