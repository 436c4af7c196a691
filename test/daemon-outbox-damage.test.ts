import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { daemonTestSite, labSiteConfig, spawnDaemon } from './helpers/daemon-process.js';
import { connectSubscriber } from './helpers/mosquitto.js';

/**
 * From outside: a gateway whose outbox files were damaged while it was down (a bad SD
 * card, a half-written copy) says so in its log and in its telemetry, keeps the files for
 * inspection, and numbers its next flags above every one the central side has seen.
 */
const { site, skip } = daemonTestSite('ser-edge-outbox-damage-');

test('damaged outbox files are moved aside, named in the log and in telemetry, and seq continues above what was published', { skip, timeout: 120_000 }, async () => {
  const gateway = 'gw-damage';
  const base = `ser/v1/lab/${gateway}`;
  const sub = await connectSubscriber(site.broker.url, [`${base}/channel/+/urgency`, `${base}/telemetry`]);
  const sources = [{ type: 'file', path: site.voiceWav, realtime: false, loop: true, channels: [{ id: 'desk-1', role: 'customer' }] }];
  const file = join(site.dir, `${gateway}.json`);
  const config = labSiteConfig(site, gateway, sources);
  const urgency = () => sub.messages.filter((m) => m.topic.endsWith('/urgency')).map((m) => m.json<{ seq: number; id: string }>());
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  try {
    const first = spawnDaemon(file, config);
    try {
      await first.waitForLog((l) => l.msg === 'ser-edge running', 20_000, 'the daemon running');
      for (const until = Date.now() + 30_000; urgency().length < 4 && Date.now() < until; ) await sleep(100);
    } finally {
      first.child.kill('SIGTERM');
    }
    assert.equal((await first.exited).code, 0, first.stderr().slice(-2000));
    const before = urgency();
    assert.ok(before.length >= 4, `the first run published flags (${before.length})`);
    const highest = Math.max(...before.map((e) => e.seq));

    // Garbage over every outbox file, the seq file included: nothing in them can be trusted.
    const outboxDir = join(site.dir, gateway, 'outbox');
    const damagedNames = readdirSync(outboxDir).filter((n) => n === 'seq' || /^outbox-\d+\.seg$/.test(n));
    assert.ok(damagedNames.includes('seq') && damagedNames.some((n) => n.endsWith('.seg')), `seq file and segments on disk (${damagedNames.join(', ')})`);
    for (const name of damagedNames) writeFileSync(join(outboxDir, name), Buffer.alloc(readFileSync(join(outboxDir, name)).length || 64, 0x5a));
    sub.messages.length = 0;

    const second = spawnDaemon(file);
    try {
      const logged = await second.waitForLog((l) => l.msg === 'outbox file damaged: moved aside for inspection', 20_000, 'the set-aside error line');
      assert.equal(logged.level, 50, 'an error, for the operator');

      const telemetryReports = () => sub.messages.filter((m) => m.topic.endsWith('/telemetry')).map((m) => m.json<{ pipeline: { outboxSetAside?: string[] } }>());
      for (const until = Date.now() + 30_000; (urgency().length === 0 || telemetryReports().length === 0) && Date.now() < until; ) await sleep(100);
      const telemetry = telemetryReports();
      const keptAt = second.logs().filter((l) => l.msg === 'outbox file damaged: moved aside for inspection').map((l) => String(l.keptAt));
      for (const path of keptAt) assert.ok(existsSync(path), `${path} is kept for inspection`);
      assert.ok(keptAt.some((p) => /\/damaged\/seq\./.test(p)), `the seq file is among them (${keptAt.join(', ')})`);
      assert.ok(keptAt.some((p) => /\/damaged\/outbox-\d+\.seg\./.test(p)), `and the segments (${keptAt.join(', ')})`);
      assert.ok(telemetry.length > 0, 'telemetry arrived');
      assert.deepEqual(telemetry[0]!.pipeline.outboxSetAside, keptAt, 'telemetry names the files moved aside');
      const after = urgency();
      assert.ok(after.length > 0, 'the restarted gateway flags again');
      assert.ok(after[0]!.seq > highest, `the next seq (${after[0]!.seq}) is above every seq published before (${highest})`);
      assert.equal(second.child.exitCode, null, 'the daemon keeps running');
    } finally {
      second.child.kill('SIGTERM');
      assert.equal((await second.exited).code, 0, second.stderr().slice(-2000));
    }
  } finally {
    await sub.end();
  }
});
