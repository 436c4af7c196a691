/**
 * The daemon's own figures:
 *
 * - `channels_per_core`: seconds of 16 kHz audio carried per CPU second through the whole
 *   per-channel path (VAD → features → model → urgency → outbox append, fsync included),
 *   across 8 channels of speech-like signal: how many real-time channels one core keeps up with.
 * - `publish_latency_p99_ms`: from the end of an event's audio window to the broker's
 *   PUBACK (outbox fsync, publish, ack), on loopback, embedded broker and mosquitto if installed.
 * - `rss_mb_8_channels`: peak resident memory of `ser-edge run` with 8 real-time channels,
 *   measured in a child process over ~10 s.
 *
 *   npm run build && node dist/scripts/bench/bench-daemon.js
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_WINDOWING } from '../../src/audio/speech-windower.js';
import { DaemonBus } from '../../src/daemon/daemon-events.js';
import { EmbeddedBroker } from '../../src/daemon/embedded-broker.js';
import { HeadsetChannel } from '../../src/daemon/headset-channel.js';
import { TimedOutbox } from '../../src/daemon/timed-outbox.js';
import type { Classifier } from '../../src/model/classifier.js';
import { MqttLink } from '../../src/mqtt/mqtt-link.js';
import { Outbox } from '../../src/mqtt/outbox.js';
import { SCHEMA_VERSION, type UrgencyEvent } from '../../src/mqtt/payload-schemas.js';
import { UrgencyPublisher } from '../../src/mqtt/urgency-publisher.js';
import { LatencyHistogram } from '../../src/telemetry/latency-histogram.js';
import { PipelineMetrics } from '../../src/telemetry/pipeline-metrics.js';
import { DEFAULT_URGENCY_WEIGHTS, weightsForLabels } from '../../src/urgency/urgency-score.js';
import { DEFAULT_TRACKER_CONFIG } from '../../src/urgency/urgency-tracker.js';
import { ulid } from 'ulid';
import { benchSignal } from './bench-classify.js';


/** Audio seconds per CPU second through N headset channels, each with its own stream, tracker and the shared outbox. */
export async function benchChannelsPerCore(classifier: Classifier, channels = 8, seconds = 30): Promise<{ channels_per_core: number; windows: number; events: number }> {
  const sampleRate = classifier.manifest.features.sampleRate;
  const signal = benchSignal(seconds, sampleRate);
  const outbox = new Outbox({ dir: mkdtempSync(join(tmpdir(), 'ser-edge-bench-outbox-')), maxBytes: 16 * 1024 * 1024 });
  await outbox.start();
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  const appends: Promise<void>[] = [];
  bus.on('urgency', (change) => {
    const event: UrgencyEvent = {
      schema: SCHEMA_VERSION,
      id: ulid(),
      seq: outbox.nextSeq(),
      ts: new Date().toISOString(),
      site: 'bench',
      gateway: 'bench',
      channel: change.channel,
      callId: change.callId,
      kind: change.kind,
      level: change.level,
      score: Math.min(1, change.score),
      emotion: change.emotion,
      probabilities: change.probabilities,
      model: { name: classifier.manifest.name, version: classifier.manifest.version },
      window: { start: new Date(change.window.startMs).toISOString(), end: new Date(change.window.endMs).toISOString() },
    };
    appends.push(outbox.append(event));
  });
  const labelWeights = weightsForLabels(classifier.labels, DEFAULT_URGENCY_WEIGHTS);
  const heads = Array.from({ length: channels }, (_, i) =>
    new HeadsetChannel({
      id: `ch${i}`,
      role: 'customer',
      classifier,
      labelWeights,
      tracker: DEFAULT_TRACKER_CONFIG,
      windowing: DEFAULT_WINDOWING,
      callSilenceSeconds: 30,
      bus,
      metrics,
    }),
  );
  const block = sampleRate / 10;
  const start = process.cpuUsage();
  for (let at = 0; at + block <= signal.length; at += block) {
    // Each channel starts at another point of the signal, so they are not in lockstep.
    for (let c = 0; c < channels; c++) {
      const from = (at + c * 7 * sampleRate) % (signal.length - block);
      heads[c]!.push(signal.subarray(from, from + block));
    }
  }
  await Promise.all(appends);
  const used = process.cpuUsage(start);
  await outbox.stop();
  const cpu = (used.user + used.system) / 1e6;
  return { channels_per_core: Math.round(metrics.audioSeconds / cpu), windows: metrics.windows, events: appends.length };
}

