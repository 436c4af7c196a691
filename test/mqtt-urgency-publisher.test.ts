import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MqttLink } from '../src/mqtt/mqtt-link.js';
import { Outbox } from '../src/mqtt/outbox.js';
import type { ChannelState, UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { gatewayTopics } from '../src/mqtt/topics.js';
import { UrgencyPublisher, type UrgencyFlag } from '../src/mqtt/urgency-publisher.js';

/** A connected link whose PUBACKs the test hands out: what was sent, in order, and what still waits for its PUBACK. */
class HeldLink extends EventEmitter {
  readonly site = 'lab';
  readonly gateway = 'gw1';
  readonly topics = gatewayTopics('lab', 'gw1');
  readonly connected = true;
  readonly sent: { topic: string; payload: UrgencyEvent | ChannelState }[] = [];
  private readonly waiting: (() => void)[] = [];

  publish(topic: string, payload: UrgencyEvent | ChannelState): Promise<void> {
    this.sent.push({ topic, payload });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The PUBACKs of everything sent so far, then time for the outbox and the publisher to act on them. */
  async acknowledge(): Promise<void> {
    for (const resolve of this.waiting.splice(0)) resolve();
    await new Promise((r) => setTimeout(r, 20));
  }

  get unacknowledged(): number {
    return this.waiting.length;
  }
}

const flag = (channel: string, kind: 'raise' | 'clear', callId: string): UrgencyFlag => ({
  channel,
  callId,
  kind,
  level: kind === 'raise' ? 'high' : 'low',
  previousLevel: kind === 'raise' ? 'low' : 'high',
  score: 0.9,
  emotion: 'angry',
  probabilities: { angry: 0.9, neutral: 0.1 },
  model: { name: 'test', version: '1.0.0' },
  window: { start: '2025-01-01T12:00:00.000Z', end: '2025-01-01T12:00:03.000Z' },
});

test("a channel's state set while another channel's state waits for its PUBACK still waits for the events stored before it", async () => {
  const link = new HeldLink();
  const outbox = new Outbox({ dir: await mkdtemp(join(tmpdir(), 'ser-edge-publisher-')), maxBytes: 1 << 20 });
  await outbox.start();
  const publisher = new UrgencyPublisher({ link: link as unknown as MqttLink, outbox });
  await publisher.start();
  try {
    // Two channels at rest; desk-1's state goes out first and waits for its PUBACK.
    const idle = (channel: string) => publisher.setChannelState({ channel, callId: null, level: 'low', score: 0, eventId: null, emotion: null });
    idle('desk-1');
    idle('desk-2');
    for (let i = 0; i < 50 && link.sent.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(link.sent.map((m) => m.topic), [link.topics.state('desk-1')]);

    // Meanwhile a fast call on desk-2 is raised, cleared and ended.
    publisher.setChannelState({ channel: 'desk-2', callId: 'call-2', level: 'low', score: 0, eventId: null, emotion: null });
    await publisher.flag(flag('desk-2', 'raise', 'call-2'));
    await publisher.flag(flag('desk-2', 'clear', 'call-2'));
    idle('desk-2');

    for (let i = 0; i < 20 && (link.unacknowledged > 0 || outbox.depth > 0); i++) await link.acknowledge();
    assert.equal(outbox.depth, 0, 'every event acknowledged');

    const desk2 = link.sent
      .filter((m) => m.payload.channel === 'desk-2')
      .map((m) => (m.topic.endsWith('/urgency') ? `event ${(m.payload as UrgencyEvent).kind}` : `state ${(m.payload as ChannelState).callId ?? 'between calls'}`));
    // Before the fix the end of the call went out first, and a consumer took the raise and the clear for late.
    assert.deepEqual(desk2, ['event raise', 'event clear', 'state between calls']);
  } finally {
    await publisher.stop();
    await outbox.stop();
  }
});
