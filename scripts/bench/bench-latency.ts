/**
 * `publish_latency_*`: from the moment the last sample of an event's window was spoken to
 * the moment the event reaches the central side, through the whole daemon.
 *
 * The daemon (`ser-edge run`, a child process) reads N interleaved channels of s16le PCM
 * on stdin, the way `arecord … | ser-edge run` feeds it; the bench is the capture device
 * and writes 20 ms periods of the callers' speech on the wall clock, so it knows when every
 * sample was spoken. An independent MQTT subscriber on the same mosquitto stamps each
 * urgency event as it arrives. Which window an event came from is known exactly: the same
 * PCM is first run through the daemon's own channel code here (a replica, on a simulated
 * clock), whose events must equal the daemon's one for one (kind, level, score).
 *
 * So each event gives: spoken window end → arrival (the figure), and its parts: the wait
 * for the rest of the window's capture block, the daemon up to the outbox (features,
 * model, fsync; from its log), and outbox → broker → subscriber. Beside it, the daemon's
 * own view: its telemetry's window-end → PUBACK histogram, and arrival − the event's
 * `window.end`, both measured from the daemon's stamp of the window end, which it takes
 * when the block reaches the channel; how late that stamp is, is reported too.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { pcmStreamBlocks } from '../../src/audio/pcm-stream-blocks.js';
import { DEFAULT_WINDOWING } from '../../src/audio/speech-windower.js';
import { DaemonBus } from '../../src/daemon/daemon-events.js';
import { HeadsetChannel } from '../../src/daemon/headset-channel.js';
import { liveModel, ModelSlot } from '../../src/daemon/model-slot.js';
import type { Classifier } from '../../src/model/classifier.js';
import { PipelineMetrics } from '../../src/telemetry/pipeline-metrics.js';
import { DEFAULT_TRACKER_CONFIG, type TrackerConfig } from '../../src/urgency/urgency-tracker.js';
import type { CaptureReport } from './capture-device.js';
import { benchConfig, DaemonUnderTest } from './daemon-under-test.js';
import { callerSignal, interleaveS16le, type SpeechClips } from './replay-speech.js';
import { spread, type Spread } from './stats.js';

/**
 * The tracker follows each window (no smoothing, one window to raise or clear), so the
 * level moves every few seconds and a short run has enough events for a p99. How long an
 * event takes from its window to the broker does not depend on these settings; how many
 * events there are does. The CPU cost of a level change is a publish, nothing more.
 */
export const BENCH_URGENCY = { smoothing: 1, hysteresis: 0.05, raiseWindows: 1, clearWindows: 1 } as const;
const BENCH_TRACKER: TrackerConfig = { ...DEFAULT_TRACKER_CONFIG, ...BENCH_URGENCY };
/** The generic-linux profile's capture block, which the config below inherits. */
const BLOCK_MS = 100;
/** The callers' first seconds: JIT warm-up and the first windows of each call, left out of the figures. */
const WARMUP_SECONDS = 5;
const CALL_SILENCE_SECONDS = 30;

interface ExpectedEvent {
  kind: string;
  level: string;
  score: number;
  /** Stream time of the window's last sample, and of the end of the block that carried it (ms). */
  endMs: number;
  blockEndMs: number;
}

interface ReceivedEvent {
  id: string;
  seq: number;
  channel: string;
  kind: string;
  level: string;
  score: number;
  windowEndMs: number;
  arrivedMs: number;
}

export interface LatencyResult {
  channels: number;
  /** Spoken end of the window → arrival at the subscriber: the figure. */
  spoken_to_subscriber_ms: Spread;
  /** The daemon's telemetry histogram (its window-end stamp → PUBACK), over the whole run. */
  daemon_puback_ms: { p50: number | null; p99: number | null };
  /** Arrival − the event's own `window.end`: the outside view of the daemon's stamp. */
  stamp_to_subscriber_ms: Spread;
  /** How much later than the spoken time the daemon stamps the window end. */
  stamp_late_ms: Spread;
  parts: { block_wait_ms: Spread; device_late_ms: Spread; block_to_outbox_ms: Spread; outbox_to_subscriber_ms: Spread };
  replica: { matched: number; received: number; expected: number; mismatches: string[] };
  /** How late the capture device wrote its periods (the machine's load, not the daemon). */
  device_late_ms: Spread;
  dropped_windows: number | null;
  cpu_main_thread_percent: number;
  cpu_process_percent: number;
  rss_mb: number;
  seconds: number;
  daemon_warnings: string[];
}

