import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultModelDir } from '../src/config/package-paths.js';
import { manifestSchema } from '../src/model/bundle-manifest.js';
import { daemonConfigSchema } from '../src/config/daemon-config.js';
import { UrgencyStage, type UrgencySection } from '../src/urgency/call-urgency.js';
import { UrgencyHead, type UrgencyHeadSpec } from '../src/urgency/urgency-head.js';
import { DEFAULT_TRACKER_CONFIG, type TrackerConfig } from '../src/urgency/urgency-tracker.js';
import { fitHeadWeights, headRows } from '../src/training/fit-urgency-head.js';
import { callOutcome } from '../src/training/call-outcomes.js';
import { flagsOf, planCalls, DEFAULT_CALL_RECIPE, type JudgedCall } from '../src/training/call-simulation.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import type { LabelledClip } from '../src/datasets/labelled-clip.js';
import { readJudgedCalls, writeJudgedCalls } from '../src/training/judged-calls-file.js';

const labels = ['angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad'] as const;
const A = labels.indexOf('angry'), S = labels.indexOf('sad'), N = labels.indexOf('neutral');

/** Probabilities with `p` on one label and the rest spread evenly. */
function probs(label: number, p: number): Float32Array {
  const out = new Float32Array(labels.length).fill((1 - p) / (labels.length - 1));
  out[label] = p;
  return out;
}

/** A head that reads only the relative part: angry and sad are "more than at the call's start". */
function relativeHead(baselineWindows = 2): UrgencyHeadSpec {
  const row = (label: number, bias: number) => [...new Array(labels.length).fill(0), ...labels.map((_, i) => (i === label ? 3 : 0)), bias];
  return { kind: 'call-logistic', baselineWindows, classes: ['angry', 'sad', 'calm'], weights: [row(A, -2), row(S, -2), [...new Array(2 * labels.length).fill(0), 0]] };
}

const everyWindow: TrackerConfig = { smoothing: 1, thresholds: { medium: 0.5, high: 0.7 }, hysteresis: 0.05, raiseWindows: 1, clearWindows: 1 };
const section = (angry: TrackerConfig, sad: TrackerConfig, head = relativeHead()): UrgencySection => ({ head, trackers: { angry, sad } });
const stageOf = (s: UrgencySection) => new UrgencyStage(labels, s, undefined, { tracker: DEFAULT_TRACKER_CONFIG });

test('the head input is the log-probabilities, then the same relative to the first windows of the call, which then stay frozen', () => {
  const head = new UrgencyHead(relativeHead(2), labels.length);
  const call = head.newCall();
  const x = new Float64Array(2 * labels.length);
  head.inputInto(probs(N, 0.9), call, x);
  assert.ok(Math.abs(x[N]! - Math.log(0.9)) < 1e-6);
  assert.deepEqual([...x.subarray(labels.length)], new Array(labels.length).fill(0), 'the first window has nothing to compare with');
  head.inputInto(probs(N, 0.9), call, x);
  head.inputInto(probs(S, 0.9), call, x);
  // The baseline holds the two neutral windows only: the sad one is compared, never taken in.
  assert.ok(Math.abs(x[labels.length + S]! - (Math.log(0.9) - Math.log(0.02))) < 1e-6);
  head.inputInto(probs(S, 0.9), call, x);
  assert.ok(Math.abs(x[labels.length + S]! - (Math.log(0.9) - Math.log(0.02))) < 1e-6, 'the baseline is frozen once full');
  assert.equal(call.seen, 2);
});

