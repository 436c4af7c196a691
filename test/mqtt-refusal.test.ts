import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto, startRefusingProxy } from './helpers/mosquitto.js';
import { publishingGateway, sampleFlag } from './helpers/publishing-gateway.js';

describe('urgency events the broker refuses', { skip: MOSQUITTO_MISSING }, () => {
  test("a channel the ACL forgot is kept in rejected.jsonl and does not hold back the other channels' flags", async () => {
    const acl = join(await mkdtemp(join(tmpdir(), 'ser-edge-acl-')), 'acl');
    // Anonymous clients (no `user` line): the gateway may write its status and channel "open" only.
    await writeFile(acl, ['topic read ser/#', 'topic readwrite ser/v1/lab/gw-acl/status', 'topic readwrite ser/v1/lab/gw-acl/channel/open/#', ''].join('\n'));
    const broker = await startMosquitto({ extraConfig: [`acl_file ${acl}`] });
    const gateway = await publishingGateway(broker.url, 'gw-acl', {}, { retryDelayMs: 100 });
    const { outbox, link, publisher } = gateway;
    const sub = await connectSubscriber(broker.url, [`${link.topics.base}/channel/+/urgency`, `${link.topics.base}/channel/+/state`]);
    try {
      await gateway.start();
      const refused = await publisher.flag(sampleFlag(1, { channel: 'closed' }));
      const after = await publisher.flag(sampleFlag(1, { channel: 'open' }));
      const got = await sub.waitFor((m) => m.json<UrgencyEvent>().id === after.id, 5000, 'the open channel event');
      assert.equal(got.topic, link.topics.urgency('open'));
      for (let i = 0; i < 100 && outbox.depth > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(outbox.depth, 0, 'neither event is left waiting');
      assert.equal(outbox.rejectedCount, 1);
      const kept = JSON.parse((await readFile(outbox.rejectedPath, 'utf8')).trim()) as { reason: string; event: UrgencyEvent };
      assert.equal(kept.event.id, refused.id);
      assert.match(kept.reason, /^0x87 not authorised/);
      assert.ok(!sub.messages.some((m) => m.topic.endsWith('/urgency') && m.json<UrgencyEvent>().id === refused.id), 'the broker never delivered the refused event');
      const state = await sub.waitFor((m) => m.topic === link.topics.state('open'), 5000, 'the open channel state');
      assert.equal(state.json<{ eventId: string }>().eventId, after.id);
      assert.ok(!sub.messages.some((m) => m.topic === link.topics.state('closed')));
    } finally {
      await sub.end();
      await gateway.stop();
      await broker.stop();
    }
  });

  test('an event refused for a reason that may pass (0x97 quota exceeded) is held, retried after a doubling pause rather than on every new flag, and delivered once the broker takes it', async () => {
    const broker = await startMosquitto();
    const relay = await startRefusingProxy(broker.port, /\/urgency$/, 0x97);
    const gateway = await publishingGateway(relay.url, 'gw-quota', {}, { retryDelayMs: 300 });
    const { outbox, link, publisher } = gateway;
    const sub = await connectSubscriber(broker.url, [`${link.topics.base}/channel/+/urgency`]);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      await gateway.start();
      const events = [await publisher.flag(sampleFlag(1))];
      for (let i = 0; i < 50 && relay.refused.length === 0; i++) await sleep(10);
      // Flags raised while the first is held do not make the publisher try again at once.
      events.push(await publisher.flag(sampleFlag(1, { channel: 'hs2' })), await publisher.flag(sampleFlag(1, { channel: 'hs3' })));
      await sleep(100);
      assert.equal(relay.refused.length, 1, 'one attempt until the pause is over');
      for (let i = 0; i < 300 && relay.refused.length < 7; i++) await sleep(10);
      // Attempts: [1] at t0, [1,2,3] after ≥ 300 ms, [1,2,3] after ≥ 600 ms more.
      const attempts = [relay.refused[0]!.at, relay.refused[1]!.at, relay.refused[4]!.at];
      assert.ok(attempts[1]! - attempts[0]! >= 250, `second attempt after ${(attempts[1]! - attempts[0]!).toFixed(0)} ms`);
      assert.ok(attempts[2]! - attempts[1]! >= 550, `third attempt after ${(attempts[2]! - attempts[1]!).toFixed(0)} ms: the pause doubles`);
      assert.equal(outbox.depth, 3, 'every refused event is still in the outbox');
      relay.accept();
      const got = await Promise.all(events.map((e) => sub.waitFor((m) => m.json<UrgencyEvent>().id === e.id, 10_000, `event ${e.seq}`)));
      assert.deepEqual(got.map((m) => m.json<UrgencyEvent>().seq), events.map((e) => e.seq));
      for (let i = 0; i < 100 && outbox.depth > 0; i++) await sleep(20);
      assert.equal(outbox.depth, 0);
      assert.equal(outbox.rejectedCount, 0, 'a refusal that may pass never moves an event to the rejected file');
    } finally {
      await sub.end();
      await gateway.stop();
      await relay.close();
      await broker.stop();
    }
  });
});
