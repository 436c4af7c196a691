import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
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
import { writeSyntheticDataset } from './helpers/synthetic-dataset.js';

const run = promisify(execFile);
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
  assert.match(errors[0]!, /notes\.wav: not a WAV or FLAC file/);
  assert.match(errors[1]!, /empty\.wav: .*empty/);
  assert.match(errors[2]!, /truncated\.wav: .*truncated/i);
  assert.match(errors[3]!, /half\.wav: only 24000 of the 48000 data bytes its header declares are in the file \(24000 of 48000 samples per channel, 1\.50 of 3\.00 s\); the file is truncated/);
  assert.match(errors[4]!, /missing\.wav: no such file/);
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
