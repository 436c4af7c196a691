/**
 * `channels_per_core`: the most real-time channels one daemon keeps up with. Each probe
 * runs `ser-edge run` (a child process: one Node main thread, i.e. one core) with N
 * channels on microphone sources of 32 channels each (the largest capture the config
 * allows), the shipped model and urgency settings, a real mosquitto, and telemetry every
 * 5 s. The recorder each source starts is an `arecord` on the daemon's PATH that replays
 * 32 callers in real time (capture-device.ts), so the audio takes the daemon's real path
 * from a recorder's pipe, and how far the daemon is behind is measured outside it: the
 * audio each device has written that the daemon has not yet read.
 *
 * Kept up means, over a measurement interval after a warm-up: no window dropped (the
 * daemon's `droppedWindows`, read from its loopback Prometheus endpoint), no device more
 * than LAG_LIMIT_MS of audio ahead of the daemon at the end, and that backlog not grown by
 * more than LAG_GROWTH_LIMIT_MS over the interval. (A daemon still working off its start-up
 * backlog, each recorder it spawned having held it up, is keeping up; the largest backlog
 * seen is reported beside.) The largest N found by
 * doubling, then bisection, is the figure; each probe's CPU use (main thread and whole
 * process) is reported with it.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { CaptureReport } from './capture-device.js';
import { benchConfig, DaemonUnderTest } from './daemon-under-test.js';
import { callerSignal, interleaveS16le, type SpeechClips } from './replay-speech.js';
import { quantile, round1 } from './stats.js';

export const CHANNELS_PER_SOURCE = 32;
/** Distinct recordings; sources beyond these replay them again, started at other moments. */
const DISTINCT_RECORDINGS = 8;
/** A whole number of the devices' 20 ms periods, so the loop stays on the schedule. */
const LOOP_SECONDS = 12;
/** Telemetry (and its health probe, which runs child processes) six times as often as the profile's 30 s. */
const TELEMETRY_SECONDS = 5;
/** After the last source started: JIT, the first windows of every call, start-up backlog. */
const WARMUP_SECONDS = 5;
const MEASURE_SECONDS = 6;
/**
 * Audio a device may hold for the daemon at the end of the interval: ten capture blocks. The daemon
 * drops windows only past audio.maxLagSeconds (5 s), but a daemon a second behind has
 * stopped keeping up: its flags are late by as much, and its event loop is stalling.
 * (Up to ~130 ms more can sit unseen in the pipe and the daemon's read buffer.)
 */
const LAG_LIMIT_MS = 1000;
/** A daemon that keeps up holds its backlog; one that does not falls (1 − capacity/N) s behind per second. */
const LAG_GROWTH_LIMIT_MS = 200;
const START_TIMEOUT_MS = 20_000;
/** Waiting for a core this much of the interval is said beside a failure. */
const CONTENDED_PERCENT = 10;

const captureDevice = fileURLToPath(new URL('./capture-device.js', import.meta.url));

export interface CapacityProbe {
  channels: number;
  keptUp: boolean;
  /** Why not, or that it kept up. */
  why: string;
  /** The bench, not the daemon, failed to measure this count (the search tries it again). */
  harnessFailed?: boolean;
  /** The devices' backlog (audio the daemon had not read, ms): the largest at the interval's start and end, and at any period. */
  lagMs: { start: number; end: number; max: number } | null;
  droppedWindows: number | null;
  /** CPU over the interval, % of one core. */
  cpuMainThreadPercent: number | null;
  cpuProcessPercent: number | null;
  /**
   * Share of the interval the main thread was ready but waited for a core (other processes
   * on the machine): a daemon that falls behind while this is high lacked a core, not speed.
   */
  waitingForCpuPercent: number | null;
  /** Urgency events that reached the subscriber in the interval, and arrival − window.end of them (ms, the daemon's stamp). */
  events: number;
  eventP99Ms: number | null;
  /** Telemetry reports published in the interval: telemetry kept going under the load. */
  telemetryReports: number;
  /** How late the devices wrote their periods (p99, ms): the machine's load, not the daemon. */
  deviceLateP99Ms: number | null;
  wallSeconds: number;
}

