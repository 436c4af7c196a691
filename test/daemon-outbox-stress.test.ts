import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { daemonTestSite, labSiteConfig, spawnDaemon } from './helpers/daemon-process.js';
import { connectSubscriber } from './helpers/mosquitto.js';

/**
 * The promise that matters most, checked from outside: with channels replaying speech as
 * fast as the CPU allows, an outbox whose segments turn over every few events, and the
 * broker gone for 10 s in the middle of a minute, every event the daemon stored reaches an
 * independent subscriber, with no seq missing and each channel's events one unbroken chain.
 */
// Persistence keeps the subscriber's session and its queued messages across the broker's restart.
const { site, skip } = daemonTestSite('ser-edge-outbox-stress-', { persistence: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CHANNELS = ['desk-1', 'desk-2', 'desk-3', 'desk-4', 'desk-5', 'desk-6'];
type StoredLine = { msg: string; seq: number; id: string; channel: string };

test('a minute of fast channels with segment turnover every few events and a 10 s broker outage loses no event, leaves no seq gap and breaks no chain', { skip, timeout: 240_000 }, async (t) => {
  const gateway = 'gw-stress';
  const sub = await connectSubscriber(site.broker.url, [`ser/v1/lab/${gateway}/channel/+/urgency`], {
    clientId: `central-stress-${process.pid}`,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
  });
  const sources = CHANNELS.map((id) => ({ type: 'file', path: site.voiceWav, realtime: false, loop: true, channels: [{ id, role: 'customer' }] }));
  const config = labSiteConfig(site, gateway, sources, {
    mqtt: { backoff: { initialMs: 100, maxMs: 500 } },
    outbox: { segmentBytes: 4096 },
  });
  const file = join(site.dir, `${gateway}.json`);
  const outboxDir = join(site.dir, gateway, 'outbox');
  const daemon = spawnDaemon(file, config);
  let maxSegmentIndex = 0;
  const sampler = setInterval(() => {
    try {
      for (const name of readdirSync(outboxDir)) {
        const m = /^outbox-(\d+)\.seg$/.exec(name);
        if (m) maxSegmentIndex = Math.max(maxSegmentIndex, Number(m[1]));
      }
    } catch {
      // not created yet
    }
  }, 200);
  let stored: StoredLine[] = [];
  try {
    await daemon.waitForLog((l) => l.msg === 'ser-edge running', 20_000, 'the daemon running');
    await sleep(25_000);
    await site.broker.stop();
    await sleep(10_000);
    await site.broker.start();
    await sleep(25_000);
  } finally {
    clearInterval(sampler);
    daemon.child.kill('SIGTERM');
  }
  const { code } = await daemon.exited;
  assert.equal(code, 0, daemon.stderr().slice(-2000));
  const logs = daemon.logs();
  stored = logs.filter((l) => l.msg === 'urgency raise' || l.msg === 'urgency clear') as unknown as StoredLine[];
  const failures = logs.filter((l) => (l.level as number) >= 50 || String(l.msg).includes('could not queue'));
  assert.deepEqual(failures, [], 'no error while storing or publishing');

  // What the shutdown could not deliver waits in the outbox: a run without sources sends it.
  const flush = spawnDaemon(join(site.dir, `${gateway}-flush.json`), { ...config, sources: [] });
  const ids = new Set(stored.map((s) => s.id));
  try {
    for (let i = 0; i < 300 && !everyIdArrived(sub.messages, ids); i++) await sleep(100);
  } finally {
    flush.child.kill('SIGTERM');
    await flush.exited;
    await sub.end();
  }

  const received = sub.messages.map((m) => UrgencyEvent.parse(m.json()));
  const first = new Map<string, UrgencyEvent>();
  for (const e of received) {
    const earlier = first.get(e.id);
    if (earlier) assert.deepEqual(e, earlier, 'a repeat after a reconnect is the same event');
    else first.set(e.id, e);
  }
  t.diagnostic(`${stored.length} events stored, ${first.size} distinct delivered (${received.length} with repeats), newest segment #${maxSegmentIndex}`);
  const lost = stored.filter((s) => !first.has(s.id));
  assert.deepEqual(lost.map((s) => s.seq), [], `${lost.length} of ${stored.length} stored events never arrived`);
  assert.ok(stored.length >= 200, `the run produced enough events to mean something (${stored.length})`);
  assert.ok(maxSegmentIndex >= 50, `segments turned over often (newest segment #${maxSegmentIndex})`);

  const events = [...first.values()].sort((a, b) => a.seq - b.seq);
  const gaps = events.flatMap((e, i) => (i > 0 && e.seq !== events[i - 1]!.seq + 1 ? [`${events[i - 1]!.seq}→${e.seq}`] : []));
  assert.deepEqual(gaps, [], 'no seq is missing');
  assert.equal(events[0]!.seq, 1);
  assert.equal(events.length, stored.length, 'the subscriber has exactly the events the daemon stored');
  for (const channel of CHANNELS) {
    const chain = events.filter((e) => e.channel === channel);
    assert.ok(chain.length > 10, `${channel} flagged (${chain.length} events)`);
    const breaks = chain.flatMap((e, i) => ((i === 0 ? 'low' : chain[i - 1]!.level) === e.previousLevel ? [] : [`seq ${e.seq}: previousLevel ${e.previousLevel} after ${i === 0 ? 'the start' : chain[i - 1]!.level}`]));
    assert.deepEqual(breaks, [], `${channel}'s events form one chain`);
  }
});

function everyIdArrived(messages: { json<T>(): T }[], ids: Set<string>): boolean {
  const seen = new Set(messages.map((m) => m.json<UrgencyEvent>().id));
  for (const id of ids) if (!seen.has(id)) return false;
  return true;
}
