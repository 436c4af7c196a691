import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CommandReply, UrgencyEvent, type StatusPayload } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { spawnDaemon, writeSyntheticModel, writeVoiceWav, labSiteConfig, type DaemonProcess } from './helpers/daemon-process.js';
import {
  MOSQUITTO_MISSING,
  OPENSSL_MISSING,
  connectSubscriber,
  generateTestCertificates,
  startMosquitto,
  type Mosquitto,
  type TestSubscriber,
} from './helpers/mosquitto.js';

/**
 * The command path of `ser-edge run`, seen from outside as an attacker or a broken
 * integration would meet it: through a real mosquitto that admits anyone, as the test
 * broker does.
 */

const dir = tempDir('ser-edge-daemon-commands-');
let broker: Mosquitto;
let modelDir: string;
let angryWav: string;
const skip = MOSQUITTO_MISSING;

before(async () => {
  if (MOSQUITTO_MISSING) return;
  [broker, modelDir] = await Promise.all([startMosquitto(), writeSyntheticModel(dir)]);
  angryWav = await writeVoiceWav(join(dir, 'angry.wav'), [['angry', 10]]);
});

after(async () => {
  await broker?.stop();
});

const siteConfig = (gateway: string, sources: unknown[], overrides: Record<string, unknown> = {}) => labSiteConfig({ dir, brokerUrl: broker.url, modelDir }, gateway, sources, overrides);
const liveChannel = (id: string) => ({ type: 'file', path: angryWav, realtime: true, loop: true, channels: [{ id, role: 'customer' }] });

async function stopDaemon(daemon: DaemonProcess): Promise<void> {
  daemon.child.kill('SIGTERM');
  await daemon.exited;
}

const online = (m: { topic: string; json<T>(): T }) => m.topic.endsWith('/status') && m.json<StatusPayload>().state === 'online';

test('a cmd/call flood on one channel is rate-limited: the flood gets rate_limited replies, and both that channel and its twin keep classifying and flag', { skip, timeout: 60_000 }, async () => {
  const base = 'ser/v1/lab/gw-flood';
  const sub = await connectSubscriber(broker.url, [`${base}/#`]);
  const daemon = spawnDaemon(join(dir, 'gw-flood.json'), siteConfig('gw-flood', [liveChannel('flooded'), liveChannel('twin')]));
  try {
    await sub.waitFor(online, 15_000, 'online status');
    // A start every 75 ms for 12 s, each for a new call: without a limit the flooded channel would never finish a window.
    const floodEnds = Date.now() + 12_000;
    let sent = 0;
    while (Date.now() < floodEnds) {
      await sub.client.publishAsync(`${base}/cmd/call`, JSON.stringify({ schema: 1, correlationId: `flood-${sent}`, action: 'start', channel: 'flooded', callId: `flood-${sent}` }), { qos: 1 });
      sent++;
      await new Promise((r) => setTimeout(r, 75));
    }
    const lastFlood = await sub.waitFor((m) => m.topic === `${base}/cmd/call/reply` && m.json<CommandReply>().correlationId === `flood-${sent - 1}`, 10_000, 'the reply to the last start');
    const floodOver = sub.messages.indexOf(lastFlood);

    const replies = sub.messages.filter((m) => m.topic === `${base}/cmd/call/reply`).map((m) => CommandReply.parse(m.json()));
    assert.equal(replies.length, sent, 'every start got a reply');
    const taken = replies.filter((r) => r.ok);
    const limited = replies.filter((r) => r.error?.code === 'rate_limited');
    // The default bucket: 6 at once, then one every 10 s.
    assert.ok(taken.length >= 6 && taken.length <= 8, `starts taken: ${taken.length} of ${sent}`);
    assert.equal(taken.length + limited.length, sent, 'the rest were refused as rate_limited');
    assert.ok(limited.every((r) => (r.error?.retryAfterSeconds ?? 0) >= 1), 'each refusal says when to retry');

    const raises = (channel: string) =>
      sub.messages.filter((m) => m.topic === `${base}/channel/${channel}/urgency` && m.json<UrgencyEvent>().kind === 'raise' && m.json<UrgencyEvent>().level === 'high');
    await sub.waitFor((m) => raises('twin').includes(m as never), 20_000, 'a high flag on the twin channel');
    const floodedRaises = raises('flooded');
    assert.ok(floodedRaises.length > 0, 'the flooded channel raised a high flag');
    assert.ok(sub.messages.indexOf(floodedRaises[0]!) < floodOver, 'the flooded channel flagged while the flood was still going on');
    const flaggedCall = UrgencyEvent.parse(floodedRaises[0]!.json()).callId;
    assert.ok(taken.some((r) => (r.result as { callId?: string }).callId === flaggedCall), `the flag is in a call whose start was taken (${flaggedCall})`);

    // One warning line for the whole flood (shorter than the 30 s throttle), not one per refused start.
    const warnings = daemon.logs().filter((l) => l.msg === 'command refused' && l.code === 'rate_limited');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!.subject, 'flooded');
  } finally {
    await stopDaemon(daemon);
    await sub.end();
  }
});

