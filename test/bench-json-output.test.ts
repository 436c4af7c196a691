import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { searchChannels, type CapacityProbe } from '../scripts/bench/bench-capacity.js';
import { runFigures, type Figure } from '../scripts/bench/figures.js';

const bench = fileURLToPath(new URL('../scripts/bench.js', import.meta.url));

test('the helpers the benchmark borrows from the tests print nothing outside the test runner, so `npm run bench -- --json` stays one JSON object', () => {
  const helper = fileURLToPath(new URL('./helpers/mosquitto.js', import.meta.url));
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(helper)}); console.log('{}');`], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, '{}\n');
});

test('`bench --json --only mlp` prints exactly one JSON object on stdout, with the figure, the machine and its load, and exits 0', () => {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, [bench, '--json', '--only', 'mlp'], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim().split('\n').length, 1, run.stdout);
  const result = JSON.parse(run.stdout) as Record<string, unknown>;
  assert.equal(typeof result.mlp_ms_per_audio_s, 'number');
  assert.ok(Array.isArray((result.machine as { load_average_at_start: unknown }).load_average_at_start));
  assert.deepEqual(result.below_target, (result.mlp_ms_per_audio_s as number) <= 0.5 ? [] : [`mlp_ms_per_audio_s ${result.mlp_ms_per_audio_s} (target <= 0.5)`]);
  assert.equal(result.features_rtf, undefined, 'figures not asked for are not measured');
});

test('`bench --only` with a figure that does not exist is refused, naming the figures there are', () => {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, [bench, '--json', '--only', 'latency'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /--only latency: no such figure; the figures are features, knn, .*channels_per_core/);
});

const figure = (name: string, keys: string[], run: Figure['run']): Figure => ({ name, keys, describe: name, run });

test('a figure that throws reports null for its keys and an error, and the figures after it still run', async () => {
  const { result, failed } = await runFigures([
    figure('first', ['a'], async () => ({ a: 1 })),
    figure('broken', ['b', 'c'], async () => {
      throw new Error('outbox compaction raced an append');
    }),
    figure('last', ['d'], async () => ({ d: 4 })),
  ]);
  assert.deepEqual(result, { a: 1, b: null, c: null, broken_error: 'outbox compaction raced an append', d: 4 });
  assert.deepEqual(failed, [{ name: 'broken', error: 'outbox compaction raced an append' }]);
});

test('a rejection a figure leaves unhandled fails that figure, not the bench', () => {
  // In a process of its own: the test runner would take the stray rejection as this test's failure.
  const figures = fileURLToPath(new URL('../scripts/bench/figures.js', import.meta.url));
  const script = `
    const { runFigures } = await import(${JSON.stringify(figures)});
    const run = await runFigures([
      { name: 'leaky', keys: ['x'], describe: 'leaky', run: async () => { void Promise.reject(new Error('a stray rejection')); return { x: 1 }; } },
      { name: 'next', keys: ['y'], describe: 'next', run: async () => ({ y: 2 }) },
    ]);
    console.log(JSON.stringify(run));`;
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { result: { x: null, leaky_error: 'a stray rejection', y: 2 }, failed: [{ name: 'leaky', error: 'a stray rejection' }] });
});

test('only the figures asked for run', async () => {
  const ran: string[] = [];
  const make = (name: string) => figure(name, [name], async () => (ran.push(name), { [name]: true }));
  const { result } = await runFigures([make('a'), make('b'), make('c')], { only: ['c', 'a'] });
  assert.deepEqual(ran, ['a', 'c']);
  assert.deepEqual(result, { a: true, c: true });
});

/** A daemon that keeps up with at most `capacity` channels. */
function fakeProbe(capacity: number, asked: number[]) {
  return async (channels: number): Promise<CapacityProbe> => {
    asked.push(channels);
    const keptUp = channels <= capacity;
    return {
      channels,
      keptUp,
      why: keptUp ? 'kept up' : 'fell behind',
      lagMs: null,
      droppedWindows: 0,
      cpuMainThreadPercent: null,
      cpuProcessPercent: null,
      waitingForCpuPercent: null,
      events: 0,
      eventP99Ms: null,
      telemetryReports: 0,
      deviceLateP99Ms: null,
      wallSeconds: 0,
    };
  };
}

test('the channel search doubles until a count fails, then bisects to within an eighth of the largest that kept up', async () => {
  const asked: number[] = [];
  const found = await searchChannels(fakeProbe(600, asked), { start: 128, max: 2048, step: 16 });
  assert.deepEqual(asked.slice(0, 4), [128, 256, 512, 1024]);
  assert.ok(found.channels <= 600 && found.channels >= 600 * (7 / 8), `found ${found.channels}`);
  assert.equal(found.channels % 16, 0);
  assert.equal(found.probes.length, asked.length);
  assert.ok(asked.length <= 8, `${asked.length} probes: ${asked.join(', ')}`);
});

test('the channel search halves from a start that fails, and reports 0 when even one step fails', async () => {
  const asked: number[] = [];
  const found = await searchChannels(fakeProbe(40, asked), { start: 128, max: 2048, step: 16 });
  assert.deepEqual(asked.slice(0, 3), [128, 64, 32]);
  assert.ok(found.channels >= 32 && found.channels <= 40, `found ${found.channels}`);
  const none = await searchChannels(fakeProbe(0, []), { start: 128, max: 2048, step: 16 });
  assert.equal(none.channels, 0);
});

test('the channel search stops at its ceiling when every count keeps up', async () => {
  const found = await searchChannels(fakeProbe(Infinity, []), { start: 128, max: 1024, step: 16 });
  assert.equal(found.channels, 1024);
});

test('a count the bench itself failed to measure is probed again, not taken as the daemon falling behind', async () => {
  const asked: number[] = [];
  const honest = fakeProbe(600, asked);
  let failedOnce = false;
  const flaky = async (n: number) => {
    if (n === 256 && !failedOnce) {
      failedOnce = true;
      return { ...(await honest(n)), keptUp: false, why: 'only 7 of 8 capture devices reported', harnessFailed: true };
    }
    return honest(n);
  };
  const found = await searchChannels(flaky, { start: 128, max: 2048, step: 16 });
  assert.deepEqual(asked.slice(0, 4), [128, 256, 256, 512]);
  assert.ok(found.channels >= 600 * (7 / 8), `found ${found.channels}`);
});