export interface Recordings {
  /** Raw s16le files of CHANNELS_PER_SOURCE callers each. */
  files: string[];
  /** A directory with the `arecord` that plays them. */
  binDir: string;
}

/** The recordings the probes replay and the `arecord` that plays them, written once into `dir`. */
export function writeRecordings(dir: string, clips: SpeechClips, sampleRate: number): Recordings {
  const files = Array.from({ length: DISTINCT_RECORDINGS }, (_, r) => {
    const channels = Array.from({ length: CHANNELS_PER_SOURCE }, (_, k) => callerSignal(clips, r * CHANNELS_PER_SOURCE + k, LOOP_SECONDS, sampleRate));
    const path = join(dir, `callers-${r}.s16le`);
    writeFileSync(path, interleaveS16le(channels));
    return path;
  });
  const binDir = join(dir, 'bin');
  mkdirSync(binDir, { recursive: true });
  const arecord = join(binDir, 'arecord');
  writeFileSync(arecord, `#!/bin/sh\n# The capacity bench's capture device: -D names the recording to replay.\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(captureDevice)} "$@"\n`);
  chmodSync(arecord, 0o755);
  return { files, binDir };
}

let runs = 0;

/** One daemon with `channels` real-time channels: did it keep up? */
export async function probeChannels(options: { recordings: Recordings; channels: number; brokerUrl: string }): Promise<CapacityProbe> {
  const { recordings, channels, brokerUrl } = options;
  const startedAt = performance.now();
  const dir = mkdtempSync(join(tmpdir(), `ser-edge-bench-capacity-${channels}-`));
  const reportDir = join(dir, 'captures');
  mkdirSync(reportDir);
  const gateway = `bench-capacity-${channels}ch-${process.pid}-${++runs}`;
  const base = `ser/v1/bench/${gateway}`;
  const sources = [];
  for (let s = 0, left = channels; left > 0; s++, left -= CHANNELS_PER_SOURCE) {
    const count = Math.min(CHANNELS_PER_SOURCE, left);
    sources.push({
      type: 'microphone',
      recorder: 'arecord',
      device: recordings.files[s % recordings.files.length]!,
      channelCount: CHANNELS_PER_SOURCE,
      channels: Array.from({ length: count }, (_, k) => ({ index: k, id: `s${s}c${k}` })),
    });
  }

  const { default: mqtt } = await import('mqtt');
  const subscriber = await mqtt.connectAsync(brokerUrl, { protocolVersion: 5, clientId: `${gateway}-central`, reconnectPeriod: 0 });
  subscriber.on('error', () => {});
  const events: { arrivedMs: number; windowEndMs: number }[] = [];
  const telemetryAt: number[] = [];
  subscriber.on('message', (topic, payload) => {
    const arrivedMs = Date.now();
    if (topic.endsWith('/telemetry')) telemetryAt.push(arrivedMs);
    else {
      const end = Date.parse((JSON.parse(payload.toString('utf8')) as { window?: { end?: string } }).window?.end ?? '');
      if (Number.isFinite(end)) events.push({ arrivedMs, windowEndMs: end });
    }
  });
  await subscriber.subscribeAsync([`${base}/telemetry`, `${base}/channel/+/urgency`], { qos: 1 });

  const probe = (keptUp: boolean, why: string, extra: Partial<CapacityProbe> = {}): CapacityProbe => ({
    channels,
    keptUp,
    why,
    lagMs: null,
    droppedWindows: null,
    cpuMainThreadPercent: null,
    cpuProcessPercent: null,
    waitingForCpuPercent: null,
    events: 0,
    eventP99Ms: null,
    telemetryReports: 0,
    deviceLateP99Ms: null,
    ...extra,
    wallSeconds: round1((performance.now() - startedAt) / 1000),
  });
  let daemon: DaemonUnderTest | undefined;
  try {
    daemon = new DaemonUnderTest({
      dir,
      config: benchConfig({ gateway, stateDir: dir, brokerUrl, telemetrySeconds: TELEMETRY_SECONDS, prometheus: true, sources }),
      env: { PATH: `${recordings.binDir}${delimiter}${process.env.PATH ?? ''}`, BENCH_CAPTURE_REPORT_DIR: reportDir },
    });
    const running = () => daemon!.logs().filter((l) => l.msg === 'audio source running');
    // A daemon that cannot open its sources in this time is overwhelmed already.
    await daemon.waitUntil(() => running().length >= sources.length, START_TIMEOUT_MS, `all ${sources.length} sources to run`, 250);
    const url = String(daemon.logs().find((l) => typeof l.url === 'string' && String(l.msg).startsWith('Prometheus endpoint'))?.url ?? '');
    if (url === '') throw new Error('the daemon did not log its Prometheus endpoint');
    const lastStart = Math.max(...running().map((l) => Date.parse(String(l.time))));
    const sample = async () => {
      const scraped = await daemon!.scrape(url);
      const dropped = scraped.values.get('ser_edge_dropped_windows_total');
      if (dropped === undefined) throw new Error('the Prometheus endpoint has no ser_edge_dropped_windows_total');
      return { atMs: scraped.atMs, cpu: daemon!.cpu(), dropped };
    };
    await sleep(Math.max(0, lastStart + WARMUP_SECONDS * 1000 - Date.now()));
    const first = await sample();
    await sleep(MEASURE_SECONDS * 1000);
    const last = await sample();
    await stopChecked(daemon);

    const seconds = (last.atMs - first.atMs) / 1000;
    // Each device writes its report as the daemon's SIGTERM reaches it; a busy machine can take a moment.
    const reported = () => readdirSync(reportDir).filter((name) => name.endsWith('.json')).length >= sources.length;
    for (const until = Date.now() + 15_000; !reported() && Date.now() < until; ) await sleep(100);
    const devices = readCaptureReports(reportDir, first.atMs, last.atMs);
    if (devices.length < sources.length) throw new HarnessError(`only ${devices.length} of ${sources.length} capture devices reported; the daemon's log ends:\n${daemon.logTail()}`);
    const lag = {
      start: Math.max(...devices.map((d) => d.start)),
      end: Math.max(...devices.map((d) => d.end)),
      max: Math.max(...devices.map((d) => d.max)),
    };
    const dropped = last.dropped - first.dropped;
    const inInterval = events.filter((e) => e.arrivedMs > first.atMs && e.arrivedMs <= last.atMs);
    const measured: Partial<CapacityProbe> = {
      lagMs: lag,
      droppedWindows: dropped,
      cpuMainThreadPercent: round1(((last.cpu.mainThread - first.cpu.mainThread) / seconds) * 100),
      cpuProcessPercent: round1(((last.cpu.process - first.cpu.process) / seconds) * 100),
      waitingForCpuPercent: round1(((last.cpu.mainThreadWaiting - first.cpu.mainThreadWaiting) / seconds) * 100),
      events: inInterval.length,
      eventP99Ms: quantile(inInterval.map((e) => e.arrivedMs - e.windowEndMs), 0.99),
      telemetryReports: telemetryAt.filter((t) => t > first.atMs && t <= last.atMs).length,
      deviceLateP99Ms: quantile(devices.flatMap((d) => d.lateness), 0.99),
    };
    const problems = [
      ...(dropped > 0 ? [`${dropped} windows dropped`] : []),
      ...(lag.end > LAG_LIMIT_MS ? [`the daemon was ${lag.end} ms behind a device at the end (limit ${LAG_LIMIT_MS} ms)`] : []),
      ...(lag.end - lag.start > LAG_GROWTH_LIMIT_MS ? [`the daemon fell ${lag.end - lag.start} ms further behind in ${round1(seconds)} s`] : []),
    ];
    const contended = measured.waitingForCpuPercent! >= CONTENDED_PERCENT ? ` (its main thread waited for a core ${measured.waitingForCpuPercent}% of the time: the machine is busy)` : '';
    return probe(problems.length === 0, problems.length === 0 ? 'kept up' : problems.join('; ') + contended, measured);
  } catch (error) {
    // A daemon that stalls or dies under the load did not keep up; the error says how.
    return probe(false, (error as Error).message.split('\n')[0]!, error instanceof HarnessError ? { harnessFailed: true } : {});
  } finally {
    await daemon?.stop();
    await subscriber.endAsync(true);
  }
}