describe('a running daemon and what it will not do', { skip }, () => {
  const base = 'ser/v1/lab/gw-guard';
  let daemon: DaemonProcess;
  let everything: TestSubscriber;
  before(async () => {
    everything = await connectSubscriber(broker.url, ['#']);
    daemon = spawnDaemon(join(dir, 'gw-guard.json'), siteConfig('gw-guard', [liveChannel('desk-1')]));
    await everything.waitFor((m) => m.topic === `${base}/status` && online(m), 15_000, 'online status');
  });
  after(async () => {
    await stopDaemon(daemon);
    await everything.end();
  });

  test('a retained cmd/call published while it is connected is refused (MQTT 5 retain-as-published), not run', async () => {
    await everything.client.publishAsync(`${base}/cmd/call`, JSON.stringify({ schema: 1, correlationId: 'kept', action: 'start', channel: 'desk-1', callId: 'retained-call' }), { qos: 1, retain: true });
    const reply = await everything.waitFor((m) => m.topic === `${base}/cmd/call/reply` && m.json<CommandReply>().correlationId === 'kept', 5000, 'the refusal');
    assert.equal(CommandReply.parse(reply.json()).error?.code, 'retained_command');
    await everything.client.publishAsync(`${base}/cmd/call`, '', { qos: 1, retain: true });
    // A later command is answered, so the retained one had its chance to be (wrongly) run before it.
    await everything.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ schema: 1, correlationId: 'after' }), { qos: 1 });
    await everything.waitFor((m) => m.topic === `${base}/cmd/ping/reply` && m.json<CommandReply>().correlationId === 'after', 5000, 'the ping reply');
    assert.ok(!daemon.logs().some((l) => l.msg === 'call start' && l.callId === 'retained-call'), 'no call was started by it');
    assert.ok(!everything.messages.some((m) => m.topic.startsWith(`${base}/channel/`) && m.payload.includes('retained-call')), 'no channel ever named that call');
  });

  test("a response topic on its own status or urgency topic, or another gateway's, gets nothing there: the refusal goes to …/cmd/ping/reply", async () => {
    const targets = [`${base}/status`, `${base}/channel/desk-1/urgency`, 'ser/v1/lab/gw-other/status', 'ser/v1/lab/gw-other/cmd/ping/reply'];
    const before = everything.messages.length;
    for (const [i, responseTopic] of targets.entries()) {
      await everything.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ schema: 1, correlationId: `aim-${i}` }), { qos: 1, properties: { responseTopic } });
      const refusal = await everything.waitFor((m) => m.topic === `${base}/cmd/ping/reply` && m.json<CommandReply>().correlationId === `aim-${i}`, 5000, `the refusal for ${responseTopic}`);
      assert.equal(CommandReply.parse(refusal.json()).error?.code, 'reply_topic_refused');
    }
    await new Promise((r) => setTimeout(r, 200));
    // The channel's own urgency events are there too (it is an angry caller); a reply would be a CommandReply.
    const landed = everything.messages.slice(before).filter((m) => targets.includes(m.topic) && m.payload.includes('"command"'));
    assert.deepEqual(landed.map((m) => m.topic), [], 'no reply was published on any of them');
    const warnings = daemon.logs().filter((l) => l.msg === 'command refused' && l.code === 'reply_topic_refused');
    assert.equal(warnings.length, 1, 'logged once for the lot, the rest counted');
  });

  test('it warns at start that the broker admits anonymous clients, since commands are on', () => {
    const warning = daemon.logs().find((l) => l.level === 40 && typeof l.msg === 'string' && /admits anonymous clients/.test(l.msg));
    assert.ok(warning, daemon.stderr().slice(-2000));
    assert.match(warning.msg as string, /ser\/v1\/lab\/gw-guard\/cmd\/#/);
  });
});

