/**
 * The bench as a list of figures, each measured on its own: one that throws (or leaves a
 * promise rejected, or an exception uncaught, while it runs) gets null for its keys and a
 * `{name}_error` saying what went wrong, and the bench goes on with the next.
 */

export interface Figure {
  /** For `--only` and the `{name}_error` key. */
  name: string;
  /** The keys it reports: null when it fails. */
  keys: readonly string[];
  /** One line for the human-readable progress on stderr. */
  describe: string;
  run: () => Promise<Record<string, unknown>>;
}

export interface FigureRun {
  result: Record<string, unknown>;
  /** The figures that failed, with why. */
  failed: { name: string; error: string }[];
}

export async function runFigures(figures: readonly Figure[], options: { only?: readonly string[]; log?: (line: string) => void } = {}): Promise<FigureRun> {
  const log = options.log ?? (() => {});
  const unknown = (options.only ?? []).filter((name) => !figures.some((f) => f.name === name));
  if (unknown.length > 0) throw new Error(`--only ${unknown.join(',')}: no such figure; the figures are ${figures.map((f) => f.name).join(', ')}`);
  const result: Record<string, unknown> = {};
  const failed: FigureRun['failed'] = [];
  // Errors that escape a figure's own promise chain (a stray rejection, a throw in a timer) belong to the figure running.
  let strays: unknown[] = [];
  const stray = (error: unknown) => void strays.push(error);
  process.on('unhandledRejection', stray);
  process.on('uncaughtException', stray);
  try {
    for (const figure of figures) {
      if (options.only && options.only.length > 0 && !options.only.includes(figure.name)) continue;
      log(`${figure.name}: ${figure.describe}…`);
      strays = [];
      const startedAt = performance.now();
      let values: Record<string, unknown> | undefined;
      let error: unknown;
      try {
        values = await figure.run();
      } catch (thrown) {
        error = thrown;
      }
      // A rejection left behind is reported on the next turns of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      if (error === undefined && strays.length > 0) error = strays[0];
      if (error === undefined && values !== undefined) {
        Object.assign(result, values);
        log(`${figure.name}: done in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
        continue;
      }
      const message = describe(error);
      for (const key of figure.keys) result[key] = null;
      result[`${figure.name}_error`] = message;
      failed.push({ name: figure.name, error: message });
      log(`${figure.name}: FAILED: ${message}`);
    }
  } finally {
    process.off('unhandledRejection', stray);
    process.off('uncaughtException', stray);
  }
  return { result, failed };
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Memoises a shared resource, so only the figures that use one that cannot be had fail;
 * `ifMade()` gives it for cleaning up without making it.
 */
export function lazy<T>(make: () => Promise<T>): (() => Promise<T>) & { ifMade(): Promise<T> | undefined } {
  let made: Promise<T> | undefined;
  return Object.assign(() => (made ??= make()), { ifMade: () => made });
}