/** The bench's own part failed, not the daemon under test. */
class HarnessError extends Error {
  override name = 'HarnessError';
}

/** Each device's backlog over [fromMs, toMs]: at the start, the end, the most; and its lateness there. */
function readCaptureReports(dir: string, fromMs: number, toMs: number): { start: number; end: number; max: number; lateness: number[] }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as CaptureReport)
    .map((report) => {
      const inside = report.backlog.map((b, i) => ({ atMs: b[0], ms: b[1], late: report.lateness[i] ?? 0 })).filter((b) => b.atMs >= fromMs && b.atMs <= toMs);
      return {
        start: inside[0]?.ms ?? 0,
        end: inside[inside.length - 1]?.ms ?? 0,
        max: Math.max(0, ...inside.map((b) => b.ms)),
        lateness: inside.map((b) => b.late),
      };
    });
}

async function stopChecked(daemon: DaemonUnderTest): Promise<void> {
  const { code, signal } = await daemon.stop();
  if (code !== 0) throw new Error(`the daemon exited with code ${code} (signal ${signal}) on SIGTERM; its log ends:\n${daemon.logTail()}`);
}

/**
 * The largest channel count `probe` passes: doubling from `start` until one fails, then
 * bisection (on multiples of `step`) until the bracket is within an eighth of the count
 * (or one step). A first probe that fails halves down instead, to `step`.
 */