test('with commands.enabled false the daemon takes no commands and has nothing to warn about', { skip, timeout: 30_000 }, async () => {
  const base = 'ser/v1/lab/gw-nocmd';
  const sub = await connectSubscriber(broker.url, [`${base}/#`]);
  const daemon = spawnDaemon(join(dir, 'gw-nocmd.json'), siteConfig('gw-nocmd', [liveChannel('desk-1')], { commands: { enabled: false } }));
  try {
    await sub.waitFor(online, 15_000, 'online status');
    await sub.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ schema: 1 }), { qos: 1 });
    // Telemetry comes every second: two reports are time enough for a reply that never comes.
    const reports = () => sub.messages.filter((m) => m.topic === `${base}/telemetry`).length;
    const seen = reports();
    await sub.waitFor(() => reports() >= seen + 2, 10_000, 'two telemetry reports');
    assert.ok(!sub.messages.some((m) => m.topic.startsWith(`${base}/cmd/ping/reply`)), 'no reply');
    assert.ok(!daemon.logs().some((l) => typeof l.msg === 'string' && /anonymous/.test(l.msg)));
  } finally {
    await stopDaemon(daemon);
    await sub.end();
  }
});

test('a channel id used twice is a config error at load: exit 2, one line naming the key and the file, nothing sent', { skip, timeout: 20_000 }, async () => {
  const file = join(dir, 'gw-dup.json');
  const daemon = spawnDaemon(file, siteConfig('gw-dup', [liveChannel('desk-1'), liveChannel('desk-1')]));
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  const lines = daemon.stderr().trim().split('\n');
  assert.equal(lines.length, 1, daemon.stderr());
  assert.ok(lines[0]!.includes(`${file}: sources[1].channels[0].id: channel id "desk-1" is already used by sources[0].channels[0]`), lines[0]);
});

describe('TLS without verifying the broker', { skip: MOSQUITTO_MISSING || OPENSSL_MISSING }, () => {
  let tlsBroker: Mosquitto;
  before(async () => {
    const certs = generateTestCertificates();
    tlsBroker = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
  });
  after(async () => {
    await tlsBroker?.stop();
  });
  const tlsConfig = (gateway: string, tls: Record<string, unknown>) =>
    labSiteConfig({ dir, brokerUrl: tlsBroker.url, modelDir }, gateway, [liveChannel('desk-1')], { mqtt: { requireTls: true, tls } });

  test('requireTls with tls.rejectUnauthorized false is refused: exit 2 naming the key and the file, before connecting', { timeout: 20_000 }, async () => {
    const file = join(dir, 'gw-untrusted.json');
    const daemon = spawnDaemon(file, tlsConfig('gw-untrusted', { rejectUnauthorized: false }));
    const { code } = await daemon.exited;
    assert.equal(code, 2);
    const lines = daemon.stderr().trim().split('\n');
    assert.equal(lines.length, 1, daemon.stderr());
    assert.ok(lines[0]!.includes(`${file}: mqtt.tls.rejectUnauthorized: false with mqtt.requireTls`), lines[0]);
    assert.match(lines[0]!, /mqtt\.tls\.allowUntrusted/);
  });

  test('with tls.allowUntrusted it connects, and warns at every start', { timeout: 40_000 }, async () => {
    const file = join(dir, 'gw-allowed.json');
    const config = tlsConfig('gw-allowed', { rejectUnauthorized: false, allowUntrusted: true });
    for (let start = 1; start <= 2; start++) {
      const daemon = spawnDaemon(file, config);
      try {
        await daemon.waitForLog((l) => l.msg === 'MQTT connected', 15_000, `connected (start ${start})`);
        const warning = daemon.logs().find((l) => l.level === 40 && typeof l.msg === 'string' && /without verifying the broker's certificate/.test(l.msg));
        assert.ok(warning, `start ${start}: ${daemon.stderr().slice(-2000)}`);
        assert.equal(warning.allowUntrusted, true);
      } finally {
        await stopDaemon(daemon);
      }
    }
  });
});
