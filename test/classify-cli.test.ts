import { test, before } from 'node:test';
import { UrgencyStage } from '../src/urgency/call-urgency.js';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { scanDataset } from '../src/datasets/scan-dataset.js';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { extractClipWindows } from '../src/training/clip-windows.js';
import { buildKnnModel, poolWindows } from '../src/training/knn-trainer.js';
import { handmadeWav, tempDir, writeWav } from './helpers/audio-fixtures.js';
import { describeVerdict } from '../src/commands/classify-command.js';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import type { FileVerdict } from '../src/pipeline/classify-file.js';
import { levelForScore } from '../src/urgency/urgency-score.js';
import { DEFAULT_TRACKER_CONFIG } from '../src/urgency/urgency-tracker.js';
import { writeSyntheticDataset } from './helpers/synthetic-dataset.js';
import { findOnPath } from '../src/audio/microphone-source.js';

const run = promisify(execFile);
const opusenc = await findOnPath('opusenc');
const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));
const dir = tempDir('ser-edge-cli-');
const modelDir = join(dir, 'model');

async function classify(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'classify', '--model', modelDir, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

before(async () => {
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 2, perClass: 3 });
  const items = await extractClipWindows(await scanDataset(csv), { features: DEFAULT_FEATURE_CONFIG });
  const labels = ['neutral', 'sad', 'angry'] as const;
  const model = buildKnnModel(poolWindows(items, [...labels]), { name: 'synthetic', version: '0.0.1', labels: [...labels], features: DEFAULT_FEATURE_CONFIG, k: 3, metric: 'l1' });
  await writeBundle(modelDir, model.draft, model.files);
});

test('classify --json prints one object per file with its emotion, probabilities, urgency and windows', async () => {
  const angry = join(dir, 'angry.wav');
  await writeWav(angry, [synthesiseVoice(VOICE_STYLES.angry, 6, 16000, 999)], 16000, '16');
  const calm = join(dir, 'calm.flac.wav');
  await writeWav(calm, [synthesiseVoice(VOICE_STYLES.calm, 6, 16000, 998)], 16000, '24');
  const { code, stdout } = await classify('--json', angry, calm);
  assert.equal(code, 0);
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].file, angry);
  assert.equal(lines[0].emotion, 'angry');
  assert.equal(lines[0].urgency.level, 'high');
  assert.equal(lines[1].emotion, 'neutral');
  assert.equal(lines[1].urgency.level, 'low');
  const sum = Object.values(lines[0].probabilities as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-2);
  assert.ok(lines[0].windows.length >= 2, 'a 6 s file has several 3 s windows at a 1 s hop');
  for (const w of lines[0].windows) assert.ok(w.end > w.start && w.end <= 6.01);
});

test('a 48 kHz stereo file is resampled and classified like its 16 kHz original', async () => {
  const voice16 = synthesiseVoice(VOICE_STYLES.angry, 4, 48000, 7);
  const path = join(dir, 'stereo48k.wav');
  await writeWav(path, [voice16, voice16], 48000, '16');
  const { code, stdout } = await classify('--json', path);
  assert.equal(code, 0);
  assert.equal(JSON.parse(stdout).emotion, 'angry');
});

test('bad files each get one clear error line, the good ones still run, and the exit code is non-zero', async () => {
  const good = join(dir, 'good.wav');
  await writeWav(good, [synthesiseVoice(VOICE_STYLES.sad, 3, 16000, 5)], 16000, '8');
  const text = join(dir, 'notes.wav');
  await writeFile(text, 'this is not audio\n');
  const empty = join(dir, 'empty.wav');
  await writeFile(empty, '');
  const truncated = join(dir, 'truncated.wav');
  await writeFile(truncated, handmadeWav({ formatCode: 1, rate: 16000, channels: 1, bitsPerSample: 16, data: new Uint8Array(100) }).subarray(0, 20));
  const missing = join(dir, 'missing.wav');
  // A whole 3 s recording cut in half, as a copy interrupted midway leaves it.
  const half = join(dir, 'half.wav');
  const whole = await readFile(good);
  await writeFile(half, whole.subarray(0, 44 + (whole.length - 44) / 2));
  const { code, stdout, stderr } = await classify('--json', text, good, empty, truncated, half, missing);
  assert.equal(code, 1);
  const results = stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(results.map((r) => r.file), [good]);
  const errors = stderr.trim().split('\n');
  assert.equal(errors.length, 5);
  assert.match(errors[0]!, /notes\.wav: not a WAV, FLAC or Ogg Opus file/);
  assert.match(errors[1]!, /empty\.wav: .*empty/);
  assert.match(errors[2]!, /truncated\.wav: .*truncated/i);
  assert.match(errors[3]!, /half\.wav: only 24000 of the 48000 data bytes its header declares are in the file \(24000 of 48000 samples per channel, 1\.50 of 3\.00 s\); the file is truncated/);
  assert.match(errors[4]!, /missing\.wav: no such file/);
});

