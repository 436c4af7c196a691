import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cremad, emodb, ravdess, savee, tess } from '../src/datasets/corpus-naming.js';
import { scanDataset } from '../src/datasets/scan-dataset.js';
import { randomFileSplit, speakerFolds, splitBySpeaker } from '../src/datasets/speaker-split.js';
import type { LabelledClip } from '../src/datasets/labelled-clip.js';

test('each corpus naming maps its codes onto canonical emotions and speakers', () => {
  assert.deepEqual(cremad.parse('1022_IEO_ANG_HI.flac'), { label: 'angry', speaker: '1022' });
  assert.deepEqual(ravdess.parse('Actor_07/03-01-04-02-01-01-07.flac'), { label: 'sad', speaker: '07', gender: 'male' });
  assert.equal(ravdess.parse('03-02-04-02-01-01-07.wav'), null, 'song files are not speech');
  assert.deepEqual(tess.parse('OAF_angry/OAF_back_ps.wav'), { label: 'surprised', speaker: 'OAF', gender: 'female' });
  assert.deepEqual(savee.parse('DC_sa01.wav'), { label: 'sad', speaker: 'DC', gender: 'male' });
  assert.deepEqual(savee.parse('JK/su12.wav'), { label: 'surprised', speaker: 'JK', gender: 'male' });
  assert.deepEqual(emodb.parse('03a01Wa.wav'), { label: 'angry', speaker: '03', gender: 'male' });
  assert.equal(emodb.parse('03a01La.wav'), null, 'boredom has no canonical label');
});

test('a folder is recognised by its file names and CREMA-D genders come from the actor table', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ser-ds-'));
  for (const n of ['1001_DFA_ANG_XX', '1001_DFA_SAD_XX', '1002_DFA_NEU_XX']) await writeFile(join(dir, `${n}.wav`), '');
  await writeFile(join(dir, 'VideoDemographics.csv'), '"ActorID","Age","Sex"\n1001,51,"Male"\n1002,21,"Female"\n');
  const clips = await scanDataset(dir);
  assert.deepEqual(clips.map((c) => [c.label, c.speaker, c.gender]), [
    ['angry', 'cremad:1001', 'male'],
    ['sad', 'cremad:1001', 'male'],
    ['neutral', 'cremad:1002', 'female'],
  ]);
});

test('Ogg Opus clips are scanned as WAV and FLAC ones are, by the corpus\'s own names', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ser-ds-opus-'));
  for (const n of ['1001_DFA_ANG_XX.opus', '1001_IEO_SAD_LO.ogg', '1002_DFA_NEU_XX.flac', 'notes.txt']) await writeFile(join(dir, n), '');
  await writeFile(join(dir, 'VideoDemographics.csv'), '"ActorID","Age","Sex"\n1001,51,"Male"\n1002,21,"Female"\n');
  const clips = await scanDataset(dir);
  assert.deepEqual(clips.map((c) => [c.path.slice(dir.length + 1), c.label, c.speaker, c.gender]), [
    ['1001_DFA_ANG_XX.opus', 'angry', 'cremad:1001', 'male'],
    ['1001_IEO_SAD_LO.ogg', 'sad', 'cremad:1001', 'male'],
    ['1002_DFA_NEU_XX.flac', 'neutral', 'cremad:1002', 'female'],
  ]);
});

test('one clip in two formats in a folder is refused, naming both files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ser-ds-twin-'));
  for (const n of ['1001_DFA_ANG_XX.opus', '1001_DFA_ANG_XX.flac', '1001_DFA_SAD_XX.flac']) await writeFile(join(dir, n), '');
  await assert.rejects(scanDataset(dir), /1001_DFA_ANG_XX\.flac and 1001_DFA_ANG_XX\.opus are the same clip in two formats/);
});

test('two folders of one corpus add up to one set of speakers, with each folder\'s actor table', async () => {
  const { scanAll } = await import('../src/datasets/select-clips.js');
  const root = await mkdtemp(join(tmpdir(), 'ser-ds-two-'));
  const [a, b] = [join(root, 'cremad'), join(root, 'cremad-extra')];
  await mkdir(a);
  await mkdir(b);
  for (const n of ['1005_DFA_ANG_XX.flac', '1005_DFA_SAD_XX.flac']) await writeFile(join(a, n), '');
  for (const n of ['1001_DFA_ANG_XX.opus', '1001_DFA_NEU_XX.opus']) await writeFile(join(b, n), '');
  await writeFile(join(a, 'VideoDemographics.csv'), '"ActorID","Sex"\n1005,"Male"\n');
  await writeFile(join(b, 'VideoDemographics.csv'), '"ActorID","Sex"\n1001,"Female"\n');
  const clips = await scanAll([a, b], 'auto');
  assert.deepEqual(clips.map((c) => [c.speaker, c.gender]), [
    ['cremad:1005', 'male'],
    ['cremad:1005', 'male'],
    ['cremad:1001', 'female'],
    ['cremad:1001', 'female'],
  ]);
});

