/**
 * Start-up of `ser-edge` as a gateway's service manager starts it: a fresh process, from
 * spawn to the first classified window, and `--help` from spawn to exit. Measured on the
 * self-contained bundle (dist/bundle/ser-edge.mjs, `npm run bundle`) and on the unbundled
 * program (bin/ser-edge.js → dist/src), the same way, so the two can be set side by side.
 *
 * The first window comes from a file source replayed as fast as it decodes
 * (`realtime: false`): a live source would add the ~3 s of speech a window holds, which is
 * the same for both programs and says nothing about start-up. The window is "classified"
 * when the daemon's own counter says so: `ser_edge_windows_total` ≥ 1 on its loopback
 * Prometheus endpoint, polled every POLL_MS from the moment the endpoint logs its address.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { packageRoot } from '../../src/config/package-paths.js';
import { benchConfig, DaemonUnderTest } from './daemon-under-test.js';
import { wavS16le } from './replay-speech.js';
import { quantile, round1 } from './stats.js';

/** The bundle as `npm run bundle` writes it (scripts/bundle.ts, BUNDLE_PROGRAM; not imported, as that would load esbuild). */
export const BUNDLED_PROGRAM = join(packageRoot(), 'dist', 'bundle', 'ser-edge.mjs');
/** The launcher of a checkout, which runs the TypeScript build in dist/src with node_modules. */
export const UNBUNDLED_PROGRAM = join(packageRoot(), 'bin', 'ser-edge.js');

/** How often the endpoint is asked: the figure's resolution, at the cost of a scrape per poll in the daemon. */
const POLL_MS = 5;
/** Seconds of (synthetic, continuous) speech in the recording: one 3 s window and a little more. */
const RECORDING_SECONDS = 5;

export interface ColdStartRun {
  /** Spawn → the endpoint's first answer that counts a classified window. */
  first_window_ms: number;
  /** Spawn → the daemon's log lines on the way (their own time stamps): where the time went. */
  configuration_loaded_ms: number;
  model_loaded_ms: number;
  running_ms: number;
}

export interface ColdStartFigures {
  /** Medians over the runs. */
  first_window_ms: number;
  help_ms: number;
  parts: { configuration_loaded_ms: number; model_loaded_ms: number; running_ms: number };
  runs: ColdStartRun[];
  help_runs_ms: number[];
}

/** A clear failure when a program is not built; the bench does not build the bundle itself. */
function requireProgram(program: string): void {
  if (!existsSync(program)) throw new Error(`${program} is missing: ${program === BUNDLED_PROGRAM ? 'run `npm run bundle` first' : 'run `npm run build` first'}`);
}

/**
 * When the bundle was built, and whether a source file changed since: `npm run bench`
 * compiles the sources but does not rebuild the bundle, so its figures may be of older code.
 */
