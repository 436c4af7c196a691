import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { CommandError, MqttLink, type MqttLinkDeps } from '../src/mqtt/mqtt-link.js';
import { Outbox } from '../src/mqtt/outbox.js';
import { ChannelState, CommandReply, MAX_COMMAND_BYTES, StatusPayload, UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { gatewayTopics } from '../src/mqtt/topics.js';
import { UrgencyPublisher } from '../src/mqtt/urgency-publisher.js';
import type { Logger } from '../src/mqtt/logger.js';
import {
  MOSQUITTO_MISSING,
  OPENSSL_MISSING,
  connectSubscriber,
  freePort,
  generateTestCertificates,
  sampleEvent,
  startMosquitto,
  type Mosquitto,
  type TestSubscriber,
} from './helpers/mosquitto.js';

let counter = 0;
const STATUS_INFO = { version: '0.1.0', model: { name: 'knn-ravdess', version: '1.0.0' }, backend: 'int8-knn' };

function linkDeps(url: string, overrides: Partial<MqttLinkDeps> = {}): MqttLinkDeps {
  const gateway = `gw${++counter}`;
  return {
    url,
    clientId: `ser-edge-test-${process.pid}-${gateway}`,
    site: 'lab',
    gateway,
    backoff: { minMs: 100, maxMs: 1000 },
    statusInfo: () => STATUS_INFO,
    ...overrides,
  };
}

function safeJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

function flagOf(channel = 'hs1') {
  const { schema: _s, id: _i, seq: _q, ts: _t, site: _si, gateway: _g, ...flag } = sampleEvent(1, { channel });
  return flag;
}

describe('MqttLink against mosquitto', { skip: MOSQUITTO_MISSING }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  test('the gateway announces itself online on a retained status that validates against the schema', async () => {
    const link = new MqttLink(linkDeps(broker.url));
    await link.start();
    await link.waitForConnection(5000);
    // A late subscriber must still see the present: the status is retained.
    const sub = await connectSubscriber(broker.url, [link.topics.status]);
    const status = await sub.waitFor((m) => m.topic === link.topics.status, 3000, 'the status');
    assert.equal(status.retain, true);
    const payload = StatusPayload.parse(status.json());
    assert.equal(payload.state, 'online');
    assert.deepEqual(payload.model, STATUS_INFO.model);
    assert.equal(payload.protocol, '5');
    await link.stop();
    await sub.end();
  });

  test('a clean stop leaves the status offline with reason shutdown', async () => {
    const link = new MqttLink(linkDeps(broker.url));
    await link.start();
    await link.waitForConnection(5000);
    await link.stop();
    const sub = await connectSubscriber(broker.url, [link.topics.status]);
    const status = StatusPayload.parse((await sub.waitFor((m) => m.topic === link.topics.status)).json());
    assert.equal(status.state, 'offline');
    assert.equal(status.reason, 'shutdown');
    await sub.end();
  });

  test('the broker marks the gateway offline when its process is killed', async () => {
    const deps = linkDeps(broker.url);
    const sub = await connectSubscriber(broker.url, [gatewayTopics(deps.site, deps.gateway).status]);
    const linkModule = fileURLToPath(new URL('../src/mqtt/mqtt-link.js', import.meta.url));
    const script = `
      const { MqttLink } = await import(${JSON.stringify(linkModule)});
      const link = new MqttLink({ ...${JSON.stringify({ ...deps, statusInfo: undefined })}, statusInfo: () => (${JSON.stringify(STATUS_INFO)}) });
      link.on('connect', () => process.stdout.write('connected\\n'));
      await link.start();
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('connected') && resolve()));
    await sub.waitFor((m) => m.topic.endsWith('/status') && (m.json() as StatusPayload).state === 'online', 3000, 'online');
    child.kill('SIGKILL');
    const offline = await sub.waitFor((m) => m.topic.endsWith('/status') && (m.json() as StatusPayload).state === 'offline', 5000, 'the last will');
    const status = StatusPayload.parse(offline.json());
    assert.equal(status.reason, 'lost');
    await sub.end();
  });

  test('a flag event arrives on its channel urgency topic, validates, and leaves the outbox on PUBACK', async () => {
    const link = new MqttLink(linkDeps(broker.url));
    const outbox = new Outbox({ dir: await mkdtemp(join(tmpdir(), 'ser-edge-link-')), maxBytes: 1 << 20 });
    const publisher = new UrgencyPublisher({ link, outbox });
    const sub = await connectSubscriber(broker.url, [`${link.topics.base}/#`]);
    await outbox.start();
    await publisher.start();
    await link.start();
    await link.waitForConnection(5000);

    const event = await publisher.flag(flagOf('hs2'));
    const got = await sub.waitFor((m) => m.topic === link.topics.urgency('hs2'), 3000, 'the urgency event');
    assert.deepEqual(UrgencyEvent.parse(got.json()), event);
    assert.equal(got.retain, false);
    const state = await sub.waitFor((m) => m.topic === link.topics.state('hs2'), 3000, 'the channel state');
    assert.equal(ChannelState.parse(state.json()).eventId, event.id);
    assert.equal(ChannelState.parse(state.json()).emotion, event.emotion);
    for (let i = 0; i < 50 && outbox.depth > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(outbox.depth, 0);

    await publisher.stop();
    await link.stop();
    await outbox.stop();
    await sub.end();
  });

  describe('commands', () => {
    let link: MqttLink;
    let sub: TestSubscriber;
    const handled: unknown[] = [];
    before(async () => {
      link = new MqttLink(linkDeps(broker.url));
      link.onCommand((command) => {
        handled.push(command);
        if (command.name === 'model.rollback') throw new CommandError('no_previous_model', 'there is no previous model to roll back to');
        return { accepted: command.name };
      });
      await link.start();
      await link.waitForConnection(5000);
      sub = await connectSubscriber(broker.url, [`${link.topics.base}/cmd/+/reply`, 'ser/v1/lab/ops/replies/#']);
    });
    after(async () => {
      await link.stop();
      await sub.end();
    });

    /** Sends a command without MQTT 5 response properties and waits for its reply on …/cmd/{name}/reply. */
    async function command(name: string, payload: string | Buffer, options: { retain?: boolean } = {}): Promise<CommandReply> {
      const before = sub.messages.length;
      await sub.client.publishAsync(link.topics.command(name), payload, { qos: 1, retain: options.retain ?? false });
      const reply = await sub.waitFor((m) => sub.messages.indexOf(m) >= before && m.topic === link.topics.reply(name), 5000, `the reply to ${name}`);
      return CommandReply.parse(reply.json());
    }

    test("a ping with an MQTT 5 response topic under the operators' prefix is answered there with the same correlation data", async () => {
      const correlationData = Buffer.from('req-42');
      await sub.client.publishAsync(link.topics.command('ping'), JSON.stringify({ schema: 1 }), {
        qos: 1,
        properties: { responseTopic: 'ser/v1/lab/ops/replies/alice', correlationData },
      });
      const reply = await sub.waitFor((m) => m.topic === 'ser/v1/lab/ops/replies/alice', 3000, 'the ping reply');
      assert.deepEqual(reply.properties?.correlationData, correlationData);
      const body = CommandReply.parse(reply.json());
      assert.equal(body.ok, true);
      assert.equal((body.result as { pong: boolean }).pong, true);
    });

    test('a command without a response topic is answered on …/cmd/{name}/reply with its correlationId', async () => {
      const reply = await command('call', JSON.stringify({ schema: 1, correlationId: 'c-7', action: 'start', channel: 'hs1', callId: 'call-9' }));
      assert.equal(reply.ok, true);
      assert.equal(reply.correlationId, 'c-7');
      assert.deepEqual(reply.result, { accepted: 'call' });
      assert.deepEqual(handled.at(-1), { name: 'call', payload: { schema: 1, correlationId: 'c-7', action: 'start', channel: 'hs1', callId: 'call-9' } });
    });

    test('a handler that throws a CommandError replies with its code and message', async () => {
      const reply = await command('model.rollback', JSON.stringify({ schema: 1 }));
      assert.equal(reply.ok, false);
      assert.equal(reply.error?.code, 'no_previous_model');
    });

    test('invalid JSON gets an invalid_json error reply', async () => {
      const reply = await command('call', '{"schema": 1, action');
      assert.equal(reply.error?.code, 'invalid_json');
    });

    test('a payload of the wrong shape gets an invalid_payload reply naming the field', async () => {
      const reply = await command('call', JSON.stringify({ schema: 1, action: 'pause', channel: 'hs1', callId: 'c' }));
      assert.equal(reply.error?.code, 'invalid_payload');
      assert.match(reply.error!.message, /action/);
    });

    test('a payload of another schema version gets an unsupported_schema reply', async () => {
      const reply = await command('ping', JSON.stringify({ schema: 2 }));
      assert.equal(reply.error?.code, 'unsupported_schema');
    });

    test('a payload over the command limit (an 8 MiB bundle as base64, and a little) gets a payload_too_large reply without being parsed', async () => {
      const reply = await command('model.install', Buffer.alloc(MAX_COMMAND_BYTES + 1, 0x7b));
      assert.equal(reply.error?.code, 'payload_too_large');
      assert.match(reply.error!.message, new RegExp(`exceeds the ${MAX_COMMAND_BYTES}-byte limit`));
    });

    test('an unknown command gets an unknown_command reply listing the known ones', async () => {
      const reply = await command('self-destruct', JSON.stringify({ schema: 1 }));
      assert.equal(reply.error?.code, 'unknown_command');
      assert.match(reply.error!.message, /model\.install/);
    });

    test('a retained command is refused, so it cannot run again on every reconnect', async () => {
      // Retained messages keep their retain flag only when delivered to a new subscription: a (re)starting gateway.
      const late = new MqttLink(linkDeps(broker.url));
      late.onCommand(() => assert.fail('a retained command reached the handler'));
      const topic = late.topics.command('config.reload');
      await sub.client.subscribeAsync(late.topics.reply('config.reload'), { qos: 1 });
      await sub.client.publishAsync(topic, JSON.stringify({ schema: 1 }), { qos: 1, retain: true });
      await late.start();
      const reply = await sub.waitFor((m) => m.topic === late.topics.reply('config.reload'), 5000, 'the refusal');
      assert.equal(CommandReply.parse(reply.json()).error?.code, 'retained_command');
      await sub.client.publishAsync(topic, '', { qos: 1, retain: true });
      await late.stop();
    });

    test('a response topic outside the reply topics is never published to: the command is not run and the refusal goes to …/cmd/{name}/reply', async () => {
      const other = gatewayTopics('lab', 'another-gateway');
      const forbidden = [
        link.topics.status,
        link.topics.telemetry,
        link.topics.urgency('hs1'),
        link.topics.state('hs1'),
        link.topics.command('call'),
        link.topics.reply('call'),
        other.status,
        other.urgency('hs1'),
        other.reply('ping'),
        other.command('ping'),
        'test/replies/ping',
      ];
      // A consumer that sees everything, as a central server with `#` would.
      const everything = await connectSubscriber(broker.url, ['#']);
      const handledBefore = handled.length;
      try {
        for (const [i, responseTopic] of forbidden.entries()) {
          for (const name of ['ping', 'call']) {
            // The call reply topic is call's own, where its refusals go; it is forbidden to ping only.
            if (name === 'call' && responseTopic === link.topics.reply('call')) continue;
            const correlationData = Buffer.from(`bad-${name}-${i}`);
            const payload = name === 'ping' ? { schema: 1 } : { schema: 1, action: 'start', channel: 'hs1', callId: `c-${i}` };
            await sub.client.publishAsync(link.topics.command(name), JSON.stringify(payload), { qos: 1, properties: { responseTopic, correlationData } });
            const refusal = await sub.waitFor(
              (m) => m.topic === link.topics.reply(name) && Buffer.compare((m.properties?.correlationData as Buffer | undefined) ?? Buffer.alloc(0), correlationData) === 0,
              5000,
              `the refusal of ${name} with response topic ${responseTopic}`,
            );
            const body = CommandReply.parse(refusal.json());
            assert.equal(body.ok, false);
            assert.equal(body.error?.code, 'reply_topic_refused');
            assert.ok(body.error!.message.includes(responseTopic), body.error!.message);
          }
        }
        // The consumer has seen the last refusal too; a stray reply, published before it, would have arrived before it.
        const last = Buffer.from(`bad-call-${forbidden.length - 1}`);
        await everything.waitFor((m) => m.topic === link.topics.reply('call') && Buffer.compare((m.properties?.correlationData as Buffer | undefined) ?? Buffer.alloc(0), last) === 0, 5000, 'the last refusal');
        await new Promise((r) => setTimeout(r, 200));
        // What the test itself sent (the commands) is there too; a reply is what the gateway would have written.
        const replies = everything.messages.filter((m) => CommandReply.safeParse(safeJson(m.payload)).success);
        const strays = replies.filter((m) => forbidden.includes(m.topic) && m.topic !== link.topics.reply('call'));
        assert.deepEqual(strays.map((m) => m.topic), [], 'nothing was published on a refused response topic');
        const onCallReply = replies.filter((m) => m.topic === link.topics.reply('call')).map((m) => m.json<CommandReply>().command);
        assert.ok(!onCallReply.includes('ping'), "a ping's reply never lands on the call reply topic");
        assert.equal(handled.length, handledBefore, 'no call with a refused response topic reached the handler');
      } finally {
        await everything.end();
      }
    });

    test('a retained command published while the gateway is connected is refused on its live delivery (MQTT 5), and clearing it is ignored', async () => {
      const handledBefore = handled.length;
      const topic = link.topics.command('call');
      const before = sub.messages.length;
      await sub.client.publishAsync(topic, JSON.stringify({ schema: 1, correlationId: 'kept', action: 'start', channel: 'hs1', callId: 'retained-1' }), { qos: 1, retain: true });
      const refusal = await sub.waitFor((m) => sub.messages.indexOf(m) >= before && m.topic === link.topics.reply('call'), 5000, 'the refusal');
      assert.equal(CommandReply.parse(refusal.json()).error?.code, 'retained_command');
      // An empty retained publish clears it; the broker passes that on, and it is nobody's command.
      await sub.client.publishAsync(topic, '', { qos: 1, retain: true });
      const ping = await command('ping', JSON.stringify({ schema: 1, correlationId: 'after-clear' }));
      assert.equal(ping.correlationId, 'after-clear');
      const replies = sub.messages.slice(before).filter((m) => m.topic === link.topics.reply('call'));
      assert.equal(replies.length, 1, 'no reply to the clearing publish');
      assert.equal(handled.length, handledBefore, 'the retained call never reached the handler');
    });

    test('a link that connected with neither username nor client certificate knows the broker admits anonymous clients without asking again', async () => {
      assert.equal(await link.anonymousAccess(), 'this-connection');
    });

    test('after every malformed command the link is still connected and answers a ping', async () => {
      assert.equal(link.connected, true);
      const reply = await command('ping', JSON.stringify({ schema: 1 }));
      assert.equal(reply.ok, true);
    });
  });

  test('commands beyond the gateway rate are refused with rate_limited and a retry time, and logged once, not once each', async () => {
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
    const limited = new MqttLink(linkDeps(broker.url, { logger, commands: { rate: { ratePerMinute: 6, burst: 3 } } }));
    await limited.start();
    await limited.waitForConnection(5000);
    const sub = await connectSubscriber(broker.url, [limited.topics.reply('ping')]);
    try {
      for (let i = 0; i < 10; i++) await sub.client.publishAsync(limited.topics.command('ping'), JSON.stringify({ schema: 1, correlationId: `p${i}` }), { qos: 1 });
      await sub.waitFor(() => sub.messages.length >= 10, 5000, 'ten replies');
      const replies = sub.messages.map((m) => CommandReply.parse(m.json()));
      assert.deepEqual(replies.map((r) => r.ok), [true, true, true, false, false, false, false, false, false, false]);
      assert.deepEqual(replies.map((r) => r.correlationId), ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'], 'each refusal names the request it refuses');
      for (const refused of replies.slice(3)) {
        assert.equal(refused.error?.code, 'rate_limited');
        assert.ok((refused.error?.retryAfterSeconds ?? 0) >= 1 && (refused.error?.retryAfterSeconds ?? 0) <= 10, JSON.stringify(refused.error));
      }
      assert.equal(warnings.filter((w) => w.obj.code === 'rate_limited').length, 1, JSON.stringify(warnings));
      // Stopping writes out the count of what the 30 s interval held back.
      await limited.stop();
      assert.deepEqual(warnings.filter((w) => w.obj.code === 'rate_limited').map((w) => w.obj.suppressed), [undefined, 6]);
    } finally {
      await sub.end();
      await limited.stop();
    }
  });

  test('requireTls refuses a non-TLS URL before connecting, saying what to use instead', async () => {
    let connections = 0;
    const server: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const link = new MqttLink(linkDeps(`mqtt://127.0.0.1:${port}`, { requireTls: true }));
    await assert.rejects(link.start(), /not TLS but requireTls is set: use an mqtts:\/\//);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(connections, 0);
    await new Promise((r) => server.close(r));
  });

  test('a missing TLS file is refused at start with the config key and path', async () => {
    const link = new MqttLink(linkDeps('mqtts://127.0.0.1:1', { tls: { caFile: '/nonexistent/ca.crt' } }));
    await assert.rejects(link.start(), /MQTT tls\.caFile \/nonexistent\/ca\.crt: ENOENT/);
  });
});

describe('MqttLink over TLS with client certificates', { skip: MOSQUITTO_MISSING || OPENSSL_MISSING }, () => {
  test('the gateway connects with the CA, its certificate and key, and a TLS consumer sees it online', async () => {
    const certs = generateTestCertificates();
    const broker = await startMosquitto({
      tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, requireCertificate: true },
    });
    try {
      const link = new MqttLink(
        linkDeps(broker.url, { requireTls: true, tls: { caFile: certs.caFile, certFile: certs.clientCertFile, keyFile: certs.clientKeyFile } }),
      );
      await link.start();
      await link.waitForConnection(5000);
      const { readFileSync } = await import('node:fs');
      const sub = await connectSubscriber(broker.url, [link.topics.status], {
        ca: readFileSync(certs.caFile),
        cert: readFileSync(certs.clientCertFile),
        key: readFileSync(certs.clientKeyFile),
      });
      assert.equal(StatusPayload.parse((await sub.waitFor((m) => m.topic === link.topics.status)).json()).state, 'online');
      assert.equal(await link.anonymousAccess(), 'refused', 'without a client certificate the TLS handshake fails');
      await sub.end();
      await link.stop();
    } finally {
      await broker.stop();
    }
  });

  test("requireTls refuses tls.rejectUnauthorized false unless allowUntrusted says so; then the link connects unverified and warns", async () => {
    const certs = generateTestCertificates();
    const broker = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
    try {
      const refused = new MqttLink(linkDeps(broker.url, { requireTls: true, tls: { rejectUnauthorized: false } }));
      await assert.rejects(refused.start(), (err: Error) => err.name === 'LinkConfigError' && /tls\.rejectUnauthorized is false but requireTls is set/.test(err.message) && /allowUntrusted/.test(err.message));
      const warnings: string[] = [];
      const logger: Logger = { debug() {}, info() {}, error() {}, warn: (_obj, msg) => warnings.push(msg) };
      // No CA given: only skipping verification lets it connect to the test CA's broker.
      const link = new MqttLink(linkDeps(broker.url, { requireTls: true, tls: { rejectUnauthorized: false, allowUntrusted: true }, logger }));
      await link.start();
      await link.waitForConnection(5000);
      assert.ok(warnings.some((w) => /without verifying the broker's certificate/.test(w)), warnings.join('\n'));
      await link.stop();
    } finally {
      await broker.stop();
    }
  });

  test('without a client certificate the broker that requires one never sees the gateway online', async () => {
    const certs = generateTestCertificates();
    const broker = await startMosquitto({
      tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, requireCertificate: true },
    });
    try {
      const link = new MqttLink(linkDeps(broker.url, { tls: { caFile: certs.caFile } }));
      await link.start();
      await assert.rejects(link.waitForConnection(1500), /no MQTT connection/);
      await link.stop();
    } finally {
      await broker.stop();
    }
  });
});

describe('MqttLink against an MQTT 3.1.1-only broker', () => {
  let aedes: Aedes;
  let server: Server;
  let url: string;
  const credentials = { username: 'gw-user', password: 's3cret-pa55' };
  before(async () => {
    aedes = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => done(null, username === credentials.username && password?.toString() === credentials.password),
    });
    server = createServer(aedes.handle);
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    url = `mqtt://127.0.0.1:${port}`;
  });
  after(async () => {
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise((r) => server.close(r));
  });

  test('the link falls back to 3.1.1, logs in with credentials from files, and never logs them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ser-edge-cred-'));
    await writeFile(join(dir, 'user'), `${credentials.username}\n`);
    await writeFile(join(dir, 'pass'), `${credentials.password}\n`);
    const lines: string[] = [];
    const record = (obj: object, msg: string) => lines.push(`${msg} ${JSON.stringify(obj)}`);
    const logger: Logger = { debug: record, info: record, warn: record, error: record };
    const link = new MqttLink(linkDeps(url, { usernameFile: join(dir, 'user'), passwordFile: join(dir, 'pass'), logger }));
    await link.start();
    await link.waitForConnection(5000);
    assert.equal(link.protocolVersion, 4);
    assert.ok(lines.some((l) => l.includes('falling back to MQTT 3.1.1')));
    for (const line of lines) assert.ok(!line.includes(credentials.password) && !line.includes(credentials.username), `logged: ${line}`);
    await link.stop();
  });

  test('on 3.1.1 a command is answered on …/cmd/{name}/reply with its correlationId', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ser-edge-cred-'));
    await writeFile(join(dir, 'user'), credentials.username);
    await writeFile(join(dir, 'pass'), credentials.password);
    const link = new MqttLink(linkDeps(url, { usernameFile: join(dir, 'user'), passwordFile: join(dir, 'pass'), protocolVersion: 4 }));
    await link.start();
    await link.waitForConnection(5000);
    const sub = await connectSubscriber(url, [link.topics.reply('ping')], { protocolVersion: 4, ...credentials });
    await sub.client.publishAsync(link.topics.command('ping'), JSON.stringify({ schema: 1, correlationId: 'abc' }), { qos: 1 });
    const reply = CommandReply.parse((await sub.waitFor((m) => m.topic === link.topics.reply('ping'))).json());
    assert.equal(reply.ok, true);
    assert.equal(reply.correlationId, 'abc');
    await sub.end();
    await link.stop();
  });
});
