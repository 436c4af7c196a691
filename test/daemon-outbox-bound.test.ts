import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TelemetryPayload } from '../src/mqtt/payload-schemas.js';
import { daemonTestSite, labSiteConfig, spawnDaemon } from './helpers/daemon-process.js';
import { connectSubscriber } from './helpers/mosquitto.js';

const { site, skip } = daemonTestSite('ser-edge-outbox-bound-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The outbox's footprint as a look at the directory shows it: every segment file. */
function segmentBytesOnDisk(outboxDir: string): number {
  let total = 0;
  try {
    for (const name of readdirSync(outboxDir)) {
      if (!name.endsWith('.seg')) continue;
      try {
        total += statSync(join(outboxDir, name)).size;
      } catch {
        // deleted between the listing and the stat
      }
    }
  } catch {
    // not created yet
  }
  return total;
}

test('during a 40 s broker outage a small outbox stays within its bound on disk, dropping the least urgent events', { skip, timeout: 180_000 }, async (t) => {
  const gateway = 'gw-bound';
  const maxBytes = 16 * 1024;
  const segmentBytes = 4096;
  const bound = maxBytes + 2 * segmentBytes + 16 * 1024;
  const sources = ['desk-1', 'desk-2', 'desk-3'].map((id) => ({ type: 'file', path: site.voiceWav, realtime: false, loop: true, channels: [{ id, role: 'customer' }] }));
  const config = labSiteConfig(site, gateway, sources, {
    mqtt: { backoff: { initialMs: 100, maxMs: 500 } },
    outbox: { maxBytes, segmentBytes },
  });
  const outboxDir = join(site.dir, gateway, 'outbox');
  const daemon = spawnDaemon(join(site.dir, `${gateway}.json`), config);
  let largest = 0;
  const sampler = setInterval(() => (largest = Math.max(largest, segmentBytesOnDisk(outboxDir))), 25);
  try {
    await daemon.waitForLog((l) => l.msg === 'ser-edge running', 20_000, 'the daemon running');
    await sleep(3000);
    await site.broker.stop();
    await sleep(40_000);
    const duringOutage = largest;
    await site.broker.start();
    const sub = await connectSubscriber(site.broker.url, [`ser/v1/lab/${gateway}/telemetry`]);
    try {
      const telemetry = await sub.waitFor((m) => m.json<TelemetryPayload>().pipeline.outboxDropped.medium + m.json<TelemetryPayload>().pipeline.outboxDropped.high > 0, 20_000, 'telemetry counting dropped events');
      const pipeline = telemetry.json<TelemetryPayload>().pipeline as TelemetryPayload['pipeline'] & { outboxBytes?: number };
      t.diagnostic(`largest on disk ${largest} bytes (bound ${bound}); dropped ${JSON.stringify(pipeline.outboxDropped)}; outboxBytes ${pipeline.outboxBytes}`);
      assert.ok(duringOutage > maxBytes / 2, `the outage filled the outbox (${duringOutage} bytes)`);
      assert.ok(largest <= bound, `segments reached ${largest} bytes, over the bound of ${bound}`);
      assert.ok((pipeline.outboxBytes ?? Infinity) <= bound);
    } finally {
      await sub.end();
    }
  } finally {
    clearInterval(sampler);
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  }
  const warned = daemon.logs().filter((l) => String(l.msg).startsWith('outbox full: dropped events'));
  assert.ok(warned.length >= 2 && warned.length <= 4, `the drops were logged, once and then as a count per 30 s (${warned.length} lines)`);
  assert.ok((warned[1]!.suppressed as number) > 100, 'the later drops are counted, not logged one by one');
});
