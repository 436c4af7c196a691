import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { scanDataset } from '../../src/datasets/scan-dataset.js';
import { DEFAULT_FEATURE_CONFIG } from '../../src/features/feature-config.js';
import { writeBundle } from '../../src/model/model-bundle.js';
import { extractClipWindows } from '../../src/training/clip-windows.js';
import { buildKnnModel, poolWindows } from '../../src/training/knn-trainer.js';
import { after, before } from 'node:test';
import { tempDir, writeWav } from './audio-fixtures.js';
import { MOSQUITTO_MISSING, startMosquitto, type Mosquitto, type MosquittoOptions } from './mosquitto.js';
import { spawnProgram, type ProgramProcess } from './program-process.js';
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
    // The synthetic bundle is unsigned; test/model-trust.test.ts is where signatures are tested.
    model: { dir: site.modelDir, allowUnsigned: true },
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

export interface DaemonProcess extends ProgramProcess {
  configFile: string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
}

/** `node bin/ser-edge.js run --config <file>` as a child process, as systemd would run it. */
export function spawnDaemon(configFile: string, config?: unknown, env: NodeJS.ProcessEnv = {}): DaemonProcess {
  if (config !== undefined) writeFileSync(configFile, JSON.stringify(config, null, 2));
  const program = spawnProgram(process.execPath, [cli, 'run', '--config', configFile], {
    cwd: process.cwd(),
    env: { ...process.env, SER_EDGE_MQTT_URL: '', SER_EDGE_SITE: '', SER_EDGE_GATEWAY: '', ...env },
  });
  return {
    ...program,
    configFile,
    waitForLog: (match, timeoutMs = 10_000, what = 'a matching log line') => program.waitForLog(match, timeoutMs, what),
  };
}

/** What a daemon test file shares: its folder, a real mosquitto, the synthetic model and a call that turns angry and calm. */
export interface DaemonTestSite extends TestSite {
  broker: Mosquitto;
  /** The call (`call`; default 5 s angry, then 7 s calm: looped fast, a raise and a clear every cycle). */
  voiceWav: string;
}

/**
 * Registers before() and after() hooks that start and stop the site of one test file, and
 * returns it (its fields are set once before() has run) with the `skip` reason to pass to
 * each test when mosquitto is missing.
 */
export function daemonTestSite(
  prefix: string,
  options: MosquittoOptions & { call?: [keyof typeof VOICE_STYLES, number][] } = {},
): { site: DaemonTestSite; skip: string | false } {
  const { call = [['angry', 5], ['calm', 7]], ...mosquitto } = options;
  const site = { dir: tempDir(prefix) } as DaemonTestSite;
  before(async () => {
    if (MOSQUITTO_MISSING) return;
    [site.broker, site.modelDir] = await Promise.all([startMosquitto(mosquitto), writeSyntheticModel(site.dir)]);
    site.brokerUrl = site.broker.url;
    site.voiceWav = await writeVoiceWav(join(site.dir, 'call.wav'), call);
  });
  after(async () => {
    await site.broker?.stop();
  });
  return { site, skip: MOSQUITTO_MISSING };
}
