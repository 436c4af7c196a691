import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { openFileSource } from '../src/audio/file-source.js';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { sourceSchema, type SourceConfig } from '../src/config/daemon-config.js';
import { ChannelRunner } from '../src/daemon/channel-runner.js';
import { DaemonBus, type SourceFailureEvent } from '../src/daemon/daemon-events.js';
import { EventLoopTurns } from '../src/daemon/event-loop-turns.js';
import { HeadsetChannel } from '../src/daemon/headset-channel.js';
import { liveModel, ModelSlot } from '../src/daemon/model-slot.js';
import { LoadShedder } from '../src/daemon/load-shedder.js';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import type { BundleManifest } from '../src/model/bundle-manifest.js';
import type { Classifier } from '../src/model/classifier.js';
import { PipelineMetrics } from '../src/telemetry/pipeline-metrics.js';
import { DEFAULT_TRACKER_CONFIG } from '../src/urgency/urgency-tracker.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';

const dir = tempDir('ser-edge-channel-runner-');

/**
 * A model that answers "neutral": at once, or after `costMs` of CPU per window (a heavy
 * model); `stallMs` makes the next window take that long once (a stalled CPU).
 */
function quickClassifier(costMs = 0): Classifier & { stallMs: number } {
  return {
    stallMs: 0,
    labels: ['neutral', 'angry'],
    backend: 'scripted',
    manifest: { name: 'scripted', version: '1', features: DEFAULT_FEATURE_CONFIG } as unknown as BundleManifest,
    newCallContext: () => ({ model: 'scripted' }),
    predict(_rows, _frames, out) {
      const until = performance.now() + costMs + this.stallMs;
      this.stallMs = 0;
      while (performance.now() < until);
      out[0] = 1;
      out[1] = 0;
      return out;
    },
    predictModelInput: (_input, out) => out,
    modelInput: () => new Float32Array(0),
    dispose() {},
  };
}

function runnerFor(source: SourceConfig, options: { maxLagSeconds?: number; classifier?: Classifier; shedder?: LoadShedder; turns?: EventLoopTurns } = {}) {
  const classifier = options.classifier ?? quickClassifier();
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  const logs: Record<string, unknown>[] = [];
  const failures: SourceFailureEvent[] = [];
  bus.on('source-failed', (e) => failures.push(e));
  const model = new ModelSlot({ initial: liveModel(classifier, { tracker: DEFAULT_TRACKER_CONFIG, weights: { neutral: 0, angry: 1 } }, 'f'.repeat(64)) });
  const channels = new Map(
    source.channels.map(({ id, role }) => [
      id,
      new HeadsetChannel({ id, role, model, windowing: DEFAULT_WINDOWING, callSilenceSeconds: 30, bus, metrics }),
    ]),
  );
  let opened = 0;
  const shedder = options.shedder ?? new LoadShedder({ maxLagSeconds: options.maxLagSeconds ?? 5 });
  const runner = new ChannelRunner({
    source,
    channels,
    open: (s) => {
      opened++;
      if (s.type !== 'file') throw new Error('these tests open files only');
      return openFileSource(s.path, { realtime: s.realtime, loop: s.loop });
    },
    retry: { initialMs: 20, maxMs: 40 },
    bus,
    metrics,
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
    shedder,
    turns: options.turns ?? new EventLoopTurns(),
  });
  return { runner, metrics, logs, failures, shedder, opened: () => opened };
}

const fileSource = (path: string, channels: { index: number; id: string }[], realtime = true): SourceConfig =>
  sourceSchema.parse({ type: 'file', path, realtime, loop: true, channels });

