import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto } from './helpers/mosquitto.js';
import { publishingGateway, sampleFlag } from './helpers/publishing-gateway.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('urgency events across a broker outage', { skip: MOSQUITTO_MISSING }, () => {
  test('every event flagged before, during and after a 10 s broker outage arrives, in seq order, repeated only with the same id', async () => {
    // Persistence keeps the central consumer's session (and its queued QoS 1 messages) across the broker restart,
    // so what is measured is the gateway's delivery, not the consumer's reconnect race.
    const broker = await startMosquitto({ persistence: true });
    const gateway = await publishingGateway(broker.url, 'gw-outage', { backoff: { minMs: 100, maxMs: 1000 }, connectTimeoutMs: 2000 });
    const { outbox, link, publisher } = gateway;
    const sub = await connectSubscriber(broker.url, [`${link.topics.base}/channel/+/urgency`], {
      clientId: `central-${process.pid}`,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    try {
      await gateway.start();

      const flagged: UrgencyEvent[] = [];
      const flagFor = async (ms: number) => {
        for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
          flagged.push(await publisher.flag(sampleFlag(1, { channel: `hs${flagged.length % 3}` })));
        }
      };
      await flagFor(1500);
      await broker.stop();
      await flagFor(10_000);
      assert.ok(outbox.depth > 50, `events flagged during the outage wait in the outbox (depth ${outbox.depth})`);
      await broker.start();
      await flagFor(1500);

      const ids = new Set(flagged.map((e) => e.id));
      for (let i = 0; i < 100 && (outbox.depth > 0 || new Set(sub.messages.map((m) => m.json<UrgencyEvent>().id)).size < ids.size); i++) await sleep(100);

      const received = sub.messages.map((m) => UrgencyEvent.parse(m.json()));
      const firstSeen = new Map<string, UrgencyEvent>();
      for (const e of received) {
        const earlier = firstSeen.get(e.id);
        if (earlier) assert.deepEqual(e, earlier, 'a repeated event is the same event');
        else firstSeen.set(e.id, e);
      }
      const missing = flagged.filter((e) => !firstSeen.has(e.id)).map((e) => e.seq);
      assert.deepEqual(missing, [], `${missing.length} of ${flagged.length} events never arrived`);
      const order = [...firstSeen.values()].map((e) => e.seq);
      assert.deepEqual(order, [...order].sort((a, b) => a - b), 'events first arrive in seq order');
      assert.equal(outbox.depth, 0);
      assert.ok(link.reconnects >= 1);
    } finally {
      await gateway.stop();
      await sub.end();
      await broker.stop();
    }
  });

  test('events flagged while the broker is killed are delivered after it comes back', async () => {
    const broker = await startMosquitto();
    const gateway = await publishingGateway(broker.url, 'gw-crash');
    const { link, publisher } = gateway;
    try {
      await gateway.start();
      await broker.kill();
      const events = [await publisher.flag(sampleFlag(1)), await publisher.flag(sampleFlag(1, { level: 'medium' }))];
      await broker.start();
      // The consumer subscribes before the gateway's backoff has run out, so it sees the replay.
      const sub = await connectSubscriber(broker.url, [`${link.topics.base}/channel/+/urgency`]);
      const got = await Promise.all(events.map((e) => sub.waitFor((m) => m.json<UrgencyEvent>().id === e.id, 5000, `event ${e.seq}`)));
      assert.deepEqual(got.map((m) => m.json<UrgencyEvent>().seq), events.map((e) => e.seq));
      await sub.end();
    } finally {
      await gateway.stop();
      await broker.stop();
    }
  });
});