test('an Ogg Opus recording is classified as its WAV original is; one cut in half gets an error line, the others still run, and the exit code is 1', { skip: opusenc === undefined && 'opusenc absent (Debian: apt-get install opus-tools): skipping the Ogg Opus classify test' }, async () => {
  const wav = join(dir, 'angry-call.wav');
  await writeWav(wav, [synthesiseVoice(VOICE_STYLES.angry, 6, 16000, 321)], 16000, '16');
  const opus = join(dir, 'angry-call.opus');
  execFileSync(opusenc!, ['--quiet', '--bitrate', '64', wav, opus], { stdio: 'pipe' });
  const half = join(dir, 'angry-call-half.opus');
  const whole = await readFile(opus);
  await writeFile(half, whole.subarray(0, whole.length / 2));
  const { code, stdout, stderr } = await classify('--json', wav, half, opus);
  assert.equal(code, 1);
  const [fromWav, fromOpus] = stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(fromOpus.file, opus);
  assert.equal(fromOpus.durationSeconds, fromWav.durationSeconds);
  assert.equal(fromOpus.emotion, 'angry');
  assert.equal(fromOpus.urgency.level, fromWav.urgency.level);
  assert.equal(fromOpus.windows.length, fromWav.windows.length);
  const errors = stderr.trim().split('\n');
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /angry-call-half\.opus: the file ends at byte \d+, inside Ogg page \d+.*; the file is truncated/);
});

test('a silent file is reported as having no speech, not as an emotion', async () => {
  const path = join(dir, 'silence.wav');
  await writeWav(path, [new Float32Array(16000 * 2)], 16000, '16');
  const { code, stdout } = await classify('--json', path);
  assert.equal(code, 0);
  const v = JSON.parse(stdout);
  assert.equal(v.emotion, null);
  assert.deepEqual(v.windows, []);
  assert.equal(v.urgency.level, 'low');
});

test('a model directory that is not a bundle is refused with a clear message', async () => {
  const { code, stderr } = await run(process.execPath, [cli, 'classify', '--model', dir, join(dir, 'x.wav')]).catch((e) => e);
  assert.equal(code, 2);
  assert.match(stderr, /no manifest\.json here/);
});

test('a hop longer than the window is refused once, naming both flags, before the model or any file is read', async () => {
  const a = join(dir, 'never-read-a.wav');
  const b = join(dir, 'never-read-b.wav');
  const { code, stdout, stderr } = await run(process.execPath, [cli, 'classify', '--model', join(dir, 'no-model-here'), '--window', '1', '--hop', '2', a, b]).catch((e) => e);
  assert.equal(code, 2);
  assert.equal(stdout, '');
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /--hop 2 .*--window 1/);
  assert.doesNotMatch(stderr, /never-read|manifest/);
});

/** A verdict as classify makes one, for the text summary's own rules. */
function verdictOf(overrides: { score: number; level: 'low' | 'medium' | 'high'; trackedPeak: 'low' | 'medium' | 'high'; trackedPeakScore?: number; windows?: number }): FileVerdict {
  const window = { start: 0.2, end: 3.2, speechSeconds: 3, emotion: 'angry' as const, probabilities: { angry: overrides.score, neutral: 1 - overrides.score }, urgency: { level: overrides.level, score: overrides.score, driver: 'weighted' as const } };
  return {
    file: 'clip.wav',
    durationSeconds: 3.5,
    emotion: 'angry',
    probabilities: { angry: overrides.score, neutral: 1 - overrides.score },
    urgency: { level: overrides.level, score: overrides.score, driver: 'weighted', trackedPeak: overrides.trackedPeak, trackedPeakScore: overrides.trackedPeakScore ?? overrides.score / 2, trackedDriver: 'weighted' },
    windows: Array.from({ length: overrides.windows ?? 1 }, (_, i) => ({ ...window, start: window.start + i, end: window.end + i })),
  };
}
// A model without a trained head: one weighted score on the daemon's default tracker.
const settings = { urgency: UrgencyStage.of({ labels: ['neutral', 'angry'], manifest: {} }), windowing: DEFAULT_WINDOWING };

