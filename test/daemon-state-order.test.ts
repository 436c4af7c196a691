import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ChannelState, UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { daemonTestSite, labSiteConfig, spawnDaemon } from './helpers/daemon-process.js';
import { connectSubscriber } from './helpers/mosquitto.js';

const { site, skip } = daemonTestSite('ser-edge-state-order-');

test("a channel's retained state never arrives before the events behind it", { skip, timeout: 60_000 }, async () => {
  const gateway = 'gw-order';
  const sub = await connectSubscriber(site.broker.url, [`ser/v1/lab/${gateway}/channel/+/urgency`, `ser/v1/lab/${gateway}/channel/+/state`]);
  const sources = ['desk-1', 'desk-2'].map((id) => ({ type: 'file', path: site.voiceWav, realtime: false, loop: true, channels: [{ id, role: 'customer' }] }));
  // A short call silence makes the replay end calls too: the state "between calls" follows their clears.
  const daemon = spawnDaemon(join(site.dir, `${gateway}.json`), labSiteConfig(site, gateway, sources, { calls: { callSilenceSeconds: 3 } }));
  try {
    await sub.waitFor((m) => m.topic.endsWith('/urgency') && m.json<UrgencyEvent>().seq >= 150, 40_000, '150 events');
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.end();
  }
  const seen = new Map<string, Set<string>>();
  const lastEventLevel = new Map<string, string>();
  const early: string[] = [];
  for (const m of sub.messages) {
    if (m.topic.endsWith('/urgency')) {
      const e = UrgencyEvent.parse(m.json());
      if (!seen.has(e.channel)) seen.set(e.channel, new Set());
      seen.get(e.channel)!.add(e.id);
      lastEventLevel.set(e.channel, e.level);
      continue;
    }
    const state = ChannelState.parse(m.json());
    if (state.eventId !== null && !seen.get(state.channel)?.has(state.eventId)) early.push(`${state.channel}: state of event ${state.eventId} before the event`);
    if (state.eventId === null && state.level === 'low' && lastEventLevel.has(state.channel) && lastEventLevel.get(state.channel) !== 'low') {
      early.push(`${state.channel}: low between calls while its last event said ${lastEventLevel.get(state.channel)}`);
    }
  }
  const states = sub.messages.filter((m) => m.topic.endsWith('/state')).length;
  assert.ok(states >= 3, `states were published (${states})`);
  assert.deepEqual(early, []);
});
