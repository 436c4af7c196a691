import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { access, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findOnPath } from '../src/audio/microphone-source.js';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';
import { runSerEdge } from './helpers/program-process.js';

// The layout of ../shared/data: cremad/ in FLAC (here WAV) and cremad-extra/ in Ogg Opus,
// with CREMA-D's names and an actor table in each, other actors in each.

const dir = tempDir('ser-edge-train-opus-');
const opusenc = await findOnPath('opusenc');
const skip = opusenc === undefined && 'opusenc absent (Debian: apt-get install opus-tools): skipping training on Ogg Opus folders';
const lossless = join(dir, 'cremad');
const opus = join(dir, 'cremad-extra');

const serEdge = (...args: string[]) => runSerEdge(args, 600_000);

const CLASSES = { calm: 'NEU', angry: 'ANG', sad: 'SAD' } as const;

/** Two clips per class and actor, named `{actor}_{sentence}_{emotion}_XX`; odd actors are male. */
async function writeActors(folder: string, actors: number[], format: 'wav' | 'opus'): Promise<void> {
  await mkdir(folder, { recursive: true });
  const table = ['"ActorID","Age","Sex"'];
  let seed = actors[0]!;
  for (const [i, actor] of actors.entries()) {
    table.push(`${actor},30,"${actor % 2 ? 'Male' : 'Female'}"`);
    for (const [style, code] of Object.entries(CLASSES)) {
      for (const sentence of ['DFA', 'IEO']) {
        const base = VOICE_STYLES[style as keyof typeof CLASSES];
        const voice = synthesiseVoice({ ...base, f0: base.f0 * (1 + 0.04 * (i - 1)) }, 2.5, 16000, seed++);
        const name = `${actor}_${sentence}_${code}_XX`;
        const wav = await writeWav(join(folder, `${name}.wav`), [voice], 16000, '16');
        if (format === 'opus') {
          execFileSync(opusenc!, ['--quiet', '--bitrate', '64', wav, join(folder, `${name}.opus`)], { stdio: 'pipe' });
          await rm(wav);
        }
      }
    }
  }
  await writeFile(join(folder, 'VideoDemographics.csv'), table.join('\n') + '\n');
}

before(async () => {
  if (skip) return;
  await writeActors(lossless, [1001, 1002, 1003], 'wav');
  await writeActors(opus, [1004, 1005, 1006], 'opus');
});

test('train and eval read a lossless and an Ogg Opus folder as one set of speakers', { skip }, async () => {
  const model = join(dir, 'knn');
  const trained = await serEdge('train', '--data', lossless, opus, '--kind', 'knn', '--out', model, '--holdout', '0/3', '--validation-folds', '2', '--augment', 'noise', '--cache', join(dir, 'cache'), '--no-progress');
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stderr, /^24 clips from 4 speakers \(fold 0\/3 held out/m);
  const manifest = JSON.parse(await readFile(join(model, 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest.metrics.trainedOn, [lossless, opus]);

  const evaluated = await serEdge('eval', '--data', lossless, opus, '--model', model, '--fold', '0/3', '--json');
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const result = JSON.parse(evaluated.stdout);
  assert.equal(result.n, 12, 'fold 0 of 3 holds 2 of the 6 actors');
  assert.equal(result.skipped, 0);
  assert.ok(result.accuracy >= 0.75, `accuracy ${result.accuracy}`);
  assert.deepEqual(Object.keys(result.per_gender).sort(), ['female', 'male']);
});

test('a clip cut in half is named with the reason, the other clips still train and are measured, and both exit 1', { skip }, async () => {
  const damaged = join(dir, 'cremad-extra-damaged');
  await cp(opus, damaged, { recursive: true });
  const clip = join(damaged, '1005_DFA_ANG_XX.opus');
  const whole = await readFile(clip);
  await writeFile(clip, whole.subarray(0, whole.length / 2));
  const model = join(dir, 'knn-all');

  const trained = await serEdge('train', '--data', lossless, damaged, '--kind', 'knn', '--out', model, '--validation-folds', '2', '--augment', 'noise', '--cache', join(dir, 'cache'), '--no-progress');
  assert.equal(trained.code, 1, trained.stderr);
  assert.match(trained.stderr, /skipped .*1005_DFA_ANG_XX\.opus: the file ends at byte \d+, inside Ogg page \d+.*; the file is truncated/);
  assert.match(trained.stderr, /1 clip\(s\) could not be read and were left out of training/);
  await access(join(model, 'manifest.json'));

  const evaluated = await serEdge('eval', '--data', lossless, damaged, '--model', model, '--json');
  assert.equal(evaluated.code, 1, evaluated.stderr);
  const result = JSON.parse(evaluated.stdout);
  assert.equal(result.skipped, 1);
  assert.equal(result.n, 35);
  assert.match(evaluated.stderr, /skipped .*1005_DFA_ANG_XX\.opus: .*truncated/);
  assert.match(evaluated.stderr, /1 clip\(s\) could not be read and are not in these figures/);
});

test('a folder given twice, or two folders sharing a speaker, is refused before any clip is read', { skip }, async () => {
  const twice = await serEdge('train', '--data', opus, opus, '--out', join(dir, 'never'), '--cache', join(dir, 'cache'), '--no-progress');
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /cremad-extra: is given twice as --data/);
  const copy = join(dir, 'cremad-extra-copy');
  await cp(opus, copy, { recursive: true });
  const shared = await serEdge('eval', '--data', opus, copy, '--model', join(dir, 'knn'), '--fold', '0/3');
  assert.equal(shared.code, 2);
  assert.match(shared.stderr, /cremad-extra-copy: 3 speakers \(cremad:1004, cremad:1005, cremad:1006\) have clips here and in .*cremad-extra: a speaker's clips must all come from one --data folder/);
});
