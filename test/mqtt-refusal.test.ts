import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto } from './helpers/mosquitto.js';
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
});