export function bundleBuild(program = BUNDLED_PROGRAM): { built: string; sources_newer_than_bundle: boolean } {
  requireProgram(program);
  const built = statSync(program).mtimeMs;
  const root = packageRoot();
  let newest = statSync(join(root, 'package.json')).mtimeMs;
  for (const entry of readdirSync(join(root, 'src'), { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return { built: new Date(built).toISOString(), sources_newer_than_bundle: newest > built };
}

/** Bytes of the program file and of its whole folder (what is copied to a gateway). */
export function bundleSize(program = BUNDLED_PROGRAM): { programBytes: number; folderBytes: number; files: number } {
  const dir = join(program, '..');
  let folderBytes = 0;
  let files = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    folderBytes += statSync(join(entry.parentPath, entry.name)).size;
    files++;
  }
  return { programBytes: statSync(program).size, folderBytes, files };
}

/** The recording the cold starts classify, at the model's rate. */
export function writeColdStartRecording(dir: string, sampleRate: number): string {
  const file = join(dir, 'caller.wav');
  writeFileSync(file, wavS16le([synthesiseVoice(VOICE_STYLES.calm, RECORDING_SECONDS, sampleRate, 7)], sampleRate));
  return file;
}

/**
 * `runs` cold starts of `program run` and `runs` of `program --help`, after one of each
 * that is not counted (it fills the page cache with the program and its modules).
 * Each start gets a new state directory, as on a first boot.
 */
export async function benchColdStart(options: { program: string; dir: string; recording: string; brokerUrl: string; runs: number }): Promise<ColdStartFigures> {
  requireProgram(options.program);
  const runs: ColdStartRun[] = [];
  const helpRuns: number[] = [];
  for (let i = 0; i <= options.runs; i++) {
    const run = await firstWindow({ ...options, dir: join(options.dir, `start-${i}`) });
    const help = await helpTime(options.program);
    if (i === 0) continue;
    runs.push(run);
    helpRuns.push(help);
  }
  const median = (values: number[]) => round1(quantile(values, 0.5)!);
  return {
    first_window_ms: median(runs.map((r) => r.first_window_ms)),
    help_ms: median(helpRuns),
    parts: {
      configuration_loaded_ms: median(runs.map((r) => r.configuration_loaded_ms)),
      model_loaded_ms: median(runs.map((r) => r.model_loaded_ms)),
      running_ms: median(runs.map((r) => r.running_ms)),
    },
    runs,
    help_runs_ms: helpRuns,
  };
}

async function firstWindow(options: { program: string; dir: string; recording: string; brokerUrl: string }): Promise<ColdStartRun> {
  mkdirSync(options.dir, { recursive: true });
  const config = benchConfig({
    gateway: 'cold-start',
    stateDir: join(options.dir, 'state'),
    brokerUrl: options.brokerUrl,
    sources: [{ type: 'file', path: options.recording, realtime: false, channels: [{ index: 0, id: 'caller', role: 'customer' }] }],
    telemetrySeconds: 3600,
    prometheus: true,
  });
  const spawnedAtMs = Date.now();
  const started = performance.now();
  const daemon = new DaemonUnderTest({ dir: options.dir, config, program: options.program });
  let run: ColdStartRun;
  let exit: Awaited<ReturnType<DaemonUnderTest['stop']>>;
  try {
    const at = (msg: string) => daemon.logs().find((l) => l.msg === msg);
    await daemon.waitUntil(() => at('Prometheus endpoint listening (loopback only)') !== undefined, 30_000, 'the Prometheus endpoint', 1);
    const url = String(at('Prometheus endpoint listening (loopback only)')!.url);
    let firstWindowMs: number | undefined;
    const until = performance.now() + 30_000;
    while (firstWindowMs === undefined) {
      daemon.assertRunning('waiting for the first classified window');
      if (performance.now() > until) throw new Error(`no window classified within 30 s of start; the daemon's log ends:\n${daemon.logTail()}`);
      if ((await windowsClassified(daemon, url)) >= 1) firstWindowMs = performance.now() - started;
      else await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const since = (msg: string) => {
      // The daemon's log stamps its lines with ISO times (daemon-logger.ts).
      const time = Date.parse(String(at(msg)?.time));
      if (!Number.isFinite(time)) throw new Error(`the daemon logged no "${msg}" line with a time; its log ends:\n${daemon.logTail()}`);
      return time - spawnedAtMs;
    };
    run = {
      first_window_ms: round1(firstWindowMs),
      configuration_loaded_ms: since('configuration loaded'),
      model_loaded_ms: since('model loaded'),
      running_ms: since('ser-edge running'),
    };
  } finally {
    exit = await daemon.stop();
  }
  if (exit.code !== 0) throw new Error(`the daemon exited with code ${exit.code} (signal ${exit.signal}) on SIGTERM; its log ends:\n${daemon.logTail()}`);
  return run;
}

/** `ser_edge_windows_total` from the daemon's endpoint; 0 while it does not answer. */
async function windowsClassified(daemon: DaemonUnderTest, url: string): Promise<number> {
  try {
    return (await daemon.scrape(url)).values.get('ser_edge_windows_total') ?? 0;
  } catch {
    return 0;
  }
}

/** Spawn → exit of `node program --help`, ms; its output must be the usage text. */
function helpTime(program: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [program, '--help'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = performance.now() - started;
      if (code !== 0 || !out.startsWith('Usage: ser-edge')) reject(new Error(`${program} --help exited ${code} printing ${JSON.stringify(out.slice(0, 200))}`));
      else resolve(round1(ms));
    });
  });
}
