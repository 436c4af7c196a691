import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { spawnDaemon, writeSyntheticModel, writeVoiceWav, labSiteConfig } from './helpers/daemon-process.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const dir = tempDir('ser-edge-daemon-faults-');
let broker: Mosquitto;
let modelDir: string;
let alternatingWav: string;
const skip = MOSQUITTO_MISSING;

before(async () => {
  if (MOSQUITTO_MISSING) return;
  [broker, modelDir] = await Promise.all([startMosquitto(), writeSyntheticModel(dir)]);
  // Angry then calm, looped as fast as the CPU allows: a raise and a clear every cycle.
  alternatingWav = await writeVoiceWav(join(dir, 'angry-calm.wav'), [['angry', 6], ['calm', 8]]);
});

after(async () => {
  await broker?.stop();
});

const siteConfig = (gateway: string, sources: unknown[]) =>
  labSiteConfig({ dir, brokerUrl: broker.url, modelDir }, gateway, sources, { mqtt: { backoff: { initialMs: 100, maxMs: 500 } }, retry: { initialMs: 200, maxMs: 800 } });

const loopingFile = (path: string, id: string) => ({ type: 'file', path, realtime: false, loop: true, channels: [{ id, role: 'customer' }] });
const storedSeqs = (logs: Record<string, unknown>[]) => logs.filter((l) => l.msg === 'urgency raise' || l.msg === 'urgency clear').map((l) => l.seq as number);

test('a SIGKILL during a broker outage loses no stored event: after a restart they are all delivered and seq continues', { skip }, async () => {
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-crash/channel/+/urgency']);
  const config = siteConfig('gw-crash', [loopingFile(alternatingWav, 'desk-1')]);
  const first = spawnDaemon(join(dir, 'gw-crash.json'), config);
  await sub.waitFor((m) => m.json<UrgencyEvent>().seq >= 2, 20_000, 'two delivered events');

  // The broker goes away; the daemon keeps classifying and storing events it cannot send.
  await broker.stop();
  const deliveredBefore = new Set(sub.messages.map((m) => m.json<UrgencyEvent>().seq));
  await first.waitForLog((l) => (l.msg === 'urgency raise' || l.msg === 'urgency clear') && !deliveredBefore.has(l.seq as number) && (l.seq as number) > Math.max(...deliveredBefore) + 1, 20_000, 'events stored during the outage');
  first.child.kill('SIGKILL');
  await first.exited;
  const storedBeforeCrash = storedSeqs(first.logs());

  await broker.start();
  await new Promise<void>((resolve) => (sub.client.connected ? resolve() : sub.client.once('connect', () => resolve())));
  await sub.client.subscribeAsync('ser/v1/lab/gw-crash/channel/+/urgency', { qos: 1 });
  const second = spawnDaemon(join(dir, 'gw-crash.json'));
  try {
    const highest = Math.max(...storedBeforeCrash);
    await sub.waitFor((m) => m.json<UrgencyEvent>().seq > highest, 20_000, `an event after seq ${highest}`);
    for (const seq of storedBeforeCrash) {
      await sub.waitFor((m) => m.json<UrgencyEvent>().seq === seq, 10_000, `stored event seq ${seq}`);
    }
    for (const m of sub.messages) UrgencyEvent.parse(m.json());
    // The daemon's log line travels through a pipe and can arrive after its MQTT message.
    await second.waitForLog((l) => (l.msg === 'urgency raise' || l.msg === 'urgency clear') && (l.seq as number) > highest, 10_000, `the log of an event after seq ${highest}`);
    const newSeqs = storedSeqs(second.logs());
    assert.ok(newSeqs.length > 0 && Math.min(...newSeqs) > highest, `seq continues after ${highest}: got ${newSeqs.join(',')}`);
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
    await sub.end();
  }
});

test('a channel whose file cannot be read is retried with backoff while another channel keeps publishing, and recovers', { skip }, async () => {
  const missing = join(dir, 'arrives-later.wav');
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-retry/channel/+/urgency']);
  const daemon = spawnDaemon(join(dir, 'gw-retry.json'), siteConfig('gw-retry', [loopingFile(missing, 'desk-broken'), loopingFile(alternatingWav, 'desk-ok')]));
  try {
    const failure = (attempt: number) => (l: Record<string, unknown>) => l.msg?.toString().startsWith('audio source failed') === true && l.attempt === attempt;
    const firstFailure = await daemon.waitForLog(failure(1), 10_000, 'the first failure');
    const secondFailure = await daemon.waitForLog(failure(2), 10_000, 'a retry that fails again');
    assert.deepEqual(firstFailure.channels, ['desk-broken']);
    assert.match(String(firstFailure.error), /arrives-later\.wav/);
    assert.ok((secondFailure.retryInMs as number) > (firstFailure.retryInMs as number), 'the backoff grows');
    await sub.waitFor((m) => m.topic.includes('/channel/desk-ok/'), 15_000, 'flags from the healthy channel');

    copyFileSync(alternatingWav, missing);
    await sub.waitFor((m) => m.topic.includes('/channel/desk-broken/'), 15_000, 'flags from the recovered channel');
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.end();
  }
});
