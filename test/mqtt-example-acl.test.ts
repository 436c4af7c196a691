import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../src/config/package-paths.js';
import { CommandReply, type UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto } from './helpers/mosquitto.js';
import { publishingGateway, sampleFlag } from './helpers/publishing-gateway.js';

const PASSWD_MISSING = MOSQUITTO_MISSING || (spawnSync('mosquitto_passwd', ['-h']).error ? 'mosquitto_passwd is not installed (Debian package mosquitto)' : false);

/** Creates a mosquitto password file with `password-{user}` for each user, and per-user credential files for the gateway. */
async function credentials(dir: string, users: string[]): Promise<string> {
  const file = join(dir, 'passwd');
  for (const [i, user] of users.entries()) {
    const made = spawnSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', file, user, `password-${user}`], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`mosquitto_passwd failed: ${made.stderr}`);
    await writeFile(join(dir, `${user}.username`), `${user}\n`);
    await writeFile(join(dir, `${user}.password`), `password-${user}\n`);
  }
  return file;
}

describe('firmware-config/mosquitto-acl.conf, the example broker ACL', { skip: PASSWD_MISSING }, () => {
  test('only the PBX bridge may send cmd/call and only the operator the other commands; operators get replies in their own inbox, and a reply never lands on a contract topic', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ser-edge-example-acl-'));
    const passwd = await credentials(dir, ['desk-row-a', 'central-queue', 'model-operator', 'pbx-bridge']);
    const acl = join(packageRoot(), 'firmware-config', 'mosquitto-acl.conf');
    const broker = await startMosquitto({ extraConfig: ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${acl}`] });
    const as = (user: string) => ({ username: user, password: `password-${user}` });
    const gateway = await publishingGateway(broker.url, 'desk-row-a', { site: 'lyon-2', usernameFile: join(dir, 'desk-row-a.username'), passwordFile: join(dir, 'desk-row-a.password') });
    const { link } = gateway;
    const handled: string[] = [];
    link.onCommand((command) => {
      handled.push(command.name);
      return { ok: true };
    });
    const inbox = 'ser/v1/lyon-2/ops/replies/model-operator/session-1';
    const central = await connectSubscriber(broker.url, ['ser/v1/#'], as('central-queue'));
    const operator = await connectSubscriber(broker.url, [inbox, 'ser/v1/+/+/cmd/+/reply'], as('model-operator'));
    const pbx = await connectSubscriber(broker.url, ['ser/v1/+/+/cmd/call/reply'], as('pbx-bridge'));
    try {
      await gateway.start();
      const denied = (err: Error & { code?: number }) => err.code === 0x87;
      await assert.rejects(pbx.client.publishAsync(link.topics.command('ping'), JSON.stringify({ schema: 1 }), { qos: 1 }), denied, 'the PBX bridge sends calls only');
      await assert.rejects(operator.client.publishAsync(link.topics.command('call'), JSON.stringify({ schema: 1, action: 'end', channel: 'hs1', callId: 'c-1' }), { qos: 1 }), denied, 'an operator cannot end calls');
      await assert.rejects(central.client.publishAsync(link.topics.command('call'), JSON.stringify({ schema: 1, action: 'end', channel: 'hs1', callId: 'c-1' }), { qos: 1 }), denied, 'a consumer cannot command');
      await pbx.client.publishAsync(link.topics.command('call'), JSON.stringify({ schema: 1, correlationId: 'pbx-1', action: 'start', channel: 'hs1', callId: 'c-1' }), { qos: 1 });
      assert.equal(CommandReply.parse((await pbx.waitFor((m) => m.topic === link.topics.reply('call'), 5000, 'the call reply')).json()).ok, true);

      // An operator's MQTT 5 request with its own inbox as response topic is answered there.
      const correlationData = Buffer.from('ping-1');
      await operator.client.publishAsync(link.topics.command('ping'), JSON.stringify({ schema: 1 }), { qos: 1, properties: { responseTopic: inbox, correlationData } });
      const answer = await operator.waitFor((m) => m.topic === inbox, 5000, 'the ping reply in the inbox');
      assert.equal(CommandReply.parse(answer.json()).ok, true);

      // The gateway's ACL would let it write its own status: the gateway itself refuses to reply there.
      await operator.client.publishAsync(link.topics.command('ping'), JSON.stringify({ schema: 1, correlationId: 'onto-status' }), { qos: 1, properties: { responseTopic: link.topics.status } });
      const refusal = await operator.waitFor((m) => m.topic === link.topics.reply('ping') && m.json<CommandReply>().correlationId === 'onto-status', 5000, 'the refusal');
      assert.equal(CommandReply.parse(refusal.json()).error?.code, 'reply_topic_refused');
      await central.waitFor((m) => m.topic === link.topics.reply('ping') && m.json<CommandReply>().correlationId === 'onto-status', 5000, 'the refusal, seen centrally');
      const onStatus = central.messages.filter((m) => m.topic === link.topics.status).map((m) => m.json<Record<string, unknown>>());
      assert.ok(onStatus.length > 0 && onStatus.every((p) => p.state !== undefined && p.command === undefined), 'only status payloads on …/status');
      assert.deepEqual(handled, ['call']);
    } finally {
      await Promise.all([central.end(), operator.end(), pbx.end()]);
      await gateway.stop();
      await broker.stop();
    }
  });

  test("a broker that takes anonymous clients beside the logins is found out by the gateway's anonymous check, while the ACL still gives them nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ser-edge-example-acl-'));
    const passwd = await credentials(dir, ['desk-row-a']);
    const acl = join(packageRoot(), 'firmware-config', 'mosquitto-acl.conf');
    const broker = await startMosquitto({ extraConfig: ['allow_anonymous true', `password_file ${passwd}`, `acl_file ${acl}`] });
    const gateway = await publishingGateway(broker.url, 'desk-row-a', { site: 'lyon-2', usernameFile: join(dir, 'desk-row-a.username'), passwordFile: join(dir, 'desk-row-a.password') });
    const anonymous = await connectSubscriber(broker.url, []);
    try {
      await gateway.start();
      assert.equal(await gateway.link.anonymousAccess(), 'accepted');
      await assert.rejects(
        anonymous.client.publishAsync(gateway.link.topics.command('call'), JSON.stringify({ schema: 1, action: 'start', channel: 'hs1', callId: 'x' }), { qos: 1 }),
        (err: Error & { code?: number }) => err.code === 0x87,
        'the example ACL grants anonymous clients nothing',
      );
    } finally {
      await anonymous.end();
      await gateway.stop();
      await broker.stop();
    }
  });

  test("lets a gateway publish its part of the contract and central consumers read it, and keeps gateways and integrations in their own lanes", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ser-edge-example-acl-'));
    const passwd = await credentials(dir, ['desk-row-a', 'central-queue', 'model-operator', 'pbx-bridge']);
    const acl = join(packageRoot(), 'firmware-config', 'mosquitto-acl.conf');
    const broker = await startMosquitto({ extraConfig: ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${acl}`] });
    const as = (user: string) => ({ username: user, password: `password-${user}` });
    const gateway = await publishingGateway(broker.url, 'desk-row-a', { site: 'lyon-2', usernameFile: join(dir, 'desk-row-a.username'), passwordFile: join(dir, 'desk-row-a.password') });
    const { outbox, link, publisher } = gateway;
    const central = await connectSubscriber(broker.url, ['ser/v1/lyon-2/#'], as('central-queue'));
    const operator = await connectSubscriber(broker.url, ['ser/v1/+/+/cmd/+/reply'], as('model-operator'));
    const pbx = await connectSubscriber(broker.url, [], as('pbx-bridge'));
    try {
      await gateway.start();
      await central.waitFor((m) => m.topic === link.topics.status, 5000, 'the gateway status');
      const event = await publisher.flag(sampleFlag(1, { channel: 'hs1' }));
      const got = await central.waitFor((m) => m.topic === link.topics.urgency('hs1'), 5000, 'the urgency event');
      assert.equal(got.json<UrgencyEvent>().id, event.id);
      await central.waitFor((m) => m.topic === link.topics.state('hs1'), 5000, 'the channel state');
      for (let i = 0; i < 100 && outbox.depth > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(outbox.depth, 0);
      assert.equal(outbox.rejectedCount, 0, 'the ACL refused nothing the gateway is meant to publish');

      // The model operator pings the gateway and reads the reply the gateway is allowed to write.
      await operator.client.publishAsync(link.topics.command('ping'), JSON.stringify({ schema: 1, correlationId: 'p-1' }), { qos: 1 });
      const reply = await operator.waitFor((m) => m.topic === link.topics.reply('ping'), 5000, 'the ping reply');
      assert.equal(CommandReply.parse(reply.json()).ok, true);

      // Lanes: a gateway cannot speak for another one, and the PBX bridge may send calls, not model commands.
      await assert.rejects(link.publish('ser/v1/lyon-2/desk-row-b/channel/hs1/urgency', { forged: true }, { qos: 1, retain: false }), (err: Error & { code?: number }) => err.code === 0x87);
      await assert.rejects(pbx.client.publishAsync(link.topics.command('model.install'), '{}', { qos: 1 }), (err: Error & { code?: number }) => err.code === 0x87);
      await pbx.client.publishAsync(link.topics.command('call'), JSON.stringify({ schema: 1, action: 'start', channel: 'hs1', callId: 'c-1' }), { qos: 1 });
      const { default: mqtt } = await import('mqtt');
      await assert.rejects(mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 }), /Not authorized|Bad User Name or Password/i, 'nobody gets in without a password');
      assert.equal(await link.anonymousAccess(), 'refused', "the gateway's own anonymous check sees the same");
    } finally {
      await Promise.all([central.end(), operator.end(), pbx.end()]);
      await gateway.stop();
      await broker.stop();
    }
  });
});