let runs = 0;
const captureDevice = fileURLToPath(new URL('./capture-device.js', import.meta.url));

export async function benchPublishLatency(options: { classifier: Classifier; clips: SpeechClips; channels: number; brokerUrl: string; seconds?: number }): Promise<LatencyResult> {
  const { classifier, clips, channels, brokerUrl } = options;
  const seconds = options.seconds ?? 25;
  const rate = classifier.manifest.features.sampleRate;
  const pcm = interleaveS16le(Array.from({ length: channels }, (_, c) => callerSignal(clips, c, seconds, rate)));
  const expected = await replicate(classifier, pcm, channels);

  const dir = mkdtempSync(join(tmpdir(), `ser-edge-bench-latency-${channels}-`));
  const gateway = `bench-latency-${channels}ch-${process.pid}-${++runs}`;
  const base = `ser/v1/bench/${gateway}`;
  const { default: mqtt } = await import('mqtt');
  const subscriber = await mqtt.connectAsync(brokerUrl, { protocolVersion: 5, clientId: `${gateway}-central`, reconnectPeriod: 0 });
  subscriber.on('error', () => {});
  const received: ReceivedEvent[] = [];
  const states = new Set<string>();
  const telemetry: { arrivedMs: number; payload: Record<string, any> }[] = [];
  subscriber.on('message', (topic, payload) => {
    const arrivedMs = Date.now();
    const suffix = topic.slice(base.length + 1);
    let json: Record<string, any>;
    try {
      json = JSON.parse(payload.toString('utf8')) as Record<string, any>;
    } catch {
      return; // not a payload this bench reads
    }
    if (suffix === 'telemetry') telemetry.push({ arrivedMs, payload: json });
    else if (suffix.endsWith('/state')) states.add(String(json.channel));
    else if (suffix.endsWith('/urgency')) {
      received.push({ id: json.id, seq: json.seq, channel: json.channel, kind: json.kind, level: json.level, score: json.score, windowEndMs: Date.parse(json.window.end), arrivedMs });
    }
  });
  await subscriber.subscribeAsync(`${base}/#`, { qos: 1 });

  // The report after the run covers all of it: the first comes 2 s after start (before any
  // window: a window needs 3 s of speech), the second after this interval.
  const telemetrySeconds = seconds + 2;
  const pcmFile = join(dir, 'capture.s16le');
  const reportFile = join(dir, 'capture-report.json');
  writeFileSync(pcmFile, pcm);
  const capture = spawn(process.execPath, [captureDevice, '--pcm', pcmFile, '--channels', String(channels), '--rate', String(rate), '--report', reportFile, '--start-on-stdin'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let captureLog = '';
  capture.stderr!.on('data', (d: Buffer) => (captureLog += d.toString()));
  capture.stdin!.on('error', () => {});
  const captureExited = new Promise((resolve) => capture.once('exit', resolve));
  const daemon = new DaemonUnderTest({
    dir,
    stdin: capture.stdout!,
    config: {
      ...benchConfig({
        gateway,
        stateDir: dir,
        brokerUrl,
        telemetrySeconds,
        // The same fast tracker for a bundle without a head and for each emotion of one with it.
        urgency: { ...BENCH_URGENCY, emotions: { angry: BENCH_URGENCY, sad: BENCH_URGENCY } },
        sources: [{ type: 'stdin', inputRate: rate, channelCount: channels, channels: Array.from({ length: channels }, (_, c) => ({ index: c, id: `ch${c}` })) }],
      }),
      calls: { callSilenceSeconds: CALL_SILENCE_SECONDS },
    },
  });
  try {
    // Every channel announces its idle state once its source runs: the capture may begin.
    await daemon.waitUntil(() => states.size >= channels, 30_000, `the idle state of all ${channels} channels`);
    const spokenAt0 = Date.now() + 50;
    capture.stdin!.write(`start ${spokenAt0}\n`);
    const rss: number[] = [];
    const sampler = setInterval(() => {
      if (daemon.running) rss.push(daemon.rssMb());
    }, 500);
    await sleep(Math.max(0, spokenAt0 + WARMUP_SECONDS * 1000 - Date.now()));
    const cpuAtWarm = daemon.cpu();
    const warmAt = performance.now();
    await daemon.waitUntil(() => captureLog.includes('done'), (seconds + 30) * 1000, `the capture device to play ${seconds} s`);
    const cpuAtEnd = daemon.cpu();
    const measured = (performance.now() - warmAt) / 1000;
    clearInterval(sampler);
    // The last windows' events, then the report that covers the run.
    await daemon.waitUntil(() => telemetry.length >= 2, (telemetrySeconds + 15) * 1000, 'the telemetry report after the run');
    const logs = daemon.logs();
    const stopped = await daemon.stop();
    if (stopped.code !== 0) throw new Error(`the daemon exited with code ${stopped.code} (signal ${stopped.signal}) on SIGTERM; its log ends:\n${daemon.logTail()}`);
    const { lateness, periodMs } = JSON.parse(readFileSync(reportFile, 'utf8')) as CaptureReport;

    const loggedAt = new Map<string, number>();
    for (const line of logs) if (typeof line.msg === 'string' && line.msg.startsWith('urgency ') && typeof line.id === 'string') loggedAt.set(line.id, Date.parse(String(line.time)));

    const matchedPairs = matchEvents(expected, received);
    const late = matchedPairs.filter(({ want }) => want.endMs >= WARMUP_SECONDS * 1000);
    const spoken = (ms: number) => spokenAt0 + ms;
    /** How late the device wrote the period that completed the event's block. */
    const deviceLate = (want: ExpectedEvent) => lateness[Math.round(want.blockEndMs / periodMs) - 1] ?? 0;
    const report = telemetry[telemetry.length - 1]!.payload;
    const publish = report.pipeline?.latencyMs?.publish as { p50: number; p99: number } | undefined;
    return {
      channels,
      spoken_to_subscriber_ms: spread(late.map(({ want, got }) => got.arrivedMs - spoken(want.endMs))),
      daemon_puback_ms: { p50: publish?.p50 ?? null, p99: publish?.p99 ?? null },
      stamp_to_subscriber_ms: spread(late.map(({ got }) => got.arrivedMs - got.windowEndMs)),
      stamp_late_ms: spread(late.map(({ want, got }) => got.windowEndMs - spoken(want.endMs))),
      parts: {
        block_wait_ms: spread(late.map(({ want }) => want.blockEndMs - want.endMs)),
        device_late_ms: spread(late.map(({ want }) => deviceLate(want))),
        block_to_outbox_ms: spread(late.flatMap(({ want, got }) => (loggedAt.has(got.id) ? [loggedAt.get(got.id)! - spoken(want.blockEndMs) - deviceLate(want)] : []))),
        outbox_to_subscriber_ms: spread(late.flatMap(({ got }) => (loggedAt.has(got.id) ? [got.arrivedMs - loggedAt.get(got.id)!] : []))),
      },
      replica: {
        matched: matchedPairs.length,
        received: received.length,
        expected: [...expected.values()].reduce((n, list) => n + list.length, 0),
        mismatches: mismatches(expected, received).slice(0, 5),
      },
      device_late_ms: spread(lateness),
      dropped_windows: typeof report.pipeline?.droppedWindows === 'number' ? report.pipeline.droppedWindows : null,
      cpu_main_thread_percent: Math.round(((cpuAtEnd.mainThread - cpuAtWarm.mainThread) / measured) * 1000) / 10,
      cpu_process_percent: Math.round(((cpuAtEnd.process - cpuAtWarm.process) / measured) * 1000) / 10,
      rss_mb: Math.round(Math.max(...rss.slice(Math.ceil((WARMUP_SECONDS * 1000) / 500)))),
      seconds,
      daemon_warnings: daemon.warnings().slice(0, 5),
    };
  } finally {
    await daemon.stop();
    capture.stdin!.end();
    capture.kill();
    await captureExited;
    await subscriber.endAsync(true);
  }
}

/**
 * The events the daemon must raise for `pcm`: the daemon's own HeadsetChannel code on the
 * same blocks (the daemon's PCM path makes them), with the clock at each block's end, so an
 * event's window end is its stream time. Per channel id, in order.
 */
async function replicate(classifier: Classifier, pcm: Buffer, channels: number): Promise<Map<string, ExpectedEvent[]>> {
  const rate = classifier.manifest.features.sampleRate;
  const blocks: Float32Array[][] = [];
  for await (const block of pcmStreamBlocks(Readable.from([pcm]), { inputRate: rate, sampleRate: rate, channelCount: channels, blockMs: BLOCK_MS })) blocks.push(block);
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  const expected = new Map<string, ExpectedEvent[]>();
  const model = new ModelSlot({ initial: liveModel(classifier, { tracker: BENCH_TRACKER, emotions: { angry: BENCH_URGENCY, sad: BENCH_URGENCY } }, '') });
  const heads = Array.from({ length: channels }, (_, c) => {
    expected.set(`ch${c}`, []);
    return new HeadsetChannel({
      id: `ch${c}`,
      role: 'customer',
      model,
      windowing: DEFAULT_WINDOWING,
      callSilenceSeconds: CALL_SILENCE_SECONDS,
      bus,
      metrics,
    });
  });
  let clock = 0;
  bus.on('urgency', (e) => expected.get(e.channel)!.push({ kind: e.kind, level: e.level, score: round4(e.score), endMs: e.window.endMs, blockEndMs: clock }));
  // HeadsetChannel reads the wall clock as a block arrives; here the clock is stream time.
  const wallClock = Date.now;
  Date.now = () => clock;
  try {
    for (const [b, block] of blocks.entries()) {
      clock = (b + 1) * BLOCK_MS;
      for (let c = 0; c < channels; c++) heads[c]!.push(block[c]!);
    }
  } finally {
    Date.now = wallClock;
  }
  return expected;
}

/** The daemon's events paired with the replica's, per channel in seq order, up to the first that differs. */
function matchEvents(expected: Map<string, ExpectedEvent[]>, received: ReceivedEvent[]): { want: ExpectedEvent; got: ReceivedEvent }[] {
  const pairs: { want: ExpectedEvent; got: ReceivedEvent }[] = [];
  for (const [channel, wants] of expected) {
    const gots = received.filter((e) => e.channel === channel).sort((a, b) => a.seq - b.seq);
    for (let i = 0; i < Math.min(wants.length, gots.length); i++) {
      if (!same(wants[i]!, gots[i]!)) break;
      pairs.push({ want: wants[i]!, got: gots[i]! });
    }
  }
  return pairs;
}

function mismatches(expected: Map<string, ExpectedEvent[]>, received: ReceivedEvent[]): string[] {
  const out: string[] = [];
  for (const [channel, wants] of expected) {
    const gots = received.filter((e) => e.channel === channel).sort((a, b) => a.seq - b.seq);
    const i = gots.findIndex((g, j) => wants[j] === undefined || !same(wants[j]!, g));
    if (i >= 0) out.push(`${channel} event ${i}: daemon ${gots[i]!.kind} ${gots[i]!.level} ${gots[i]!.score}, replica ${wants[i] ? `${wants[i]!.kind} ${wants[i]!.level} ${wants[i]!.score}` : 'none'}`);
  }
  return out;
}

const same = (want: ExpectedEvent, got: ReceivedEvent) => want.kind === got.kind && want.level === got.level && Math.abs(want.score - got.score) < 1e-3;
const round4 = (x: number) => Math.min(1, Math.max(0, Number(x.toFixed(4))));