const until = async (condition: () => boolean, ms: number, what: string) => {
  for (const end = performance.now() + ms; !condition(); ) {
    if (performance.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

test('a live source that falls more than maxLagSeconds behind skips to the present and counts the skipped audio on each of its channels', { timeout: 30_000 }, async () => {
  const voice = synthesiseVoice(VOICE_STYLES.angry, 8, 16000, 3);
  const path = await writeWav(join(dir, 'stereo-voice.wav'), [voice, voice], 16000, '16');
  const classifier = quickClassifier();
  const { runner, metrics, shedder } = runnerFor(fileSource(path, [{ index: 0, id: 'desk-1' }, { index: 1, id: 'desk-2' }]), { maxLagSeconds: 1, classifier });
  runner.start();
  try {
    await until(() => metrics.windows >= 2, 15_000, 'the first windows');
    // One window takes 3 s (a stalled CPU): the source is then 3 s behind with a 1 s allowance.
    classifier.stallMs = 3000;
    await until(() => metrics.droppedWindows > 0, 15_000, 'dropped windows');
    const dropped = ['desk-1', 'desk-2'].map((id) => metrics.channels.get(id)!.droppedWindows);
    // About 3 s of audio skipped at the default 1 s hop: some 3 windows each.
    for (const n of dropped) assert.ok(n >= 2 && n <= 4, `dropped ${dropped.join(', ')} windows`);
    assert.equal(metrics.droppedWindows, dropped[0]! + dropped[1]!);
    // Caught up, both channels are analysed again (the stall may have halved them for a moment), and drops stop.
    await until(() => shedder.servedChannels === 2, 15_000, 'both channels served again');
    const droppedThen = metrics.droppedWindows;
    const windowsThen = metrics.windows;
    await until(() => metrics.windows >= windowsThen + 4, 15_000, 'windows after the skip');
    assert.equal(metrics.droppedWindows, droppedThen, 'no more drops once caught up');
  } finally {
    await runner.stop();
  }
});

test('a source that cannot carry its channel mapping is refused once with the channel named, and never retried', async () => {
  const path = await writeWav(join(dir, 'mono.wav'), [synthesiseVoice(VOICE_STYLES.calm, 1, 16000, 4)], 16000, '16');
  const { runner, metrics, logs, failures, opened } = runnerFor(fileSource(path, [{ index: 0, id: 'desk-1' }, { index: 1, id: 'desk-2' }]));
  runner.start();
  await until(() => failures.length > 0, 5000, 'the refusal');
  // With a 20 ms backoff, a retry would have come many times over by now.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await runner.stop();
  assert.equal(opened(), 1, 'opened once');
  assert.equal(failures.length, 1);
  assert.equal(failures[0]!.permanent, true);
  assert.match(failures[0]!.error, /channel desk-2: index 1 does not exist: the source has 1 channel \(index 0\)/);
  const refusals = logs.filter((l) => l.level === 50);
  assert.equal(refusals.length, 1, 'one error line');
  assert.match(String(refusals[0]!.msg), /refused.*not retried/);
  assert.match(String(refusals[0]!.error), /mono\.wav.*desk-2/);
  for (const id of ['desk-1', 'desk-2']) {
    assert.equal(metrics.channels.get(id)!.state, 'failed');
    assert.match(metrics.channels.get(id)!.lastError ?? '', /desk-2: index 1 does not exist/);
  }
});

test('live sources that need more CPU than there is shed load in turns: timers keep running, windows are dropped and counted, and the channels served still get windows', { timeout: 90_000 }, async () => {
  const voice = synthesiseVoice(VOICE_STYLES.angry, 4, 16000, 5);
  const path = await writeWav(join(dir, 'eight.wav'), Array.from({ length: 8 }, (_, c) => voice.map((_, i) => voice[(i + c * 8000) % voice.length]!)), 16000, '16');
  // 48 sources of 8 channels, a window a second each at 10 ms of CPU: some 4 s of work a
  // second with the features, on one core shared with whatever else the machine runs.
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const turns = new EventLoopTurns();
  const classifier = quickClassifier(10);
  const runners = Array.from({ length: 48 }, (_, r) =>
    runnerFor(fileSource(path, Array.from({ length: 8 }, (_, c) => ({ index: c, id: `s${r}-c${c}` }))), { classifier, shedder, turns }),
  );
  let ticks = 0;
  let longestGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    ticks++;
  }, 50);
  for (const { runner } of runners) runner.start();
  const dropped = () => runners.reduce((n, { metrics }) => n + metrics.droppedWindows, 0);
  const windows = () => runners.reduce((n, { metrics }) => n + metrics.windows, 0);
  try {
    await until(() => dropped() > 0 && shedder.servedChannels < shedder.liveChannels, 40_000, 'load being shed');
    const windowsThen = windows();
    longestGap = 0;
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    assert.ok(windows() > windowsThen + 10, `the served channels kept getting windows (${windows() - windowsThen} in 10 s, ${shedder.servedChannels} of 384 served)`);
  } finally {
    clearInterval(timer);
    await Promise.all(runners.map(({ runner }) => runner.stop()));
  }
  assert.ok(shedder.servedChannels < 384, `served ${shedder.servedChannels} of 384`);
  assert.ok(longestGap < 1000, `a 50 ms timer never waited a second while load was shed (longest gap ${Math.round(longestGap)} ms, ${ticks} ticks)`);
  for (const { metrics } of runners) {
    const perChannel = [...metrics.channels.values()].reduce((n, h) => n + h.droppedWindows, 0);
    assert.equal(perChannel, metrics.droppedWindows, 'each drop is counted on its channel');
  }
});