export async function searchChannels(
  probe: (channels: number) => Promise<CapacityProbe>,
  options: { start: number; max: number; step: number },
): Promise<{ channels: number; probes: CapacityProbe[] }> {
  const { start, max, step } = options;
  const probes: CapacityProbe[] = [];
  const run = async (n: number) => {
    let result = await probe(n);
    probes.push(result);
    // A probe the bench itself failed (a capture device that never reported) says nothing
    // about the daemon: it gets one more try.
    if (result.harnessFailed === true) {
      result = await probe(n);
      probes.push(result);
    }
    return result.keptUp;
  };
  let lo = 0;
  let hi = start;
  if (await run(start)) {
    lo = start;
    for (hi = Math.min(max, start * 2); hi > lo; hi = Math.min(max, hi * 2)) {
      if (!(await run(hi))) break;
      lo = hi;
    }
    if (lo === max) return { channels: lo, probes };
  } else {
    // Far below the start: halve until one passes, then bisect above it.
    for (hi = start; hi > step; ) {
      const n = Math.max(step, roundTo(hi / 2, step));
      if (await run(n)) {
        lo = n;
        break;
      }
      hi = n;
    }
    if (lo === 0) return { channels: 0, probes };
  }
  while (hi - lo > Math.max(step, lo / 8)) {
    const mid = roundTo((lo + hi) / 2, step);
    if (mid <= lo || mid >= hi) break;
    if (await run(mid)) lo = mid;
    else hi = mid;
  }
  return { channels: lo, probes };
}

const roundTo = (x: number, step: number) => Math.round(x / step) * step;
