import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { findOnPath } from '../src/audio/microphone-source.js';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { packageRoot } from '../src/config/package-paths.js';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import { exportGruBundle } from '../src/model/gru/gru-export.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { selectTfBackend, tf } from '../src/model/tf-backend.js';
import { BUNDLE_PROGRAM, buildBundle } from '../scripts/bundle.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';
import { connectSubscriber } from './helpers/mosquitto.js';
import { bareMachineEnv, spawnProgram, type ProgramProcess } from './helpers/program-process.js';
import { writeStandInArecord } from './helpers/stand-in-arecord.js';

const run = promisify(execFile);
const opusenc = await findOnPath('opusenc');
const root = packageRoot();
const version = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const unbundledCli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));

// The "gateway": a folder under the system's temporary directory holding nothing but a copy
// of the bundle (and what a test puts there), run with a bare environment. Where Node's
// permission model can confine a command, it may read only this folder, so a bundle that
// reached for node_modules (this checkout's, or anywhere up the tree) would fail.
const dir = tempDir('ser-edge-bundle-');
const gateway = join(dir, 'gateway');
const app = join(gateway, 'ser-edge');
const program = join(app, BUNDLE_PROGRAM);
const env = bareMachineEnv(gateway);
const PERMISSION_FLAG = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission';
const confined = [PERMISSION_FLAG, `--allow-fs-read=${gateway}/`];

before(async () => {
  const built = await buildBundle({ outDir: join(dir, 'build') });
  await cp(built.dir, app, { recursive: true });
});

async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(folder.length + 1))
    .sort();
}

async function assertSameFiles(copy: string, original: string): Promise<void> {
  const files = await filesUnder(original);
  assert.deepEqual(await filesUnder(copy), files, `${copy} lists the files of ${original}`);
  for (const f of files) assert.ok((await readFile(join(copy, f))).equals(await readFile(join(original, f))), `${f} is a byte-for-byte copy`);
}

async function stopWithSigterm(daemon: ProgramProcess): Promise<void> {
  daemon.child.kill('SIGTERM');
  const { code } = await daemon.exited;
  assert.equal(code, 0, `the daemon exits 0 on SIGTERM; stderr:\n${daemon.stderr().slice(-2000)}`);
  assert.ok(daemon.logs().some((l) => l.msg === 'ser-edge stopped'));
}

