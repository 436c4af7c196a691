import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { computeMetrics, tuneUrgentThreshold, type ClipOutcome } from '../src/training/evaluation.js';
import { confusionSvg, textWidth, writeReport } from '../src/training/eval-report.js';
import { tempDir } from './helpers/audio-fixtures.js';

const o = (truth: ClipOutcome['truth'], predicted: ClipOutcome['predicted'], p: Record<string, number> = {}, gender?: 'male' | 'female'): ClipOutcome => ({ truth, predicted, probabilities: p, ...(gender ? { gender } : {}) });

test('accuracy, confusion and per-class scores follow from the file verdicts', () => {
  const m = computeMetrics([o('angry', 'angry'), o('angry', 'sad'), o('sad', 'sad'), o('neutral', 'neutral')], ['neutral', 'sad', 'angry'], ['angry', 'sad']);
  assert.equal(m.n, 4);
  assert.equal(m.accuracy, 0.75);
  assert.deepEqual(m.confusion_labels, ['neutral', 'sad', 'angry']);
  assert.deepEqual(m.confusion, [[1, 0, 0], [0, 1, 0], [0, 1, 1]]);
  assert.deepEqual(m.per_class['sad'], { precision: 0.5, recall: 1, f1: 0.6667, support: 1 });
  assert.equal(m.per_class['angry']!.recall, 0.5);
});

test('labels the model cannot output and clips without speech count as errors', () => {
  const m = computeMetrics([o('calm', 'neutral'), o('neutral', null), o('neutral', 'neutral')], ['neutral', 'angry'], ['angry']);
  assert.equal(m.accuracy, 0.3333);
  assert.deepEqual(m.labels_not_in_model, ['calm']);
  assert.equal(m.no_speech, 1);
  assert.deepEqual(m.confusion_columns, ['neutral', 'angry', 'none']);
  assert.equal(m.per_class['calm']!.recall, 0);
});

test('urgent recall and precision count angry or sad as one class, by top emotion or by a probability threshold', () => {
  const outcomes = [o('angry', 'sad', { sad: 0.5, angry: 0.3 }), o('sad', 'fearful', { sad: 0.45, fearful: 0.55 }), o('neutral', 'angry', { angry: 0.6 }), o('neutral', 'neutral', { neutral: 0.9, sad: 0.1 })];
  const top = computeMetrics(outcomes, ['neutral', 'sad', 'angry', 'fearful'], ['angry', 'sad']);
  assert.equal(top.urgent.recall, 0.5);
  assert.equal(top.urgent.precision, 0.5);
  const byP = computeMetrics(outcomes, ['neutral', 'sad', 'angry', 'fearful'], ['angry', 'sad'], 0.4);
  assert.equal(byP.urgent.rule, 'threshold');
  assert.equal(byP.urgent.recall, 1);
  assert.equal(byP.urgent.precision, 0.6667);
  assert.ok(byP.urgent_top, 'the top-emotion figures are kept for comparison');
});

test('the urgent threshold is tuned for recall at the wanted precision', () => {
  const outcomes = [o('angry', 'angry', { angry: 0.9 }), o('sad', 'neutral', { sad: 0.45 }), o('neutral', 'neutral', { sad: 0.3 }), o('happy', 'happy', { angry: 0.1 })];
  const t = tuneUrgentThreshold(outcomes, ['angry', 'sad']);
  assert.ok(t > 0.1 && t <= 0.45, `threshold ${t}: flags both urgent clips and not the happy one`);
});

test('metrics break down by gender where the data says it', () => {
  const m = computeMetrics([o('angry', 'angry', {}, 'male'), o('sad', 'angry', {}, 'female'), o('sad', 'sad', {}, 'female')], ['sad', 'angry'], ['angry']);
  assert.deepEqual(Object.keys(m.per_gender!), ['female', 'male']);
  assert.equal(m.per_gender!['male']!.accuracy, 1);
  assert.equal(m.per_gender!['female']!.accuracy, 0.5);
});

test('a report is a markdown page with a confusion-matrix SVG', async () => {
  const dir = tempDir('ser-edge-report-');
  const m = computeMetrics([o('angry', 'angry'), o('sad', 'angry')], ['sad', 'angry'], ['angry', 'sad']);
  await writeReport(dir, m, { model: 'm@1.0.0', data: ['d'], channel: 'clean', command: 'ser-edge eval' });
  const md = await readFile(join(dir, 'report.md'), 'utf8');
  assert.match(md, /\| accuracy \| 50\.0% \|/);
  assert.match(md, /confusion\.svg/);
  const svg = await readFile(join(dir, 'confusion.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<rect x=/g) ?? []).length, 4, 'one cell per true × predicted pair');
});

/** The <text> elements of an SVG: where each starts, how it is anchored, its size and its text. */
function svgTexts(svg: string): { x: number; anchor: string; size: number; text: string; rotated: boolean }[] {
  return [...svg.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)].map(([, attrs, text]) => ({
    x: Number(/\bx="([\d.]+)"/.exec(attrs!)![1]),
    anchor: /text-anchor="(\w+)"/.exec(attrs!)?.[1] ?? 'start',
    size: Number(/font-size="(\d+)"/.exec(attrs!)?.[1] ?? 12),
    text: text!.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'),
    rotated: attrs!.includes('rotate('),
  }));
}

test('the confusion image shows its whole title, data line and caption within its width, and names the data evaluated', () => {
  const m = computeMetrics([o('angry', 'angry'), o('sad', 'angry'), o('neutral', 'neutral')], ['sad', 'angry', 'neutral'], ['angry', 'sad']);
  const data = 'data: /srv/corpora/emotional-speech/crema-d/AudioWAV-16k-mono-normalised, /srv/corpora/emotional-speech/ravdess/Actor_01-24 (3 clips) · each clip after 3 of its speaker\'s other clips in one call';
  const title = 'ser-ensemble-with-a-rather-long-name@1.2.3-rc.4 — telephone (speaker fold 3/5, seed 1)';
  const svg = confusionSvg(m, { title, data });
  const width = Number(/<svg [^>]*width="(\d+)"/.exec(svg)![1]);
  const texts = svgTexts(svg).filter((t) => !t.rotated);
  for (const t of texts) {
    const w = textWidth(t.text, t.size);
    const [from, to] = t.anchor === 'middle' ? [t.x - w / 2, t.x + w / 2] : t.anchor === 'end' ? [t.x - w, t.x] : [t.x, t.x + w];
    assert.ok(from >= 0 && to <= width, `"${t.text}" spans ${from.toFixed(0)}–${to.toFixed(0)} px of ${width}`);
  }
  const all = texts.map((t) => t.text).join(' ');
  const squash = (x: string) => x.replace(/\s+/g, '');
  for (const whole of [title, data, "cells: count and share of the true label's clips"]) assert.ok(squash(all).includes(squash(whole)), `"${whole}" is all there`);
});

test("a report's confusion image names the data set and the clips counted", async () => {
  const dir = tempDir('ser-edge-report-');
  const m = computeMetrics([o('angry', 'angry'), o('sad', 'angry')], ['sad', 'angry'], ['angry', 'sad']);
  await writeReport(dir, m, { model: 'm@1.0.0', data: ['../shared/data/cremad'], channel: 'telephone', callWarmup: 3, command: 'ser-edge eval' });
  const svg = await readFile(join(dir, 'confusion.svg'), 'utf8');
  const text = svgTexts(svg).map((t) => t.text).join(' ');
  assert.ok(text.includes("data: ../shared/data/cremad (2 clips) · each clip after 3 of its speaker's other clips in one call"), text);
});
