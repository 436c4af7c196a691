import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { defaultModelDir } from '../src/config/package-paths.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import type { FeatureConfig } from '../src/features/feature-config.js';
import { loadMono, streamWindows } from '../src/pipeline/file-features.js';
import { SpeechFeatureStream, type SpeechWindow } from '../src/pipeline/speech-feature-stream.js';
import { colouredNoise, concat, levelDb, mix, type NoiseColour } from './helpers/audio-fixtures.js';

// Everything here runs through the code `classify`, `eval`, training and the daemon share
// (streamWindows and SpeechFeatureStream), with the shipped model's feature configuration.
const manifest = JSON.parse(await readFile(join(defaultModelDir(), 'manifest.json'), 'utf8')) as { features: FeatureConfig };
const features = manifest.features;
const RATE = features.sampleRate;

/** Windows `classify` would judge in a recording (its quiet-clip second pass included). */
function fileWindows(samples: Float32Array): number {
  return streamWindows(samples, { features }, () => {});
}

/** Windows a live channel would judge, fed as a capture device delivers audio (20 ms blocks). */
function liveWindows(samples: Float32Array, block = Math.round(0.02 * RATE)): SpeechWindow[] {
  const stream = new SpeechFeatureStream({ features });
  const windows: SpeechWindow[] = [];
  const keep = (w: SpeechWindow) => windows.push({ ...w, rows: w.rows.slice() });
  for (let at = 0; at < samples.length; at += block) stream.push(samples.subarray(at, at + block), keep);
  stream.end(keep);
  return windows;
}

/** A fade from digital near-silence (−80 dB below) up to the full level over `seconds`. */
function fadeIn(signal: Float32Array, seconds: number): Float32Array {
  const n = Math.round(seconds * RATE);
  return signal.map((v, i) => (i < n ? v * 10 ** ((-80 * (1 - i / n)) / 20) : v));
}

const COLOURS: NoiseColour[] = ['white', 'pink', 'brown'];
const LEVELS = [-60, -50, -40, -30, -20, -10];

test('white, pink and brown noise from −60 to −10 dBFS, 60 s each, give no speech window', () => {
  const found: string[] = [];
  for (const colour of COLOURS) {
    for (const level of LEVELS) {
      const windows = fileWindows(colouredNoise(colour, 60, RATE, level, 100 + level));
      if (windows > 0) found.push(`${colour} ${level} dBFS: ${windows}`);
    }
  }
  assert.deepEqual(found, [], 'noise taken for speech');
});

test('stationary noise that fades in, or starts loud after digital silence, gives no speech window on a live channel', () => {
  const found: string[] = [];
  for (const colour of COLOURS) {
    for (const level of [-40, -20]) {
      const noise = colouredNoise(colour, 40, RATE, level, 7);
      // The floor starts at the first frame: far below the noise, and rises only slowly.
      const afterSilence = concat([new Float32Array(2 * RATE), noise]);
      for (const [how, signal] of [['fading in over 10 s', fadeIn(noise, 10)], ['after 2 s of silence', afterSilence]] as const) {
        const windows = liveWindows(signal).length;
        if (windows > 0) found.push(`${colour} ${level} dBFS ${how}: ${windows}`);
      }
    }
  }
  assert.deepEqual(found, [], 'noise taken for speech');
});

test('ten minutes of pink noise give no speech window', () => {
  assert.equal(fileWindows(colouredNoise('pink', 600, RATE, -30, 11)), 0);
});

/** Clean windows, and windows with pink noise at `snrDb` below the signal's RMS level. */
function windowsInPinkNoise(speech: Float32Array, snrDb: number, seed: number): { clean: number; noisy: number } {
  const noise = colouredNoise('pink', speech.length / RATE, RATE, levelDb(speech) - snrDb, seed);
  return { clean: fileWindows(speech), noisy: fileWindows(mix(speech, noise)) };
}

/** `signal` scaled to an RMS level of `db` dBFS. */
function atLevel(signal: Float32Array, db: number): Float32Array {
  const gain = 10 ** ((db - levelDb(signal)) / 20);
  return signal.map((v) => v * gain);
}

