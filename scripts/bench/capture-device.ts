/**
 * A stand-in for a capture device and its recorder (`arecord -t raw`): writes interleaved
 * s16le PCM from a file to stdout one period at a time, each as soon as its last sample has
 * been "spoken" on the wall clock, as ALSA hands a recorder its periods. A process of its
 * own, like arecord, so neither the bench's work nor the daemon's delays the audio; and it
 * never waits for its reader, so a daemon that falls behind shows as PCM queued here.
 *
 * Two ways to run it:
 *
 *   capture-device.js --pcm FILE --channels N --rate HZ --report FILE --start-on-stdin
 *     (the latency bench: the daemon's stdin source) waits for `start <epoch ms>` on stdin,
 *     plays the file once, then keeps stdout open until stdin ends, as a live line would.
 *
 *   arecord -D FILE -c N -r HZ … (the capacity bench: an `arecord` on the daemon's PATH that
 *     execs this, for its microphone sources) plays the file in a loop from the moment it
 *     starts, until SIGTERM, and writes its report into $BENCH_CAPTURE_REPORT_DIR.
 *
 * The report: when sample 0 was spoken, how late each period was written (ms), and per
 * period how much audio was waiting for the reader (ms of PCM not yet taken by the pipe).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

/** ALSA's usual period for telephony capture. */
const PERIOD_MS = 20;
const REPORT_EVERY_PERIODS = 1000 / PERIOD_MS;

export interface CaptureReport {
  startedAtMs: number;
  periodMs: number;
  /** How late each period was written, ms (its last sample's spoken time to the write). */
  lateness: number[];
  /** Per period, [epoch ms, ms of audio written but not yet taken by the reader]. */
  backlog: [number, number][];
}

const { values } = parseArgs({
  strict: false,
  options: {
    pcm: { type: 'string' },
    D: { type: 'string', short: 'D' },
    channels: { type: 'string' },
    c: { type: 'string', short: 'c' },
    rate: { type: 'string' },
    r: { type: 'string', short: 'r' },
    report: { type: 'string' },
    'start-on-stdin': { type: 'boolean' },
  },
});
const asString = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);
const pcmPath = asString(values.pcm) ?? asString(values.D);
const channels = Number(asString(values.channels) ?? asString(values.c));
const rate = Number(asString(values.rate) ?? asString(values.r));
if (pcmPath === undefined || !(channels > 0) || !(rate > 0)) {
  process.stderr.write('capture-device: needs --pcm FILE (or -D), --channels N (or -c) and --rate HZ (or -r)\n');
  process.exit(2);
}
const looping = values['start-on-stdin'] !== true;
const reportPath = asString(values.report) ?? join(process.env.BENCH_CAPTURE_REPORT_DIR ?? '.', `capture-${process.pid}.json`);
const pcm = readFileSync(pcmPath);
const bytesPerMs = (rate * channels * 2) / 1000;
const periodBytes = PERIOD_MS * bytesPerMs;
if (!Number.isInteger(periodBytes)) throw new Error(`capture-device: a ${PERIOD_MS} ms period at ${rate} Hz is not a whole number of frames`);

let startedAtMs = Date.now();
const lateness: number[] = [];
const backlog: [number, number][] = [];
// Renamed into place, so a reader never sees half a report.
const writeReport = () => {
  writeFileSync(`${reportPath}.partial`, JSON.stringify({ startedAtMs, periodMs: PERIOD_MS, lateness, backlog } satisfies CaptureReport));
  renameSync(`${reportPath}.partial`, reportPath);
};
// The reader is gone (the daemon stopped or died): what was measured is kept.
process.stdout.on('error', () => {
  writeReport();
  process.exit(0);
});
process.once('SIGTERM', () => {
  writeReport();
  process.exit(0);
});

let stdinEnded: Promise<void> = new Promise(() => {});
if (!looping) {
  const lines = createInterface({ input: process.stdin });
  stdinEnded = new Promise<void>((resolve) => lines.once('close', resolve));
  startedAtMs = await new Promise<number>((resolve, reject) => {
    lines.once('line', (line) => {
      const at = Number(/^start (\d+(?:\.\d+)?)$/.exec(line.trim())?.[1]);
      if (Number.isFinite(at)) resolve(at);
      else reject(new Error(`capture-device: expected "start <epoch ms>", got ${JSON.stringify(line)}`));
    });
  });
}

// performance.now() schedules (monotonic, sub-ms); the offset maps it to the epoch clock the daemon stamps with.
const perfAtStart = performance.now() + (startedAtMs - Date.now());
const periods = Math.ceil(pcm.length / periodBytes);
for (let k = 0; looping || k < periods; k++) {
  const dueMs = (k + 1) * PERIOD_MS;
  const wait = perfAtStart + dueMs - performance.now();
  if (wait > 0) await sleep(wait);
  lateness.push(Math.round((performance.now() - perfAtStart - dueMs) * 10) / 10);
  const at = (k % periods) * periodBytes;
  // Never waits for the reader: a daemon slow to read shows as its backlog, not as a late device.
  process.stdout.write(pcm.subarray(at, at + periodBytes));
  backlog.push([Math.round(startedAtMs + dueMs), Math.round(process.stdout.writableLength / bytesPerMs)]);
  // Looping devices also report every second: one that is killed outright (its recorder's
  // SIGTERM grace ran out on a starved machine) still leaves what it measured.
  if (looping && k % REPORT_EVERY_PERIODS === REPORT_EVERY_PERIODS - 1) writeReport();
}
writeReport();
process.stderr.write('done\n');
await stdinEnded;