/** Window end → PUBACK through outbox, publisher and link, for `count` flags at `perSecond`. */
export async function benchPublishLatency(brokerUrl: string, count = 300, perSecond = 50): Promise<{ p50: number; p99: number }> {
  const latency = new LatencyHistogram();
  const outbox = new TimedOutbox({ dir: mkdtempSync(join(tmpdir(), 'ser-edge-bench-pub-')), maxBytes: 16 * 1024 * 1024, onPublished: (ms) => latency.record(ms) });
  await outbox.start();
  const link = new MqttLink({
    url: brokerUrl,
    clientId: `ser-edge-bench-${process.pid}`,
    site: 'bench',
    gateway: 'bench',
    statusInfo: () => ({ version: 'bench', model: null, backend: null }),
  });
  const publisher = new UrgencyPublisher({ link, outbox });
  await publisher.start();
  await link.start();
  await link.waitForConnection(10_000);
  for (let i = 0; i < count; i++) {
    const end = Date.now();
    const event = await publisher.flag({
      channel: `ch${i % 8}`,
      callId: 'bench-call',
      kind: i % 2 ? 'clear' : 'raise',
      level: i % 2 ? 'low' : 'high',
      score: 0.7,
      emotion: 'angry',
      probabilities: { angry: 0.7, neutral: 0.3 },
      model: { name: 'bench', version: '0' },
      window: { start: new Date(end - 3000).toISOString(), end: new Date(end).toISOString() },
    });
    outbox.watch(event.id, end);
    await new Promise((r) => setTimeout(r, 1000 / perSecond));
  }
  const deadline = Date.now() + 5000;
  while (outbox.depth > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await publisher.stop();
  await link.stop();
  await outbox.stop();
  return { p50: round(latency.quantile(0.5) ?? NaN), p99: round(latency.quantile(0.99) ?? NaN) };
}

/** Peak RSS (MB) and CPU share of `ser-edge run` with 8 real-time demo channels on the embedded broker. */
export async function benchDaemonRss(seconds = 10, channels = 8): Promise<{ rss_mb: number; cpu_percent: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ser-edge-bench-rss-'));
  const config = join(dir, 'bench.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: 'generic-linux',
      site: 'bench',
      gateway: 'bench-rss',
      stateDir: dir,
      logLevel: 'warn',
      mqtt: { embedded: { port: 0 } },
      sources: Array.from({ length: channels }, (_, i) => ({ type: 'demo', calmSeconds: 5 + i, angrySeconds: 5, channels: [{ id: `desk-${i}` }] })),
    }),
  );
  const cli = fileURLToPath(new URL('../../../bin/ser-edge.js', import.meta.url));
  const child = spawn(process.execPath, [cli, 'run', '--config', config], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let peak = 0;
  const ticks = () => {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  // Start-up (model load, demo synthesis) is not the steady state being measured.
  await new Promise((r) => setTimeout(r, 3000));
  const startTicks = ticks();
  const startedAt = performance.now();
  while (performance.now() - startedAt < seconds * 1000) {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    peak = Math.max(peak, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    await new Promise((r) => setTimeout(r, 250));
  }
  const cpuSeconds = (ticks() - startTicks) / 100;
  child.kill('SIGTERM');
  await exited;
  return { rss_mb: round(peak), cpu_percent: round((cpuSeconds / seconds) * 100) };
}

export async function benchDaemon(classifier: Classifier, options: { mosquittoUrl?: string } = {}) {
  const throughput = await benchChannelsPerCore(classifier);
  const broker = new EmbeddedBroker({ port: 0 });
  await broker.start();
  const embedded = await benchPublishLatency(broker.url);
  await broker.stop();
  const mosquitto = options.mosquittoUrl ? await benchPublishLatency(options.mosquittoUrl) : undefined;
  const rss = await benchDaemonRss();
  return {
    channels_per_core: throughput.channels_per_core,
    publish_latency_p99_ms: mosquitto?.p99 ?? embedded.p99,
    publish_latency_ms: { embedded_aedes: embedded, ...(mosquitto ? { mosquitto } : {}) },
    rss_mb_8_channels: rss.rss_mb,
    cpu_percent_8_channels: rss.cpu_percent,
  };
}

const round = (x: number) => Number(x.toFixed(2));


if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { loadClassifier } = await import('../../src/model/load-classifier.js');
  const { defaultModelDir } = await import('../../src/config/package-paths.js');
  const { MOSQUITTO_MISSING, startMosquitto } = await import('../../test/helpers/mosquitto.js');
  const classifier = await loadClassifier(defaultModelDir());
  const mosquitto = MOSQUITTO_MISSING ? undefined : await startMosquitto();
  process.stdout.write(`${JSON.stringify(await benchDaemon(classifier, mosquitto ? { mosquittoUrl: mosquitto.url } : {}))}\n`);
  await mosquitto?.stop();
  classifier.dispose();
}
