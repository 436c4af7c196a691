import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ChannelState, CommandReply, ModelState, StatusPayload, TelemetryPayload, UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { spawnDaemon, writeSyntheticModel, writeVoiceWav, labSiteConfig } from './helpers/daemon-process.js';
import { assertMatchesPublishedSchema } from './helpers/published-schemas.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto, type Mosquitto, type TestSubscriber } from './helpers/mosquitto.js';

const dir = tempDir('ser-edge-daemon-');
let broker: Mosquitto;
let modelDir: string;
let angryWav: string;
let calmThenAngryWav: string;

before(async () => {
  if (MOSQUITTO_MISSING) return;
  [broker, modelDir] = await Promise.all([startMosquitto(), writeSyntheticModel(dir)]);
  angryWav = await writeVoiceWav(join(dir, 'angry.wav'), [['angry', 10]]);
  calmThenAngryWav = await writeVoiceWav(join(dir, 'calm-angry.wav'), [['calm', 6], ['angry', 8]]);
});

after(async () => {
  await broker?.stop();
});

const siteConfig = (gateway: string, sources: unknown[], overrides: Record<string, unknown> = {}) => labSiteConfig({ dir, brokerUrl: broker.url, modelDir }, gateway, sources, overrides);

const fileChannel = (path: string, id: string, options: { realtime?: boolean; loop?: boolean } = {}) => ({
  type: 'file',
  path,
  realtime: options.realtime ?? false,
  loop: options.loop ?? false,
  channels: [{ id, role: 'customer' }],
});

const skip = MOSQUITTO_MISSING;

test('an angry caller replayed from a file raises a high flag on …/urgency that matches the schema, and the retained state follows', { skip }, async () => {
  const sub: TestSubscriber = await connectSubscriber(broker.url, ['ser/v1/lab/gw-flag/#']);
  // Real time and looping, so the call is still going when the flag is raised: the retained
  // state is the channel's latest (coalesced), and a fast replay could end the call first.
  const daemon = spawnDaemon(join(dir, 'gw-flag.json'), siteConfig('gw-flag', [fileChannel(angryWav, 'desk-1', { realtime: true, loop: true })]));
  try {
    const flag = await sub.waitFor((m) => m.topic === 'ser/v1/lab/gw-flag/channel/desk-1/urgency', 15_000, 'an urgency event');
    assertMatchesPublishedSchema('urgency-event.schema.json', flag.json());
    const event = UrgencyEvent.parse(flag.json());
    assert.equal(event.kind, 'raise');
    assert.equal(event.level, 'high');
    assert.equal(event.emotion, 'angry');
    assert.equal(event.channel, 'desk-1');
    assert.deepEqual(event.model, { name: 'synthetic', version: '0.0.1' });
    assert.ok(Date.parse(event.window.end) >= Date.parse(event.window.start));
    assert.equal(flag.retain, false);

    const state = await sub.waitFor((m) => m.topic.endsWith('/channel/desk-1/state') && ChannelState.parse(m.json()).eventId === event.id, 5000, 'the state of that flag');
    assert.equal(ChannelState.parse(state.json()).level, 'high');
    assert.equal(ChannelState.parse(state.json()).emotion, 'angry', "the retained state carries the flag's emotion, for a subscriber who arrives later");
    assertMatchesPublishedSchema('channel-state.schema.json', state.json());

    const statusMessage = await sub.waitFor((m) => m.topic === 'ser/v1/lab/gw-flag/status', 5000);
    assertMatchesPublishedSchema('status.schema.json', statusMessage.json());
    const status = StatusPayload.parse(statusMessage.json());
    assert.equal(status.state, 'online');
    assert.deepEqual(status.model, { name: 'synthetic', version: '0.0.1' });

    const modelMessage = await sub.waitFor((m) => m.topic === 'ser/v1/lab/gw-flag/model', 5000, 'the model state');
    assertMatchesPublishedSchema('model-state.schema.json', modelMessage.json());
    const modelState = ModelState.parse(modelMessage.json());
    assert.deepEqual({ name: modelState.active?.name, version: modelState.active?.version }, { name: 'synthetic', version: '0.0.1' });

    // The first report may predate the first window; the next ones carry its latencies.
    const telemetryMessage = await sub.waitFor((m) => m.topic === 'ser/v1/lab/gw-flag/telemetry' && m.json<TelemetryPayload>().pipeline.latencyMs.model !== undefined, 5000, 'telemetry with latencies');
    assertMatchesPublishedSchema('telemetry.schema.json', telemetryMessage.json());
    const telemetry = TelemetryPayload.parse(telemetryMessage.json());
    assert.ok(telemetry.pipeline.latencyMs.features && telemetry.pipeline.latencyMs.model, 'per-stage latency is reported');
    assert.equal(telemetry.pipeline.channels['desk-1']?.role, 'customer');
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.end();
  }
});

