import { pino, type Logger } from 'pino';

/**
 * JSON logs on stderr (stdout is for the human flag lines), written synchronously so the
 * last lines before an exit are not lost. Credentials never reach a log: the config holds
 * only file paths, and these keys are censored wherever they appear.
 */
export function createDaemonLogger(options: { level: string; site: string; gateway: string }): Logger {
  return pino(
    {
      level: options.level,
      base: { site: options.site, gateway: options.gateway },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', 'username', '*.password', '*.username', 'options.password', 'options.username'], censor: '[redacted]' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
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
