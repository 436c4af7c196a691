import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_URGENCY_THRESHOLDS, DEFAULT_URGENCY_WEIGHTS, levelForScore, resolveWeights, urgencyScore, weightsForLabels } from '../src/urgency/urgency-score.js';
import { UrgencyTracker } from '../src/urgency/urgency-tracker.js';
import { scoreText, truncateScore } from '../src/urgency/score-text.js';

const labels = ['angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad'] as const;
const w = weightsForLabels(labels, DEFAULT_URGENCY_WEIGHTS);

test('a confidently angry window scores high and a neutral one low', () => {
  assert.equal(levelForScore(urgencyScore([0.9, 0, 0, 0, 0.1, 0], w)), 'high');
  assert.equal(levelForScore(urgencyScore([0, 0, 0, 0.2, 0.8, 0], w)), 'low');
});

test('fear and disgust weigh medium by default', () => {
  // Half the weight of anger: a window all fear and disgust scores 0.5, one all anger 1.
  assert.ok(Math.abs(urgencyScore([0, 0.5, 0.5, 0, 0, 0], w) - 0.5) < 1e-6);
  assert.equal(levelForScore(urgencyScore([0, 0.5, 0.5, 0, 0, 0], w), { medium: 0.4, high: 0.6 }), 'medium');
});

test('site weights override the defaults per emotion', () => {
  const weights = resolveWeights({ sad: 0 });
  assert.equal(urgencyScore([0, 0, 0, 0, 0, 1], weightsForLabels(labels, weights)), 0);
  assert.equal(weights.angry, 1);
});

test('a score from non-finite probabilities is 0, never NaN', () => {
  assert.equal(urgencyScore([NaN, 0, 0, 0, 0, 0], w), 0);
});

test('one urgent window among calm ones does not raise a flag', () => {
  const t = new UrgencyTracker();
  const events = [0.1, 0.1, 0.95, 0.1, 0.1, 0.1].map((s) => t.update(s)).filter(Boolean);
  assert.deepEqual(events, []);
  assert.equal(t.level, 'low');
});

test('sustained anger raises high within a few windows', () => {
  const t = new UrgencyTracker();
  const events = [0.1, 0.95, 0.95, 0.95, 0.95].map((s) => t.update(s));
  const first = events.findIndex(Boolean);
  assert.ok(first >= 1 && first <= 4, `raised at window ${first}`);
  assert.equal(t.level, 'high');
});

test('the level clears only after several calm windows and does not flap on a borderline score', () => {
  const t = new UrgencyTracker();
  for (let i = 0; i < 6; i++) t.update(0.95);
  const high = DEFAULT_URGENCY_THRESHOLDS.high;
  const borderline = [-0.02, 0.02, -0.03, 0.01, -0.01].map((d) => t.update(high + d));
  assert.deepEqual(borderline.filter(Boolean), [], 'a score hovering at the threshold keeps the level');
  const calm = [0, 0, 0, 0, 0, 0].map((s) => t.update(s)).filter(Boolean);
  assert.ok(calm.length >= 1);
  assert.equal(calm[calm.length - 1]!.kind, 'clear');
  assert.equal(t.level, 'low');
});

test('reset forgets the call', () => {
  const t = new UrgencyTracker();
  for (let i = 0; i < 6; i++) t.update(0.95);
  t.reset();
  assert.equal(t.level, 'low');
  assert.equal(t.score, 0);
});

test('a printed score is cut, never rounded up, so it sits on the same side of every threshold as the score', () => {
  assert.equal(scoreText(0.696), '0.696');
  assert.equal(scoreText(0.6999), '0.699');
  assert.equal(scoreText(0.7), '0.700');
  assert.equal(scoreText(0.5), '0.500');
  assert.equal(scoreText(1), '1.000');
  assert.equal(scoreText(0), '0.000');
  assert.equal(truncateScore(0.69996, 4), 0.6999);
  // Near every threshold a config can hold (two decimals), and at random: the number shown gives the level the score gave.
  const near = Array.from({ length: 101 }, (_, i) => i / 100).flatMap((t) => [t, t - 1e-12, t + 1e-12, t - 1e-4, t - 6e-4, t + 4e-4].filter((x) => x >= 0 && x <= 1));
  const random = Array.from({ length: 5000 }, (_, i) => Math.abs(Math.sin(i * 12.9898)) % 1);
  for (const score of [...near, ...random]) {
    for (const digits of [2, 3, 4]) {
      const shown = Number(scoreText(score, digits));
      for (let t = 0; t <= 100; t++) assert.equal(shown >= t / 100, score >= t / 100, `${score} shown as ${shown} against ${t / 100}`);
    }
    assert.equal(levelForScore(Number(scoreText(score))), levelForScore(score));
  }
});