test('the end of the replayed file ends the call: the flag is cleared and the state goes back to low with no call', { skip }, async () => {
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-end/#']);
  const daemon = spawnDaemon(join(dir, 'gw-end.json'), siteConfig('gw-end', [fileChannel(angryWav, 'desk-1')]));
  try {
    const clear = await sub.waitFor((m) => m.topic.endsWith('/urgency') && m.json<UrgencyEvent>().kind === 'clear', 15_000, 'a clear event');
    const raise = sub.messages.find((m) => m.topic.endsWith('/urgency') && m.json<UrgencyEvent>().kind === 'raise')!;
    assert.equal(clear.json<UrgencyEvent>().callId, raise.json<UrgencyEvent>().callId, 'one call, raised then cleared');
    assert.ok(clear.json<UrgencyEvent>().seq > raise.json<UrgencyEvent>().seq);
    const idle = await sub.waitFor((m) => m.topic.endsWith('/state') && m.json<ChannelState>().callId === null && sub.messages.indexOf(m) > sub.messages.indexOf(clear), 5000, 'the idle state');
    assert.equal(idle.json<ChannelState>().emotion, null, 'no caller, no emotion');
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.end();
  }
});

test('SIGTERM stops capture, publishes the offline status and exits 0 within 5 s', { skip }, async () => {
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-term/status']);
  const daemon = spawnDaemon(join(dir, 'gw-term.json'), siteConfig('gw-term', [fileChannel(angryWav, 'desk-1', { realtime: true, loop: true })]));
  await sub.waitFor((m) => m.json<StatusPayload>().state === 'online', 10_000, 'online status');
  await daemon.waitForLog((l) => l.msg === 'MQTT connected');
  const started = performance.now();
  daemon.child.kill('SIGTERM');
  const { code } = await daemon.exited;
  const seconds = (performance.now() - started) / 1000;
  assert.equal(code, 0);
  assert.ok(seconds < 5, `exited after ${seconds.toFixed(2)} s`);
  const offline = await sub.waitFor((m) => m.json<StatusPayload>().state === 'offline', 2000, 'offline status');
  assert.equal(offline.json<StatusPayload>().reason, 'shutdown');
  assert.equal(offline.retain, false, 'delivered live (the retained copy is checked by late subscribers)');
  await sub.end();
});

test('the broker marks a SIGKILLed gateway offline through its last will', { skip }, async () => {
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-will/status']);
  const daemon = spawnDaemon(join(dir, 'gw-will.json'), siteConfig('gw-will', [fileChannel(angryWav, 'desk-1', { realtime: true, loop: true })]));
  await sub.waitFor((m) => m.json<StatusPayload>().state === 'online', 10_000, 'online status');
  daemon.child.kill('SIGKILL');
  await daemon.exited;
  const will = await sub.waitFor((m) => m.json<StatusPayload>().state === 'offline', 5000, 'the last will');
  assert.equal(StatusPayload.parse(will.json()).reason, 'lost');
  await sub.end();
  const late = await connectSubscriber(broker.url, ['ser/v1/lab/gw-will/status']);
  const retained = await late.waitFor(() => true, 2000, 'the retained status');
  assert.equal(retained.json<StatusPayload>().state, 'offline', 'a late subscriber sees the gateway offline');
  await late.end();
});