test('a head whose rows do not fit the labels is refused, by the manifest schema and by the head, naming the row', () => {
  const bad = relativeHead();
  bad.weights[1] = bad.weights[1]!.slice(1);
  assert.throws(() => new UrgencyHead(bad, labels.length), /the sad row has 12 weights; a model with 6 labels needs 13/);
  const shipped = JSON.parse(readFileSync(join(defaultModelDir(), 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const manifest = { ...shipped, labels: [...labels], urgency: section(everyWindow, everyWindow, bad) };
  const issues = manifestSchema.safeParse(manifest).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
  assert.ok(issues.some((i) => /^urgency\.head\.weights\.1: has 12 weights; 6 labels need 13/.test(i)), issues.join('\n'));
});

test('a sad caller after a neutral opening raises medium on the sad tracker, an angry one high on the angry tracker, each naming its driver', () => {
  const sadOnlyMedium: TrackerConfig = { ...everyWindow, thresholds: { medium: 0.5, high: 0.999 } };
  const stage = stageOf(section(everyWindow, sadOnlyMedium));
  const sad = stage.newCall();
  const changes = [probs(N, 0.8), probs(N, 0.8), probs(S, 0.5), probs(S, 0.5)].map((p) => sad.update(p));
  assert.deepEqual(changes.slice(0, 2), [null, null], 'the opening is the baseline: nothing to flag');
  assert.equal(changes[2]?.level, 'medium');
  assert.equal(changes[2]?.driver, 'sad');
  assert.equal(sad.level, 'medium', 'sad never reaches high with its high threshold out of reach');

  const angry = stage.newCall();
  const raised = [probs(N, 0.8), probs(N, 0.8), probs(A, 0.6)].map((p) => angry.update(p)).find((c) => c !== null);
  assert.equal(raised?.level, 'high');
  assert.equal(raised?.driver, 'angry');
  assert.equal(angry.driver, 'angry');
});

test("the call's level is the higher of its trackers: angry clearing while sad holds medium steps down to medium, driven by sad", () => {
  const stage = stageOf(section(everyWindow, { ...everyWindow, thresholds: { medium: 0.5, high: 0.999 } }));
  const call = stage.newCall();
  call.updateScores([0, 0]);
  assert.equal(call.updateScores([0.9, 0.6])?.level, 'high');
  const down = call.updateScores([0.1, 0.6]);
  assert.deepEqual({ kind: down?.kind, level: down?.level, previous: down?.previous, driver: down?.driver }, { kind: 'clear', level: 'medium', previous: 'high', driver: 'sad' });
  assert.equal(call.updateScores([0.1, 0.1])?.level, 'low');
});

test('a model switch mid-call neither raises nor clears a flag: same drivers carry on retuned, other drivers take the level over', () => {
  const withHead = stageOf(section(everyWindow, everyWindow));
  const weighted = new UrgencyStage(labels, undefined, undefined, { tracker: { ...everyWindow, clearWindows: 2 } });
  const call = withHead.newCall();
  call.updateScores([0, 0]);
  call.updateScores([0.9, 0]);
  assert.equal(call.level, 'high');
  call.follow(weighted);
  assert.equal(call.level, 'high');
  assert.equal(call.driver, 'weighted');
  // One low window is not enough to clear under the new tracker's clearWindows 2.
  assert.equal(call.update(probs(N, 0.9)), null);
  assert.equal(call.update(probs(N, 0.9))?.kind, 'clear');
});

test('a site override that clashes with the bundle\'s tracker is refused, naming the setting and the clash', () => {
  const bundle = section(everyWindow, { ...everyWindow, thresholds: { medium: 0.5, high: 0.999 } });
  assert.throws(
    () => new UrgencyStage(labels, bundle, undefined, { tracker: DEFAULT_TRACKER_CONFIG, emotions: { sad: { thresholds: { medium: 0.9, high: 0.8 } } } }),
    /urgency\.emotions\.sad: over the model's own sad tracker .* it gives an invalid tracker \(thresholds: medium must be below high\)/,
  );
});

test('a config whose per-emotion thresholds put medium at or above high is refused by the config schema', () => {
  const parsed = daemonConfigSchema.safeParse({ site: 'lab', gateway: 'gw1', urgency: { emotions: { sad: { thresholds: { medium: 0.9, high: 0.8 } } } } });
  assert.ok(!parsed.success);
  assert.ok(parsed.error.issues.some((i) => i.path.join('.') === 'urgency.emotions.sad.thresholds' && /medium must be below high/.test(i.message)), JSON.stringify(parsed.error.issues));
});

test('site overrides change one field of one emotion tracker and keep the bundle\'s other settings', () => {
  const stage = new UrgencyStage(labels, section(everyWindow, everyWindow), undefined, { tracker: DEFAULT_TRACKER_CONFIG, emotions: { sad: { thresholds: { medium: 0.3, high: 0.9 }, raiseWindows: 4 } } });
  assert.deepEqual(stage.configs[0], everyWindow);
  assert.deepEqual(stage.configs[1], { ...everyWindow, thresholds: { medium: 0.3, high: 0.9 }, raiseWindows: 4 });
});

test('the fitted head separates angry, sad and calm windows, and refitting the same rows gives the same weights', () => {
  const random = seededRandom(3);
  const calls: JudgedCall[] = [];
  for (let k = 0; k < 40; k++) {
    const emotion = k % 3 === 0 ? 'angry' : k % 3 === 1 ? 'sad' : 'neutral';
    const label = emotion === 'angry' ? A : emotion === 'sad' ? S : N;
    const windows = Array.from({ length: 8 }, (_, i) => ({ start: i, end: i + 3, probabilities: i < 4 ? probs(N, 0.5 + 0.3 * random()) : probs(label, 0.35 + 0.3 * random()) }));
    calls.push({ plan: { kind: 'escalating', emotion: emotion === 'neutral' ? null : emotion, speaker: `s${k}`, clips: [], urgentFrom: 4 }, channel: 'clean', seconds: 20, onset: 5, utterances: [{ start: 0, end: 5.5, label: 'neutral' }, { start: 5.5, end: 20, label: emotion }], windows });
  }
  const rows = headRows(calls, labels.length, 3);
  const options = { baselineWindows: 3, l2: 1e-3, sadWeight: 1, iterations: 400 };
  const weights = fitHeadWeights(rows, labels.length, options);
  assert.deepEqual(fitHeadWeights(rows, labels.length, options), weights);
  const head = new UrgencyHead({ kind: 'call-logistic', baselineWindows: 3, classes: ['angry', 'sad', 'calm'], weights }, labels.length);
  let right = 0;
  const out = new Float64Array(3);
  for (const c of calls) {
    const b = head.newCall();
    for (const [i, w] of c.windows.entries()) {
      head.scoresInto(w.probabilities, b, out);
      const truth = i < 4 || c.plan.emotion === null ? 2 : c.plan.emotion === 'angry' ? 0 : 1;
      if (out.indexOf(Math.max(...out)) === truth) right++;
    }
  }
  assert.ok(right / (calls.length * 8) > 0.9, `${right} of ${calls.length * 8} windows right`);
});

test('call outcomes: shares, medians from the urgent onset, and false flags per hour of calm calls', () => {
  const stage = stageOf(section(everyWindow, { ...everyWindow, thresholds: { medium: 0.5, high: 0.999 } }));
  const call = (emotion: 'angry' | 'sad' | null, hot: number[], seconds = 36): JudgedCall => ({
    plan: { kind: emotion ? 'escalating' : 'calm', emotion, speaker: 's', clips: [], urgentFrom: emotion ? 2 : 0 },
    channel: 'clean',
    seconds,
    onset: emotion ? 6 : Infinity,
    utterances: [],
    windows: Array.from({ length: 10 }, (_, i) => ({ start: i * 2, end: i * 2 + 3, probabilities: hot.includes(i) ? probs(emotion === 'sad' ? S : A, 0.7) : probs(N, 0.8) })),
  });
  // Window ends: 3, 5, 7, 9… the angry call rises at window 4 (ends 11 s), 5 s after its onset at 6 s.
  const calls = [call('angry', [4, 5]), call('angry', []), call('sad', [3]), call(null, [6], 1800), call(null, [], 1800)];
  const o = callOutcome(calls, stage, calls.map((c) => flagsOf(c, stage)));
  assert.equal(o.angryCalls, 2);
  assert.equal(o.angryHighShare, 0.5);
  assert.equal(o.angryMedianSeconds, 5);
  assert.equal(o.sadFlaggedShare, 1);
  assert.equal(o.sadMedianSeconds, 3);
  assert.equal(o.calmHours, 1);
  assert.equal(o.falseHighPerHour, 1);
  assert.equal(o.falseMediumPerHour, 1);
});

test('planned calls: escalating calls open neutral and turn angry or sad in turn, first-word calls are urgent throughout, calm calls hold neutral and happy only', () => {
  const clips: LabelledClip[] = [];
  for (const speaker of ['a', 'b', 'c'])
    for (const label of ['neutral', 'happy', 'angry', 'sad', 'fearful'] as const)
      for (let i = 0; i < 8; i++) clips.push({ path: `${speaker}-${label}-${i}.flac`, label, speaker, corpus: 'test' });
  const plan = planCalls(clips, DEFAULT_CALL_RECIPE, seededRandom(5));
  assert.deepEqual(planCalls(clips, DEFAULT_CALL_RECIPE, seededRandom(5)), plan, 'seeded');
  const escalating = plan.filter((c) => c.kind === 'escalating');
  assert.equal(escalating.length, 16);
  assert.deepEqual([...new Set(escalating.map((c) => c.emotion))], ['angry', 'sad']);
  for (const c of escalating) {
    assert.ok(c.clips.slice(0, c.urgentFrom).every((x) => x.label === 'neutral' && x.speaker === c.speaker));
    assert.ok(c.clips.slice(c.urgentFrom).every((x) => x.label === c.emotion && x.speaker === c.speaker));
    assert.equal(c.clips.length - c.urgentFrom, 6);
  }
  assert.ok(plan.filter((c) => c.kind === 'first-word').every((c) => c.urgentFrom === 0 && c.clips.every((x) => x.label === c.emotion)));
  const calm = plan.filter((c) => c.kind === 'calm');
  assert.equal(calm.length, 16);
  assert.ok(calm.every((c) => c.clips.every((x) => x.label === 'neutral' || x.label === 'happy')));
});

test('judged calls survive the round trip through their file, and a file of something else is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ser-edge-judged-'));
  const calls: JudgedCall[] = [
    { plan: { kind: 'escalating', emotion: 'sad', speaker: 's1', clips: [{ path: 'a.flac', label: 'neutral', speaker: 's1', corpus: '' }, { path: 'b.flac', label: 'sad', speaker: 's1', corpus: '' }], urgentFrom: 1 }, channel: 'telephone', seconds: 7.5, onset: 3.25, utterances: [{ start: 0.5, end: 3, label: 'neutral' }, { start: 3.25, end: 6, label: 'sad' }], windows: [{ start: 0.5, end: 3.5, probabilities: probs(S, 0.6) }] },
    { plan: { kind: 'calm', emotion: null, speaker: 's1', clips: [{ path: 'c.flac', label: 'happy', speaker: 's1', corpus: '' }], urgentFrom: 1 }, channel: 'clean', seconds: 4, onset: Infinity, utterances: [{ start: 0.5, end: 3, label: 'happy' }], windows: [] },
  ];
  const file = join(dir, 'fold-2.json');
  await writeJudgedCalls(file, { name: 'm', version: '1.0.0', labels: [...labels], heldOutFold: '2/5' }, calls);
  const back = await readJudgedCalls(file);
  assert.equal(back.model.heldOutFold, '2/5');
  assert.deepEqual(back.calls, calls);
  writeFileSync(join(dir, 'other.json'), '{"calls": 3}');
  await assert.rejects(readJudgedCalls(join(dir, 'other.json')), /other\.json: not a judged-calls file from simulate-calls --save-calls/);
});

test("the model card's example site config is a valid config, and gives the trackers its 3 / 12 row names", () => {
  const card = readFileSync(join(defaultModelDir(), 'MODEL_CARD.md'), 'utf8');
  const example = card.match(/`(\{"urgency": \{"emotions".*\})`/)?.[1];
  assert.ok(example, 'the card has the example');
  const config = daemonConfigSchema.parse({ site: 'lab', gateway: 'gw1', ...JSON.parse(example) });
  const shipped = JSON.parse(readFileSync(join(defaultModelDir(), 'manifest.json'), 'utf8')) as { labels: typeof labels; urgency: UrgencySection };
  const stage = new UrgencyStage(shipped.labels, shipped.urgency, undefined, { tracker: DEFAULT_TRACKER_CONFIG, emotions: config.urgency.emotions });
  assert.deepEqual(stage.configs[0], { smoothing: 0.5, thresholds: { medium: 0.725, high: 0.825 }, hysteresis: 0.1, raiseWindows: 4, clearWindows: 3 });
  assert.deepEqual(stage.configs[1], { smoothing: 0.5, thresholds: { medium: 0.775, high: 0.999 }, hysteresis: 0.1, raiseWindows: 3, clearWindows: 3 });
});
