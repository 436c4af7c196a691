import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { scanDataset } from '../../src/datasets/scan-dataset.js';
import { DEFAULT_FEATURE_CONFIG } from '../../src/features/feature-config.js';
import { writeBundle } from '../../src/model/model-bundle.js';
import { extractClipWindows } from '../../src/training/clip-windows.js';
import { buildKnnModel, poolWindows } from '../../src/training/knn-trainer.js';
import { writeWav } from './audio-fixtures.js';
import { writeSyntheticDataset } from './synthetic-dataset.js';

/** Where a test file's daemons run: its temporary folder, its mosquitto and its model. */
export interface TestSite {
  dir: string;
  brokerUrl: string;
  modelDir: string;
}

/**
 * A site config for one gateway of the test site `lab`, with its own state directory and
 * fast reconnects and telemetry. `mqtt` adds to (or overrides) the mqtt section; every
 * other key of `overrides` replaces that section.
 */
export function labSiteConfig(site: TestSite, gateway: string, sources: unknown[], overrides: { mqtt?: Record<string, unknown> } & Record<string, unknown> = {}): Record<string, unknown> {
  const { mqtt, ...rest } = overrides;
  return {
    extends: 'generic-linux',
    site: 'lab',
    gateway,
    stateDir: join(site.dir, gateway),
    mqtt: { url: site.brokerUrl, backoff: { initialMs: 100, maxMs: 1000 }, ...mqtt },
    model: { dir: site.modelDir },
    telemetry: { intervalSeconds: 1 },
    ...rest,
    sources,
  };
}

const cli = fileURLToPath(new URL('../../../bin/ser-edge.js', import.meta.url));

/**
 * A tiny KNN bundle trained on the synthetic calm/angry/sad voices, so the daemon's
 * flags in tests depend on nothing but this code: angry voice → high, calm → low.
 */
export async function writeSyntheticModel(dir: string): Promise<string> {
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 2, perClass: 3 });
  const items = await extractClipWindows(await scanDataset(csv), { features: DEFAULT_FEATURE_CONFIG });
  const labels = ['neutral', 'sad', 'angry'] as const;
  const model = buildKnnModel(poolWindows(items, [...labels]), { name: 'synthetic', version: '0.0.1', labels: [...labels], features: DEFAULT_FEATURE_CONFIG, k: 3, metric: 'l1' });
  const modelDir = join(dir, 'model');
  await writeBundle(modelDir, model.draft, model.files);
  return modelDir;
}

/** A call excerpt: `pattern` is a list of [style, seconds] played one after the other. */
export async function writeVoiceWav(path: string, pattern: [keyof typeof VOICE_STYLES, number][], seed = 100): Promise<string> {
  const parts = pattern.map(([style, seconds], i) => synthesiseVoice(VOICE_STYLES[style], seconds, 16000, seed + i));
  const voice = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    voice.set(p, at);
    at += p.length;
  }
  await writeWav(path, [voice], 16000, '16');
  return path;
}

export interface DaemonProcess {
  child: ChildProcess;
  configFile: string;
  /** JSON log lines (stderr) parsed so far. */
  logs(): Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `node bin/ser-edge.js run --config <file>` as a child process, as systemd would run it. */
export function spawnDaemon(configFile: string, config?: unknown, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  if (config !== undefined) writeFileSync(configFile, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [cli, 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SER_EDGE_MQTT_URL: '', SER_EDGE_SITE: '', SER_EDGE_GATEWAY: '', ...env },
  });
  let out = '';
  let err = '';
  const parsed: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a plain error line (config errors are printed as text)
      }
    }
    for (const l of listeners) l();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    child,
    configFile,
    logs: () => parsed,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLog(match, timeoutMs = 10_000, what = 'a matching log line') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = parsed.find(match);
          if (found) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; daemon stderr:\n${err.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void exited.then(() => setTimeout(check, 50));
      });
    },
  };
}
