import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MqttLink } from '../src/mqtt/mqtt-link.js';
import { Outbox } from '../src/mqtt/outbox.js';
import { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { UrgencyPublisher } from '../src/mqtt/urgency-publisher.js';
import { MOSQUITTO_MISSING, connectSubscriber, sampleEvent, startMosquitto } from './helpers/mosquitto.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('urgency events across a broker outage', { skip: MOSQUITTO_MISSING }, () => {
  test('every event flagged before, during and after a 10 s broker outage arrives, in seq order, repeated only with the same id', async () => {
    // Persistence keeps the central consumer's session (and its queued QoS 1 messages) across the broker restart,
    // so what is measured is the gateway's delivery, not the consumer's reconnect race.
    const broker = await startMosquitto({ persistence: true });
    const outbox = new Outbox({ dir: await mkdtemp(join(tmpdir(), 'ser-edge-outage-')), maxBytes: 1 << 20 });
    const link = new MqttLink({
      url: broker.url,
      clientId: `ser-edge-outage-${process.pid}`,
      site: 'lab',
      gateway: 'gw-outage',
      backoff: { minMs: 100, maxMs: 1000 },
      connectTimeoutMs: 2000,
      statusInfo: () => ({ version: '0.1.0', model: null, backend: null }),
    });
    const publisher = new UrgencyPublisher({ link, outbox });
    const sub = await connectSubscriber(broker.url, [`${link.topics.base}/channel/+/urgency`], {
      clientId: `central-${process.pid}`,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    try {
      await outbox.start();
      await publisher.start();
      await link.start();
      await link.waitForConnection(5000);

      const flagged: UrgencyEvent[] = [];
      const flagFor = async (ms: number) => {
        for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
          const { schema: _s, id: _i, seq: _q, ts: _t, site: _si, gateway: _g, ...flag } = sampleEvent(1, { channel: `hs${flagged.length % 3}` });
          flagged.push(await publisher.flag(flag));
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
      await publisher.stop();
      await link.stop();
      await outbox.stop();
      await sub.end();
      await broker.stop();
    }
  });

  test('events flagged while the broker is killed are delivered after it comes back', async () => {
    const broker = await startMosquitto();
    const outbox = new Outbox({ dir: await mkdtemp(join(tmpdir(), 'ser-edge-outage-')), maxBytes: 1 << 20 });
    const link = new MqttLink({
      url: broker.url,
      clientId: `ser-edge-crash-${process.pid}`,
      site: 'lab',
      gateway: 'gw-crash',
      backoff: { minMs: 100, maxMs: 500 },
      statusInfo: () => ({ version: '0.1.0', model: null, backend: null }),
    });
    const publisher = new UrgencyPublisher({ link, outbox });
    try {
      await outbox.start();
      await publisher.start();
      await link.start();
      await link.waitForConnection(5000);
      await broker.kill();
      const { schema: _s, id: _i, seq: _q, ts: _t, site: _si, gateway: _g, ...flag } = sampleEvent(1);
      const events = [await publisher.flag(flag), await publisher.flag({ ...flag, level: 'medium' })];
      await broker.start();
      // The consumer subscribes before the gateway's backoff has run out, so it sees the replay.
      const sub = await connectSubscriber(broker.url, [`${link.topics.base}/channel/+/urgency`]);
      const got = await Promise.all(events.map((e) => sub.waitFor((m) => m.json<UrgencyEvent>().id === e.id, 5000, `event ${e.seq}`)));
      assert.deepEqual(got.map((m) => m.json<UrgencyEvent>().seq), events.map((e) => e.seq));
      await sub.end();
    } finally {
      await publisher.stop();
      await link.stop();
      await outbox.stop();
      await broker.stop();
    }
  });
});