test('the synthetic voice in pink noise at 10 dB SNR keeps at least 90% of its clean windows', () => {
  // Calm, angry and sad differ by 22 dB; a channel's level control brings them together.
  const voice = concat([
    atLevel(synthesiseVoice(VOICE_STYLES.calm, 20, RATE, 1), -26),
    atLevel(synthesiseVoice(VOICE_STYLES.angry, 20, RATE, 2), -26),
    atLevel(synthesiseVoice(VOICE_STYLES.sad, 20, RATE, 3), -26),
  ]);
  const { clean, noisy } = windowsInPinkNoise(voice, 10, 5);
  assert.ok(clean >= 50, `the clean voice gets ${clean} windows`);
  assert.ok(noisy >= 0.9 * clean, `${noisy} of ${clean} windows in noise`);
});

/** ../shared/data next to the repository, looked up from the working directory and from this file. */
function cremadDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(process.cwd(), '../shared/data'), resolve(here, '../../../shared/data'), resolve(here, '../../shared/data')];
  return candidates.map((c) => join(c, 'cremad')).find((c) => existsSync(c));
}

const cremad = cremadDir();

/**
 * Each speaker's call: clips of that speaker one after another. `levelled`: each brought
 * to −26 dBFS, as a telephone channel's level control would (CREMA-D's clips differ by
 * 20 dB between emotions), and separated only by the silences the recordings begin and
 * end with. Otherwise at their recorded levels, with half a second of digital silence
 * between them.
 */
async function speakerCalls(dir: string, speakers: number, clipsEach: number, levelled: boolean): Promise<Float32Array[]> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.flac')).sort();
  const ids = [...new Set(files.map((f) => f.split('_')[0]!))];
  const random = seededRandom(2024);
  const calls: Float32Array[] = [];
  for (let s = 0; s < speakers; s++) {
    const id = ids[Math.floor((s * ids.length) / speakers)]!;
    const own = files.filter((f) => f.startsWith(`${id}_`));
    const parts: Float32Array[] = [];
    for (let c = 0; c < clipsEach; c++) {
      const { samples } = await loadMono(join(dir, own[Math.floor(random() * own.length)]!), RATE);
      parts.push(levelled ? atLevel(samples, -26) : samples);
      if (!levelled) parts.push(new Float32Array(RATE / 2));
    }
    calls.push(concat(parts));
  }
  return calls;
}

for (const levelled of [true, false]) {
  const how = levelled ? 'clips at one level, back to back' : 'clips at their own levels, with silent pauses';
  test(`CREMA-D speech in pink noise at 10 dB SNR keeps at least 90% of its clean windows (${how})`, { skip: cremad === undefined && '../shared/data/cremad absent: skipping real speech in noise' }, async () => {
    let clean = 0;
    let noisy = 0;
    const calls = await speakerCalls(cremad as string, 8, 8, levelled);
    calls.forEach((call, i) => {
      const counts = windowsInPinkNoise(call, 10, 40 + i);
      clean += counts.clean;
      noisy += counts.noisy;
    });
    assert.ok(clean >= 80, `8 speakers' clean speech gets ${clean} windows`);
    assert.ok(noisy >= 0.9 * clean, `${noisy} of ${clean} windows in noise (${((100 * noisy) / clean).toFixed(1)}%)`);
  });
}

test('a live channel in 20 ms blocks and a file read in 100 ms blocks give identical windows of speech in noise', () => {
  const voice = mix(synthesiseVoice(VOICE_STYLES.calm, 12, RATE, 9), colouredNoise('pink', 12, RATE, -40, 3));
  const live = liveWindows(voice);
  const file: SpeechWindow[] = [];
  streamWindows(voice, { features }, (w) => file.push({ ...w, rows: w.rows.slice() }));
  assert.ok(live.length >= 5, `${live.length} windows`);
  assert.deepEqual(
    live.map((w) => [w.firstFrame, w.lastFrame, w.frames]),
    file.map((w) => [w.firstFrame, w.lastFrame, w.frames]),
  );
  live.forEach((w, i) => assert.deepEqual(w.rows, file[i]!.rows, `window ${i}`));
  // Ragged blocks, as a pipe delivers them, change nothing either.
  const ragged = liveWindows(voice, 333);
  assert.deepEqual(ragged.map((w) => w.rows), live.map((w) => w.rows));
});