test('malformed commands get error replies and the daemon keeps classifying; cmd/call starts a call with the given id', { skip }, async () => {
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-cmd/#']);
  const daemon = spawnDaemon(
    join(dir, 'gw-cmd.json'),
    siteConfig('gw-cmd', [fileChannel(calmThenAngryWav, 'desk-1', { realtime: true, loop: true })], { audio: { blockMs: 100 } }),
  );
  try {
    await sub.waitFor((m) => m.topic.endsWith('/status') && m.json<StatusPayload>().state === 'online', 10_000, 'online status');
    const send = (name: string, payload: string) => sub.client.publishAsync(`ser/v1/lab/gw-cmd/cmd/${name}`, payload, { qos: 1 });
    const reply = (name: string, correlationId?: string) =>
      sub.waitFor(
        (m) => m.topic === `ser/v1/lab/gw-cmd/cmd/${name}/reply` && (correlationId === undefined || m.json<CommandReply>().correlationId === correlationId),
        5000,
        `a reply to ${name}`,
      );

    await send('call', '{ not json');
    assert.equal(CommandReply.parse((await reply('call')).json()).error?.code, 'invalid_json');
    await send('call', JSON.stringify({ schema: 1, correlationId: 'bad-action', action: 'pause', channel: 'desk-1', callId: 'c-1' }));
    const invalid = CommandReply.parse((await reply('call', 'bad-action')).json());
    assert.equal(invalid.ok, false);
    assert.equal(invalid.error?.code, 'invalid_payload');
    assert.match(invalid.error!.message, /action/);
    await send('call', JSON.stringify({ schema: 1, correlationId: 'no-channel', action: 'start', channel: 'desk-9', callId: 'c-1' }));
    assert.equal(CommandReply.parse((await reply('call', 'no-channel')).json()).error?.code, 'unknown_channel');

    await send('call', JSON.stringify({ schema: 1, correlationId: 'start', action: 'start', channel: 'desk-1', callId: 'call-42' }));
    assert.equal(CommandReply.parse((await reply('call', 'start')).json()).ok, true);
    const flag = await sub.waitFor((m) => m.topic.endsWith('/urgency') && m.json<UrgencyEvent>().callId === 'call-42', 20_000, 'a flag in call-42');
    assert.equal(UrgencyEvent.parse(flag.json()).level, 'high', 'still classifying after the bad commands');
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.end();
  }
});

test('a config error names the key and the file, and run exits 2 before touching the broker', { skip }, async () => {
  const file = join(dir, 'broken.json');
  const daemon = spawnDaemon(file, { ...siteConfig('gw-bad', [fileChannel(angryWav, 'desk-1')]), calls: { callSilenceSecs: 10 } });
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  assert.match(daemon.stderr(), /calls\.callSilenceSecs: unknown key/);
  assert.ok(daemon.stderr().includes(file));
});

test('a plain mqtt:// url with mqtt.requireTls is a config error: one line naming the key, exit 2, nothing sent to the broker', { skip, timeout: 20_000 }, async () => {
  const sub = await connectSubscriber(broker.url, ['ser/v1/lab/gw-plain/#']);
  const daemon = spawnDaemon(join(dir, 'gw-plain.json'), siteConfig('gw-plain', [fileChannel(angryWav, 'desk-1')], { mqtt: { requireTls: true } }));
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  const lines = daemon.stderr().trim().split('\n');
  assert.equal(lines.length, 1, daemon.stderr());
  assert.match(lines[0]!, /^ser-edge run: invalid config .*gw-plain\.json: mqtt\.url mqtt:\/\/127\.0\.0\.1:\d+\/? is not TLS but mqtt\.requireTls is set: use an mqtts:\/\//);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(sub.messages.map((m) => m.topic), [], 'the gateway never connected');
  await sub.end();
});

test('a TLS file that does not exist is a config error naming the key and the path, exit 2', { skip, timeout: 20_000 }, async () => {
  const missing = join(dir, 'no-such-ca.crt');
  const daemon = spawnDaemon(join(dir, 'gw-nofile.json'), siteConfig('gw-nofile', [fileChannel(angryWav, 'desk-1')], { mqtt: { tls: { ca: missing } } }));
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  const lines = daemon.stderr().trim().split('\n');
  assert.equal(lines.length, 1, daemon.stderr());
  assert.ok(lines[0]!.includes(`mqtt.tls.ca: cannot read ${missing} (ENOENT)`), lines[0]);
});