test('a speaker found in two --data folders is refused, naming the speaker and both folders', async () => {
  const { scanAll } = await import('../src/datasets/select-clips.js');
  const root = await mkdtemp(join(tmpdir(), 'ser-ds-clash-'));
  const [a, b] = [join(root, 'cremad-extra'), join(root, 'cremad-extra-flac')];
  await mkdir(a);
  await mkdir(b);
  for (const n of ['1001_DFA_ANG_XX', '1002_DFA_ANG_XX']) {
    await writeFile(join(a, `${n}.opus`), '');
    await writeFile(join(b, `${n}.flac`), '');
  }
  await writeFile(join(b, '1003_DFA_ANG_XX.flac'), '');
  await assert.rejects(scanAll([a, b], 'auto'), (error: Error) => {
    assert.ok(error.message.startsWith(`${b}: 2 speakers (cremad:1001, cremad:1002) have clips here and in ${a}: a speaker's clips must all come from one --data folder`), error.message);
    return true;
  });
  await assert.rejects(scanAll([a, a], 'auto'), new RegExp(`^DatasetError: ${a}: is given twice as --data`));
});

test('a CSV lists a customer\'s recordings with paths relative to it and rejects unknown labels with the line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ser-csv-'));
  await writeFile(join(dir, 'ok.csv'), 'path,label,speaker,gender\na.wav,angry,s1,female\nsub/b.wav,fear,s2,\n');
  const clips = await scanDataset(join(dir, 'ok.csv'));
  assert.equal(clips[0]!.path, join(dir, 'a.wav'));
  assert.equal(clips[1]!.label, 'fearful');
  await writeFile(join(dir, 'bad.csv'), 'a.wav,furious,s1\n');
  await assert.rejects(scanDataset(join(dir, 'bad.csv')), /bad\.csv:1: label "furious"/);
});

test('a CSV speaker has one gender: rows that leave it empty take it, rows that contradict it are refused with both lines', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ser-csv-gender-'));
  await writeFile(join(dir, 'ok.csv'), 'a.wav,angry,s1,\nb.wav,sad,s1,male\n');
  assert.deepEqual((await scanDataset(join(dir, 'ok.csv'))).map((c) => c.gender), ['male', 'male']);
  await writeFile(join(dir, 'bad.csv'), 'a.wav,angry,s1,female\nb.wav,sad,s1,male\n');
  await assert.rejects(scanDataset(join(dir, 'bad.csv')), /bad\.csv:2: speaker "s1" is male here but female on line 1/);
});

test('a folder of unrecognisable names asks for --format', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ser-unk-'));
  await mkdir(join(dir, 'x'));
  await writeFile(join(dir, 'x', 'hello.wav'), '');
  await assert.rejects(scanDataset(dir), /pass --format/);
});

function synthetic(speakers: number): LabelledClip[] {
  const clips: LabelledClip[] = [];
  for (let s = 0; s < speakers; s++)
    for (const label of ['angry', 'sad', 'neutral'] as const)
      clips.push({ path: `${s}-${label}`, label, speaker: `x:${s}`, gender: s % 2 ? 'male' : 'female', corpus: 'x' });
  return clips;
}

test('a speaker split never puts a speaker on both sides and is reproducible from its seed', () => {
  const clips = synthetic(20);
  const a = splitBySpeaker(clips, 0.2, 7);
  const train = new Set(a.train.map((c) => c.speaker));
  assert.ok(a.test.every((c) => !train.has(c.speaker)));
  assert.equal(a.test.length + a.train.length, clips.length);
  assert.deepEqual(splitBySpeaker(clips, 0.2, 7).test, a.test);
  assert.notDeepEqual(splitBySpeaker(clips, 0.2, 8).test.map((c) => c.speaker), a.test.map((c) => c.speaker));
});

test('speaker folds balance genders', () => {
  const folds = speakerFolds(synthetic(20), 5, 1);
  for (const fold of folds) {
    const males = fold.filter((s) => Number(s.split(':')[1]) % 2 === 1).length;
    assert.equal(males, 2);
    assert.equal(fold.length, 4);
  }
});

test('the random file split exists for the seed protocol and mixes speakers', () => {
  const split = randomFileSplit(synthetic(20), 0.2, 1);
  const train = new Set(split.train.map((c) => c.speaker));
  assert.ok(split.test.some((c) => train.has(c.speaker)));
});

test('a model trained with a held-out fold is evaluated only on that fold, with the seed and split it records', async () => {
  const { foldOf, heldOutClips } = await import('../src/datasets/select-clips.js');
  const clips: LabelledClip[] = [];
  for (let s = 0; s < 10; s++) for (const label of ['angry', 'neutral'] as const) clips.push({ path: `/d/${s}-${label}.wav`, label, speaker: `c:${s}`, gender: s % 2 ? 'male' : 'female', corpus: 'c' });
  const metrics = { heldOutFold: '1/5', splitSeed: 3, split: 'speaker' };
  const expected = foldOf(clips, { index: 1, count: 5 }, 3, 'speaker').test;
  assert.deepEqual(heldOutClips(clips, metrics, { fold: '1/5', seed: 3, split: 'speaker' }, 'm'), expected);
  assert.throws(() => heldOutClips(clips, metrics, { seed: 3, split: 'speaker' }, 'm'), /trained with fold 1\/5 held out.*--fold 1\/5 --seed 3 --split speaker/);
  assert.throws(() => heldOutClips(clips, metrics, { fold: '1/5', seed: 1, split: 'speaker' }, 'm'), /would include speakers it was trained on/);
  assert.throws(() => heldOutClips(clips, metrics, { fold: '2/5', seed: 3, split: 'speaker' }, 'm'), /would include speakers it was trained on/);
  assert.equal(heldOutClips(clips, {}, { seed: 1, split: 'speaker' }, 'm').length, clips.length, 'a model trained on everything is measured on every clip given');
});
