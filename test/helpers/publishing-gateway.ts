import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MqttLink, type MqttLinkDeps } from '../../src/mqtt/mqtt-link.js';
import { Outbox } from '../../src/mqtt/outbox.js';
import type { UrgencyEvent } from '../../src/mqtt/payload-schemas.js';
import { UrgencyPublisher, type UrgencyFlag, type UrgencyPublisherDeps } from '../../src/mqtt/urgency-publisher.js';
import { sampleEvent } from './mosquitto.js';

/** The daemon's delivery half for the MQTT tests: an outbox in a temp dir, the link, the publisher. */
export interface PublishingGateway {
  outbox: Outbox;
  link: MqttLink;
  publisher: UrgencyPublisher;
  /** Starts outbox, publisher and link, in the daemon's order, and waits for the connection. */
  start(): Promise<void>;
  /** Stops them in the daemon's order: publisher, link, outbox. */
  stop(): Promise<void>;
}

export async function publishingGateway(
  url: string,
  gateway: string,
  link: Partial<MqttLinkDeps> = {},
  publisher: Omit<Partial<UrgencyPublisherDeps>, 'link' | 'outbox'> = {},
): Promise<PublishingGateway> {
  const outbox = new Outbox({ dir: await mkdtemp(join(tmpdir(), `ser-edge-${gateway}-`)), maxBytes: 1 << 20 });
  const mqttLink = new MqttLink({
    url,
    clientId: `ser-edge-${gateway}-${process.pid}`,
    site: 'lab',
    gateway,
    backoff: { minMs: 100, maxMs: 500 },
    statusInfo: () => ({ version: '0.1.0', model: null, backend: null }),
    ...link,
  });
  const urgencyPublisher = new UrgencyPublisher({ link: mqttLink, outbox, ...publisher });
  return {
    outbox,
    link: mqttLink,
    publisher: urgencyPublisher,
    async start() {
      await outbox.start();
      await urgencyPublisher.start();
      await mqttLink.start();
      await mqttLink.waitForConnection(5000);
    },
    async stop() {
      await urgencyPublisher.stop();
      await mqttLink.stop();
      await outbox.stop();
    },
  };
}

/** The flag part of a sample event (what the daemon hands the publisher). */
export function sampleFlag(seq: number, overrides: Partial<UrgencyEvent> = {}): UrgencyFlag {
  const { schema: _s, id: _i, seq: _q, ts: _t, site: _si, gateway: _g, ...flag } = sampleEvent(seq, overrides);
  return flag;
}
