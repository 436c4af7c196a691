import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { benchColdStart, UNBUNDLED_PROGRAM, writeColdStartRecording } from '../scripts/bench/bench-cold-start.js';
import { EmbeddedBroker } from '../src/daemon/embedded-broker.js';
import { tempDir } from './helpers/audio-fixtures.js';

// The figures themselves belong to the bench (README, Benchmarks); this only checks that the
// measurement works end to end, so a renamed log line or metric cannot silently break it.
test('the cold-start figure starts `run`, sees its first classified window on the Prometheus counter and times --help; a program that is not built is named', async () => {
  const broker = new EmbeddedBroker({ port: 0 });
  await broker.start();
  try {
    const dir = tempDir('ser-edge-cold-start-');
    const recording = writeColdStartRecording(dir, 16000);
    const result = await benchColdStart({ program: UNBUNDLED_PROGRAM, dir: join(dir, 'unbundled'), recording, brokerUrl: broker.url, runs: 1 });
    assert.equal(result.runs.length, 1, 'the start that warms the page cache is not counted');
    assert.equal(result.help_runs_ms.length, 1);
    for (const [key, value] of Object.entries({ first_window_ms: result.first_window_ms, help_ms: result.help_ms, ...result.parts })) {
      assert.ok(Number.isFinite(value) && value > 0, `${key} is a time: ${value}`);
    }
    const missing = join(dir, 'not-built', 'ser-edge.mjs');
    await assert.rejects(benchColdStart({ program: missing, dir: join(dir, 'missing'), recording, brokerUrl: broker.url, runs: 1 }), new RegExp(`^Error: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is missing: run \`npm run build\` first$`));
  } finally {
    await broker.stop();
  }
});