test('the bundle is one program file beside the tfjs wasm binaries, the model, the schemas, the device profiles and the installer', async () => {
  const installer = join(root, 'scripts', 'install-gateway.sh');
  const carriesInstaller = existsSync(installer);
  const expected = ['THIRD_PARTY_LICENSES.txt', 'firmware-config', 'models', 'package.json', 'schemas', BUNDLE_PROGRAM, 'wasm', ...(carriesInstaller ? ['install-gateway.sh'] : [])];
  assert.deepEqual((await readdir(app)).sort(), expected.sort());
  if (carriesInstaller) {
    assert.ok((await readFile(join(app, 'install-gateway.sh'))).equals(await readFile(installer)), 'the installer is a copy of scripts/install-gateway.sh');
    assert.ok(((await stat(join(app, 'install-gateway.sh'))).mode & 0o111) !== 0, 'install-gateway.sh is executable');
  }
  const javascript = (await filesUnder(app)).filter((f) => /\.[cm]?js$/.test(f));
  assert.deepEqual(javascript, [BUNDLE_PROGRAM], 'the program is a single JavaScript file');
  assert.match(await readFile(program, 'utf8').then((t) => t.slice(0, 30)), /^#!\/usr\/bin\/env node\n/);
  assert.ok(((await stat(program)).mode & 0o111) !== 0, 'ser-edge.mjs is executable');
  assert.deepEqual(await readdir(join(app, 'wasm')).then((f) => f.sort()), ['tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm.wasm']);
  await assertSameFiles(join(app, 'models', 'default'), join(root, 'models', 'default'));
  await assertSameFiles(join(app, 'schemas'), join(root, 'schemas'));
  await assertSameFiles(join(app, 'firmware-config'), join(root, 'firmware-config'));
  const manifest = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(manifest['version'], version);
  assert.equal(manifest['dependencies'], undefined);
  const licences = await readFile(join(app, 'THIRD_PARTY_LICENSES.txt'), 'utf8');
  for (const name of ['@tensorflow/tfjs-core', 'aedes', 'mqtt', 'pino', 'zod']) assert.match(licences, new RegExp(`^  ${name.replace('/', '\\/')} \\d`, 'm'), `${name}'s licence is listed`);
});

test('--version and --help answer from a copy that may read nothing outside its folder', async () => {
  const { stdout: printed } = await run(process.execPath, [...confined, program, '--version'], { cwd: gateway, env });
  assert.equal(printed.trim(), version);
  const { stdout: help } = await run(process.execPath, [...confined, program, '--help'], { cwd: gateway, env });
  assert.match(help, /^Usage: ser-edge/);
  for (const command of ['classify', 'run', 'watch']) assert.match(help, new RegExp(`^  ${command}\\b`, 'm'));
});

test('classify --json from the confined copy gives exactly what the unbundled program gives', async () => {
  const wav = await writeWav(join(gateway, 'angry.wav'), [synthesiseVoice(VOICE_STYLES.angry, 5, 16000, 3)], 16000);
  const [bundled, unbundled] = await Promise.all([
    run(process.execPath, [...confined, program, 'classify', '--json', wav], { cwd: gateway, env }),
    run(process.execPath, [unbundledCli, 'classify', '--json', wav]),
  ]);
  const result = JSON.parse(bundled.stdout) as { emotion: string | null; windows: unknown[] };
  assert.ok(result.windows.length > 0 && result.emotion !== null, 'the shipped model classified the windows');
  assert.deepEqual(result, JSON.parse(unbundled.stdout));
});

test('an Ogg Opus recording classifies from the confined copy as it does unbundled', { skip: opusenc === undefined && 'opusenc absent (Debian: apt-get install opus-tools): skipping the bundled Opus decode' }, async () => {
  const wav = await writeWav(join(dir, 'sad.wav'), [synthesiseVoice(VOICE_STYLES.sad, 5, 16000, 4)], 16000);
  const opus = join(gateway, 'sad.opus');
  await run(opusenc!, ['--quiet', wav, opus]);
  const [bundled, unbundled] = await Promise.all([
    run(process.execPath, [...confined, program, 'classify', '--json', opus], { cwd: gateway, env }),
    run(process.execPath, [unbundledCli, 'classify', '--json', opus]),
  ]);
  const result = JSON.parse(bundled.stdout) as { durationSeconds: number; windows: unknown[] };
  assert.equal(result.durationSeconds, 5);
  assert.ok(result.windows.length > 0, 'the decoded speech reached the model');
  assert.deepEqual(result, JSON.parse(unbundled.stdout));
});

test('run with the built-in demo, from a copy that may read only its folder and write only its state directory, starts its embedded broker, goes online, classifies windows and stops cleanly on SIGTERM', async () => {
  // Created here, as the installer creates /var/lib/ser-edge before the service starts:
  // Node 20 grants a path that does not exist yet as a file, not as a folder to write in.
  const stateDir = join(gateway, 'state-demo');
  await mkdir(stateDir);
  const daemon = spawnProgram(
    process.execPath,
    [
      ...confined,
      `--allow-fs-write=${stateDir}/`,
      // The one file outside the folder that run must be allowed to read: the health probe's
      // Jetson check (/etc/nv_tegra_release), whose existsSync throws ERR_ACCESS_DENIED under
      // Node 20's permission model instead of answering false. It holds no JavaScript. The rest
      // of /proc, /sys and /etc stays denied: telemetry reports what systeminformation can
      // still read, and the lock goes without the process start time from /proc (see the
      // assertion on ERR_ACCESS_DENIED below: none of that is logged as a failure).
      '--allow-fs-read=/etc/nv_tegra_release',
      // Sockets (the embedded broker's listen, the MQTT link) are outside Node 20's permission
      // model; a Node with network permissions (--allow-net) gets them granted, nothing more.
      ...(process.allowedNodeEnvironmentFlags.has('--allow-net') ? ['--allow-net'] : []),
      program,
      'run',
    ],
    // A telemetry report every second: its window count is how the daemon says it classified.
    { cwd: gateway, env: bareMachineEnv(gateway, { SER_EDGE_STATE_DIR: stateDir, SER_EDGE_TELEMETRY_INTERVAL: '1' }) },
  );
  try {
    const model = await daemon.waitForLog((l) => l.msg === 'model loaded', 20_000, 'the model to load');
    assert.equal(model.dir, join(app, 'models', 'default'), 'the model is the one beside the bundle');
    // The project's own int8 kernels are inlined in ser-edge.mjs and run as WebAssembly.
    assert.match(String(model.backend), /wasm-simd/);
    const broker = await daemon.waitForLog((l) => typeof l.url === 'string' && /embedded broker/.test(String(l.msg)), 20_000, 'the embedded broker');
    await daemon.waitForLog((l) => l.msg === 'ser-edge running', 20_000, '"ser-edge running"');
    // aedes speaks MQTT 3.1.1 only.
    const central = await connectSubscriber(String(broker.url), ['ser/v1/+/+/status', 'ser/v1/+/+/telemetry'], { protocolVersion: 4 });
    try {
      await central.waitFor((m) => m.topic.endsWith('/status') && m.json<{ state: string }>().state === 'online', 20_000, 'the retained online status');
      // The demo voice speaks from the start; its first window is classified once it holds ~3 s of speech.
      const telemetry = await central.waitFor(
        (m) => m.topic.endsWith('/telemetry') && m.json<{ pipeline: { windows: number } }>().pipeline.windows >= 1,
        30_000,
        'telemetry counting a classified window',
      );
      const pipeline = telemetry.json<{ pipeline: { backend: string; channels: Record<string, { state: string }> } }>().pipeline;
      assert.match(pipeline.backend, /wasm-simd/);
      assert.equal(pipeline.channels['demo']?.state, 'running');
    } finally {
      await central.end();
    }
    assert.ok(existsSync(join(stateDir, 'outbox')), 'the outbox is in the state directory it may write');
  } finally {
    await stopWithSigterm(daemon);
  }
  assert.doesNotMatch(daemon.stderr(), /ERR_ACCESS_DENIED|Access to this API has been restricted/, 'nothing the daemon did was refused by the permission model');
});

test('a microphone source captures through its recorder from the bundle', async () => {
  // A stand-in arecord on PATH: a headset whose caller speaks, then an open, silent line.
  const arecord = await writeStandInArecord(join(gateway, 'fake-bin'), { channels: [synthesiseVoice(VOICE_STYLES.calm, 4, 16000, 5)], afterwards: 'hold' });
  const config = join(gateway, 'microphone.json');
  await writeFile(
    config,
    JSON.stringify({
      extends: 'generic-linux',
      site: 'lab',
      gateway: 'gw-mic',
      stateDir: join(gateway, 'state-mic'),
      mqtt: { embedded: { port: 0 } },
      sources: [{ type: 'microphone', recorder: 'arecord', device: arecord.device, channels: [{ index: 0, id: 'headset-1', role: 'customer' }] }],
    }),
  );
  const daemon = spawnProgram(process.execPath, [program, 'run', '--config', config], { cwd: gateway, env: bareMachineEnv(gateway, { PATH: arecord.pathWith(env.PATH) }) });
  try {
    const call = await daemon.waitForLog((l) => l.msg === 'call start' && l.channel === 'headset-1', 20_000, 'the caller heard on the microphone channel');
    assert.equal(call.reason, 'speech');
    assert.ok(!daemon.logs().some((l) => /recorder/i.test(String(l.error ?? ''))), 'no recorder error was logged');
  } finally {
    await stopWithSigterm(daemon);
  }
});

test("a GRU on the TensorFlow.js runtime starts the wasm backend from the bundle's wasm/ folder", async () => {
  await selectTfBackend(['wasm', 'cpu']);
  const dim = 6;
  const steps = 8;
  const model = tf.sequential();
  model.add(tf.layers.gru({ units: 4, recurrentActivation: 'sigmoid', activation: 'tanh', inputShape: [steps, dim] }));
  model.add(tf.layers.dense({ units: 2, activation: 'softmax' }));
  const { draft, files } = exportGruBundle(model, {
    name: 'tiny-gru',
    version: '0.0.1',
    labels: ['neutral', 'angry'],
    features: { ...DEFAULT_FEATURE_CONFIG, features: ['mfcc'], mfccCount: dim },
    normaliser: { mean: Array(dim).fill(0), std: Array(dim).fill(1) },
    steps,
    metrics: {},
    selfTestInputs: [Float32Array.from({ length: steps * dim }, (_, i) => Math.sin(i))],
  });
  model.dispose();
  const modelDir = join(gateway, 'tiny-gru');
  await writeBundle(modelDir, draft, files);
  const config = join(gateway, 'tfjs.json');
  await writeFile(
    config,
    JSON.stringify({
      extends: 'generic-linux',
      site: 'lab',
      gateway: 'gw-tfjs',
      stateDir: join(gateway, 'state-tfjs'),
      mqtt: { embedded: { port: 0 } },
      // wasm alone: if the bundle could not start it, the daemon would refuse to start.
      model: { dir: modelDir, runtime: 'tfjs', backends: ['wasm'], threads: 1, allowUnsigned: true },
      sources: [{ type: 'demo', channels: [{ index: 0, id: 'demo', role: 'customer' }] }],
    }),
  );
  const daemon = spawnProgram(process.execPath, [program, 'run', '--config', config], { cwd: gateway, env });
  try {
    const loaded = await daemon.waitForLog((l) => l.msg === 'model loaded', 20_000, 'the GRU to load');
    assert.equal(loaded.backend, 'gru-tfjs-wasm');
    await daemon.waitForLog((l) => l.msg === 'ser-edge running', 20_000, '"ser-edge running"');
  } finally {
    await stopWithSigterm(daemon);
  }
});
