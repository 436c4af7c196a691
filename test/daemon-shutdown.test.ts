import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { ConfigError, loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { StatusPayload } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { spawnDaemon, writeSyntheticModel, writeVoiceWav, type DaemonProcess, labSiteConfig } from './helpers/daemon-process.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto, startStallingProxy, type Mosquitto } from './helpers/mosquitto.js';

const dir = tempDir('ser-edge-daemon-shutdown-');
let broker: Mosquitto;
let modelDir: string;
let angryWav: string;
let slowRecorderDir: string;
const skip = MOSQUITTO_MISSING;

before(async () => {
  if (MOSQUITTO_MISSING) return;
  [broker, modelDir] = await Promise.all([startMosquitto(), writeSyntheticModel(dir)]);
  angryWav = await writeVoiceWav(join(dir, 'angry.wav'), [['angry', 10]]);
  // A recorder that ignores SIGTERM: the microphone source waits its 2 s grace before SIGKILL.
  // It also ends once its parent is gone, so a failed test leaves no orphan writing forever.
  slowRecorderDir = tempDir('ser-edge-slow-recorder-');
  const recorder = join(slowRecorderDir, 'arecord');
  await writeFile(recorder, "#!/bin/sh\ntrap '' TERM\nparent=$PPID\nwhile kill -0 $parent 2>/dev/null; do head -c 3200 /dev/zero; sleep 0.1; done\n");
  await chmod(recorder, 0o755);
});

after(async () => {
  await broker?.stop();
});

const siteConfig = (gateway: string, sources: unknown[], mqtt: Record<string, unknown> = {}) => labSiteConfig({ dir, brokerUrl: broker.url, modelDir }, gateway, sources, { mqtt });

const angryFile = { type: 'file', path: '', realtime: false, loop: true, channels: [{ id: 'desk-1', role: 'customer' }] };

async function exitWithin(daemon: DaemonProcess, ms: number): Promise<{ code: number | null; seconds: number }> {
  const started = performance.now();
  const exit = await Promise.race([daemon.exited, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
  if (exit === null) {
    daemon.child.kill('SIGKILL');
    assert.fail(`the daemon was still running ${ms} ms after SIGTERM; stderr:\n${daemon.stderr().slice(-2000)}`);
  }
  return { code: exit.code, seconds: (performance.now() - started) / 1000 };
}

test('SIGTERM still publishes offline within 5 s when a recorder is slow to die and the broker acknowledges nothing queued', { skip, timeout: 30_000 }, async () => {
  // The daemon reaches the broker through a relay that stops passing anything back once
  // the gateway is up: its flags then wait for PUBACKs that never come, and the flush waits in vain.
  const relay = await startStallingProxy(broker.port);
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-slow/status']);
  const calmThenAngry = await writeVoiceWav(join(dir, 'calm-then-angry.wav'), [['calm', 3], ['angry', 10]]);
  const daemon = spawnDaemon(
    join(dir, 'gw-slow.json'),
    {
      ...siteConfig(
        'gw-slow',
        [
          { type: 'file', path: calmThenAngry, realtime: true, loop: false, channels: [{ id: 'desk-1', role: 'customer' }] },
          { type: 'microphone', recorder: 'arecord', channels: [{ id: 'desk-2', role: 'customer' }] },
        ],
        // The most the config allows: with the recorder's 2 s, more than the 4.5 s hard exit if taken one after the other.
        { url: relay.url, flushTimeoutMs: 3000 },
      ),
      printFlags: true,
    },
    { PATH: `${slowRecorderDir}${delimiter}${process.env.PATH}` },
  );
  try {
    await sub.waitFor((m) => m.json<StatusPayload>().state === 'online', 10_000, 'online status');
    await daemon.waitForLog((l) => l.msg === 'audio source running' && (l.channels as string[]).includes('desk-2'), 10_000, 'the microphone running');
    relay.stall();
    for (const end = Date.now() + 15_000; !/desk-1 .*raised/.test(daemon.stdout()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    assert.match(daemon.stdout(), /desk-1 .*raised/, 'a flag was raised after the broker went quiet');
  } catch (error) {
    daemon.child.kill('SIGKILL');
    await relay.close();
    throw error;
  }
  daemon.child.kill('SIGTERM');
  try {
    const { code, seconds } = await exitWithin(daemon, 6000);
    assert.equal(code, 0);
    assert.ok(seconds < 5, `exited after ${seconds.toFixed(2)} s`);
    const offline = await sub.waitFor((m) => m.json<StatusPayload>().state === 'offline', 2000, 'the offline status');
    assert.equal(offline.json<StatusPayload>().reason, 'shutdown', 'said goodbye itself rather than leaving it to the last will');
    const unflushed = daemon.logs().find((l) => String(l.msg).startsWith('shutdown: some events were not acknowledged in time'));
    assert.ok(unflushed && Number(unflushed.pending) >= 1, 'the flush gave up on events the broker never acknowledged');
    assert.ok(daemon.logs().some((l) => l.msg === 'ser-edge stopped'), 'the orderly stop finished before the hard exit');
  } finally {
    await sub.end();
    await relay.close();
  }
});

test('a SIGTERM during start-up stops the daemon cleanly: exit 0 within 5 s, and the gateway is not left online', { skip, timeout: 30_000 }, async () => {
  const daemon = spawnDaemon(join(dir, 'gw-early.json'), siteConfig('gw-early', [{ ...angryFile, path: angryWav }]));
  // The first line run prints, before the daemon's start() begins: the signal arrives while it runs.
  await daemon.waitForLog((l) => l.msg === 'configuration loaded', 10_000, 'the configuration loaded');
  daemon.child.kill('SIGTERM');
  const { code, seconds } = await exitWithin(daemon, 6000);
  assert.equal(code, 0, daemon.stderr().slice(-2000));
  assert.ok(seconds < 5, `exited after ${seconds.toFixed(2)} s`);
  assert.ok(!daemon.logs().some((l) => l.msg === 'ser-edge could not start'), 'a stop, not a failed start');
  const late = await connectSubscriber(broker.url, ['ser/v1/lab/gw-early/status']);
  await new Promise((r) => setTimeout(r, 500));
  const retained = late.messages.at(-1);
  assert.ok(retained === undefined || retained.json<StatusPayload>().state === 'offline', `the retained status is ${retained?.payload.toString()}`);
  await late.end();
});

test('a flushTimeoutMs above 3000 is a config error: the flush must leave the 4 s shutdown time for the offline status', () => {
  const file = join(dir, 'long-flush.json');
  writeFileSync(file, JSON.stringify({ extends: 'generic-linux', mqtt: { flushTimeoutMs: 3500 } }));
  assert.throws(() => loadDaemonConfig({ file, env: {} }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /mqtt\.flushTimeoutMs: .*3000/);
    return true;
  });
  writeFileSync(file, JSON.stringify({ extends: 'generic-linux', mqtt: { flushTimeoutMs: 3000 } }));
  assert.equal(loadDaemonConfig({ file, env: {} }).config.mqtt.flushTimeoutMs, 3000);
});