test('a clip that scores high as a whole but never raised the live tracker says why, instead of "high … peak: low"', async () => {
  const angry = join(dir, 'one-window-angry.wav');
  await writeWav(angry, [synthesiseVoice(VOICE_STYLES.angry, 2.5, 16000, 31)], 16000, '16');
  const json = JSON.parse((await classify('--json', angry)).stdout);
  assert.equal(json.windows.length, 1);
  assert.equal(json.urgency.level, 'high');
  assert.equal(json.urgency.trackedPeak, 'low');
  assert.ok(json.urgency.trackedPeakScore < DEFAULT_TRACKER_CONFIG.thresholds.high);
  const { stdout } = await classify(angry);
  const head = stdout.split('\n')[0]!;
  assert.match(head, /whole-file score 0\.\d{3} \(high\); live tracker reached low \(it raises high after 2 windows in a row with a smoothed score ≥ 0\.7; this file has 1 window\)$/);
  assert.doesNotMatch(stdout, /peak: low/);
});

test('the summary says what kept the tracker below the whole-file level, and says nothing when they agree', () => {
  assert.match(describeVerdict(verdictOf({ score: 0.8, level: 'high', trackedPeak: 'medium', trackedPeakScore: 0.6612, windows: 4 }), settings), /live tracker reached medium \(it raises high after 2 windows in a row with a smoothed score ≥ 0\.7; its smoothed score peaked at 0\.661\)/);
  assert.match(describeVerdict(verdictOf({ score: 0.8, level: 'high', trackedPeak: 'high', windows: 4 }), settings).split('\n')[0]!, /whole-file score 0\.800 \(high\); live tracker reached high$/);
  assert.match(describeVerdict(verdictOf({ score: 0.45, level: 'low', trackedPeak: 'medium', windows: 6 }), settings), /live tracker reached medium \(a stretch of the file was more urgent than the file as a whole\)/);
});

test('a score just under a threshold is printed under it: 0.6996 reads 0.699 beside medium, never 0.70', () => {
  const text = describeVerdict(verdictOf({ score: 0.6996, level: 'medium', trackedPeak: 'medium' }), settings);
  assert.match(text, /whole-file score 0\.699 \(medium\)/);
  assert.match(text, /→ medium 0\.699$/m);
  assert.doesNotMatch(text, /0\.70\b/);
});

test('--json cuts scores to 4 decimals, so no score reaches a threshold its level did not', async () => {
  const sad = join(dir, 'sad-for-scores.wav');
  await writeWav(sad, [synthesiseVoice(VOICE_STYLES.sad, 6, 16000, 41)], 16000, '16');
  const json = JSON.parse((await classify('--json', sad)).stdout);
  for (const { level, score } of [json.urgency, ...json.windows.map((w: { urgency: unknown }) => w.urgency)] as { level: string; score: number }[]) {
    assert.equal(Number(score.toFixed(4)), score, `${score} has at most 4 decimals`);
    assert.equal(levelForScore(score), level, `${score} is ${level}`);
  }
});

test('windows that share a start are those of a call still short of a full window of speech, and the text says so', async () => {
  // 1.5 s of speech, a 1 s pause, then 5 s more: the first utterance gets its own window, and
  // the next one, the first with 3 s of speech, holds it again across the pause.
  const parts = [synthesiseVoice(VOICE_STYLES.angry, 1.5, 16000, 51), new Float32Array(16000), synthesiseVoice(VOICE_STYLES.angry, 5, 16000, 52)];
  const voice = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (voice.set(p, at), at + p.length), 0);
  const path = await writeWav(join(dir, 'pause.wav'), [voice], 16000, '16');
  const { windows } = JSON.parse((await classify('--json', path)).stdout) as { windows: { start: number; end: number; speechSeconds: number }[] };
  assert.equal(windows[0]!.start, windows[1]!.start, JSON.stringify(windows));
  assert.ok(windows[0]!.speechSeconds < 2 && windows[0]!.end < 2.5, 'the first utterance alone');
  assert.ok(Math.abs(windows[1]!.speechSeconds - 3) < 0.05, 'a full window of speech');
  assert.ok(windows[1]!.end - windows[1]!.start > 3.5, 'spanning the pause');
  assert.ok(windows.slice(2).every((w, i) => w.start > windows[i + 1]!.start), 'once the window is full, every start moves on');
  const { stdout } = await classify(path);
  assert.match(stdout, /1\.\d s of speech .*\n.*3\.0 s of speech/);
  assert.match(stdout, /each window holds the last 3 s of speech, pauses left out: .* until 3 s of speech are in, each starts at the first, so some share a start/);
  // A file whose windows all start apart gets no such note.
  assert.doesNotMatch((await classify(join(dir, 'one-window-angry.wav'))).stdout, /share a start/);
});
