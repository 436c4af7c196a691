import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { runSelfTest } from '../src/model/classifier.js';
import { readJudgedCalls } from '../src/training/judged-calls-file.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';
import { runSerEdge } from './helpers/program-process.js';

// The call-level path end to end on a corpus with CREMA-D's names (synthetic voices, so it
// runs without ../shared): fold models, simulated calls of their held-out speakers saved by
// simulate-calls, the stage cross-fitted on them and written into a bundle the daemon loads.

const run = promisify(execFile);
const dir = tempDir('ser-edge-call-scripts-');
const corpus = join(dir, 'cremad');
const script = (name: string) => fileURLToPath(new URL(`../scripts/${name}`, import.meta.url));
const node = async (name: string, ...args: string[]) => {
  try {
    const { stdout, stderr } = await run(process.execPath, [script(name), ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const STYLES = {
  NEU: VOICE_STYLES.calm,
  HAP: { ...VOICE_STYLES.calm, f0: 170, f0Range: 0.18, levelDb: -20 },
  ANG: VOICE_STYLES.angry,
  // Louder than the synthetic sad voice (−34 dB), which the voice detector does not hear through the telephone band.
  SAD: { ...VOICE_STYLES.sad, levelDb: -26 },
};

before(async () => {
  await mkdir(corpus, { recursive: true });
  const table = ['"ActorID","Age","Sex"'];
  let seed = 3;
  for (const [i, actor] of [1001, 1002, 1003, 1004, 1005, 1006].entries()) {
    table.push(`${actor},30,"${actor % 2 ? 'Male' : 'Female'}"`);
    for (const [code, style] of Object.entries(STYLES)) {
      for (const sentence of ['DFA', 'IEO', 'ITH']) {
        const voice = synthesiseVoice({ ...style, f0: style.f0 * (1 + 0.03 * (i - 2)) }, 2.5, 16000, seed++);
        await writeWav(join(corpus, `${actor}_${sentence}_${code}_XX.wav`), [voice], 16000, '16');
      }
    }
  }
  await writeFile(join(corpus, 'VideoDemographics.csv'), table.join('\n') + '\n');
});

test('fold models, their saved calls and the cross-fitted stage: figures per fold and their mean, and a bundle whose flags name their driver', async () => {
  const folds = [0, 1].map((k) => join(dir, `fold-${k}`));
  for (const [k, out] of folds.entries()) {
    const trained = await runSerEdge(['train', '--data', corpus, '--kind', 'knn', '--out', out, '--holdout', `${k}/3`, '--validation-folds', '2', '--augment', 'noise', '--cache', join(dir, 'cache'), '--no-progress'], 600_000);
    assert.equal(trained.code, 0, trained.stderr);
  }
  const calls = join(dir, 'calls');
  const simulated = await node('simulate-calls.js', '--data', corpus, '--models', ...folds, '--calls', '4', '--calm-calls', '2', '--save-calls', calls, '--json');
  assert.equal(simulated.code, 0, simulated.stderr);
  const report = JSON.parse(simulated.stdout) as { folds: { fold: string; speakers: number; outcome: Record<string, { angryCalls: number; sadCalls: number; calmHours: number }> }[]; mean: Record<string, unknown> };
  assert.deepEqual(report.folds.map((f) => [f.fold, f.speakers]), [['0/3', 2], ['1/3', 2]], "each model's own held-out speakers");
  for (const f of report.folds) {
    // 4 escalating and 4 first-word calls, half angry and half sad, on each of two channels.
    assert.equal(f.outcome['all']!.angryCalls, 8);
    assert.equal(f.outcome['all']!.sadCalls, 8);
    assert.equal(f.outcome['clean/first-word']!.angryCalls, 2);
    assert.ok(f.outcome['telephone']!.calmHours > 0);
  }
  assert.deepEqual(Object.keys(report.mean).sort(), Object.keys(report.folds[0]!.outcome).sort());
  const saved = await readJudgedCalls(join(calls, 'fold-1.json'));
  assert.equal(saved.model.heldOutFold, '1/3');
  assert.equal(saved.calls.length, 2 * (4 + 4 + 2));
  const silent = saved.calls.filter((c) => c.windows.length === 0).map((c) => `${c.plan.kind} ${c.plan.emotion} ${c.channel} ${c.plan.clips.map((x) => x.label).join(',')}`);
  assert.deepEqual(silent, [], 'every call was heard');

  const out = join(dir, 'with-stage');
  const fitted = await node('cross-fit-urgency.js', '--calls', join(calls, 'fold-0.json'), join(calls, 'fold-1.json'), '--model', folds[0]!, '--out', out, '--json');
  assert.equal(fitted.code, 0, fitted.stderr);
  const result = JSON.parse(fitted.stdout) as { perFold: { fold: string }[]; mean: Record<string, Record<string, number | null>> };
  assert.deepEqual(result.perFold.map((f) => f.fold), ['0/3', '1/3'], 'each fold measured by the stage fitted on the other');
  assert.ok(result.mean['all']!['falseHighPerHour'] !== undefined);
  const classifier = await loadClassifier(out);
  assert.ok(runSelfTest(classifier).passed);
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.urgency.head.kind, 'call-logistic');
  assert.deepEqual(Object.keys(manifest.urgency.trackers), ['angry', 'sad']);
  assert.deepEqual(manifest.urgency.chosenOn.folds, ['0/3', '1/3']);
  classifier.dispose();

  const classified = await runSerEdge(['classify', '--model', out, '--json', join(corpus, '1001_DFA_ANG_XX.wav')], 60_000);
  assert.equal(classified.code, 0, classified.stderr);
  const verdict = JSON.parse(classified.stdout);
  assert.ok(['angry', 'sad'].includes(verdict.urgency.driver), `the head's drivers, not ${verdict.urgency.driver}`);
});

test('cross-fit-urgency refuses two files of the same fold, naming them', async () => {
  const calls = join(dir, 'calls', 'fold-0.json');
  const refused = await node('cross-fit-urgency.js', '--calls', calls, calls);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /each file must hold a different held-out fold's calls, not 0\/3, 0\/3/);
});
