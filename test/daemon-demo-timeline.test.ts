import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { samplesPerBlock } from '../src/audio/block-assembler.js';
import { FileSource } from '../src/audio/file-source.js';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { urgencySettings } from '../src/daemon.js';
import { DaemonBus } from '../src/daemon/daemon-events.js';
import { HeadsetChannel } from '../src/daemon/headset-channel.js';
import { loadModel, manifestDigest } from '../src/daemon/load-model.js';
import { liveModel, ModelSlot } from '../src/daemon/model-slot.js';
import { demoVoice } from '../src/daemon/open-audio-source.js';
import { PipelineMetrics } from '../src/telemetry/pipeline-metrics.js';

/** A flag change on the demo channel, at the audio second whose block raised it. */
interface Flag {
  at: number;
  kind: string;
  level: string;
  driver: string;
}

/**
 * `npx ser-edge run` as README's Quick start describes it, without the 100 s of waiting:
 * the built-in default config, the shipped model as the daemon loads it, and the demo
 * source's own voice in the daemon's blocks, pushed through a HeadsetChannel built as the
 * daemon builds it (one call, its urgency stage with the config's settings), as fast as
 * the CPU goes instead of in real time.
 */
async function demoTimeline(cycles: number): Promise<{ flags: Flag[]; calm: number; angry: number }> {
  const { config } = loadDaemonConfig({ env: {} });
  const [source] = config.sources;
  assert.ok(source?.type === 'demo' && source.channels.length === 1, 'the built-in default runs one demo channel');
  const classifier = await loadModel(config.model, pino({ level: 'silent' }));
  const model = new ModelSlot({ initial: liveModel(classifier, urgencySettings(config), await manifestDigest(config.model.dir)) });
  const bus = new DaemonBus();
  const channel = new HeadsetChannel({
    id: source.channels[0]!.id,
    role: source.channels[0]!.role,
    model,
    windowing: { ...DEFAULT_WINDOWING, windowSeconds: config.audio.windowSeconds, hopSeconds: config.audio.hopSeconds },
    callSilenceSeconds: config.calls.callSilenceSeconds,
    bus,
    metrics: new PipelineMetrics(),
  });
  const rate = model.sampleRate;
  // The demo source's replay, but not paced by the wall clock.
  const replay = new FileSource({
    description: 'demo:calm-then-angry',
    channels: [demoVoice(source.calmSeconds, source.angrySeconds, rate)],
    sampleRate: rate,
    blockSize: samplesPerBlock(rate, config.audio.blockMs),
    realtime: false,
    loop: true,
  });
  const flags: Flag[] = [];
  let audioSeconds = 0;
  bus.on('urgency', (e) => flags.push({ at: Number(audioSeconds.toFixed(1)), kind: e.kind, level: e.level, driver: e.driver }));
  channel.start();
  const end = cycles * (source.calmSeconds + source.angrySeconds);
  for await (const [block] of replay.blocks()) {
    audioSeconds += block!.length / rate;
    channel.push(block!);
    if (audioSeconds >= end - 1e-9) break;
  }
  await replay.close();
  classifier.dispose();
  return { flags, calm: source.calmSeconds, angry: source.angrySeconds };
}

test("the demo channel does what README's Quick start says: no flag while calm, high a few seconds into each angry part, low again a few seconds into the next calm part, never medium", { timeout: 60_000 }, async (t) => {
  // Two loops and the third calm part, so the second flag is seen cleared as well.
  const { flags, calm, angry } = await demoTimeline(2.5);
  assert.deepEqual([calm, angry], [20, 20], 'README describes 20 s calm, then 20 s angry');
  const cycle = calm + angry;
  const shown = JSON.stringify(flags);
  t.diagnostic(`flags at audio seconds: ${flags.map((f) => `${f.at} ${f.kind} ${f.level} (${f.driver})`).join(', ')}`);
  assert.ok(flags.every((f) => f.level !== 'medium'), `no medium flag (the calm voice must not read as sad): ${shown}`);
  assert.deepEqual(
    flags.map((f) => `${f.kind} ${f.level}`),
    ['raise high', 'clear low', 'raise high', 'clear low'],
    `one high flag per angry part, each cleared in the calm part after it: ${shown}`,
  );
  for (const n of [0, 1]) {
    const raise = flags[2 * n]!;
    const clear = flags[2 * n + 1]!;
    const angryStarts = n * cycle + calm;
    const calmStarts = (n + 1) * cycle;
    assert.equal(raise.driver, 'angry', `the angry driver raises it: ${shown}`);
    // The shipped angry tracker (smoothing 0.35, four windows above threshold) raises at
    // the earliest on the seventh window with anger in it, about 6.3 s in at 1 s hops.
    assert.ok(raise.at > angryStarts && raise.at <= angryStarts + 8, `high within 8 s of the angry part starting at ${angryStarts} s: ${shown}`);
    assert.ok(clear.at > calmStarts && clear.at <= calmStarts + 8, `cleared within 8 s of the calm part starting at ${calmStarts} s: ${shown}`);
  }
});
