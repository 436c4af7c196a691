/**
 * Probe: is the trained urgency head better than fixed thresholds over the six-class
 * probabilities at every operating point, or only at the one fit-urgency chose? Judges a
 * fold's held-out calls once (cached in the file format of simulate-calls --save-calls),
 * then sweeps each stage's angry and sad trackers and prints the best share at several
 * false-flag budgets. Findings go in the model card.
 *
 *   node dist/experiments/urgency-sweep.js --data ../shared/data/cremad ../shared/data/cremad-extra --model var/u/fold-1 --cache var/judged-fold-1.json
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { heldOutClips, scanAll } from '../src/datasets/select-clips.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { DEFAULT_CALL_RECIPE, judgeCalls, planCalls, type JudgedCall } from '../src/training/call-simulation.js';
import { callOutcome } from '../src/training/call-outcomes.js';
import { flagsOf } from '../src/training/call-simulation.js';
import { readJudgedCalls, writeJudgedCalls } from '../src/training/judged-calls-file.js';
import { UrgencyStage } from '../src/urgency/call-urgency.js';
import { DEFAULT_TRACKER_CONFIG, type TrackerConfig } from '../src/urgency/urgency-tracker.js';

const opts = exitTwoOnUsageError(new Command())
  .name('urgency-sweep')
  .description("Best call-level shares of a head bundle's urgency stage and of fixed thresholds over its probabilities, at several false-flag budgets, on one fold's held-out calls")
  .requiredOption('--data <dirs...>', 'corpus folders')
  .requiredOption('--model <dir>', 'a bundle with an urgency head, trained with a fold held out')
  .requiredOption('--cache <file>', 'the judged calls, written on the first run and read on later ones')
  .option('--calls <n>', 'calls of each kind', (v) => Number.parseInt(v, 10), 32)
  .parse()
  .opts<{ data: string[]; model: string; cache: string; calls: number }>();

const classifier = await loadClassifier(opts.model);
const m = classifier.manifest;
let calls: JudgedCall[];
if (existsSync(opts.cache)) {
  calls = (await readJudgedCalls(opts.cache)).calls;
} else {
  const clips = heldOutClips(await scanAll(opts.data, 'auto'), m.metrics, { fold: m.metrics['heldOutFold'] as string, seed: 1, split: 'speaker' }, opts.model);
  const random = seededRandom(11);
  calls = await judgeCalls(planCalls(clips, { ...DEFAULT_CALL_RECIPE, calls: opts.calls, calmCalls: opts.calls }, random), classifier, { channels: ['clean', 'telephone'], snrDb: 30, random });
  await writeJudgedCalls(opts.cache, { name: m.name, version: m.version, labels: [...classifier.labels], heldOutFold: (m.metrics['heldOutFold'] as string | undefined) ?? null }, calls);
}

const never: TrackerConfig = { ...DEFAULT_TRACKER_CONFIG, thresholds: { medium: 0.998, high: 0.999 } };
const grid = (a: number, b: number, s: number) => Array.from({ length: Math.round((b - a) / s) + 1 }, (_, i) => Number((a + i * s).toFixed(3)));
type Point = { share: number; falseHigh: number; falseMedium: number; median: number | null; config: string };

function sweep(make: (c: TrackerConfig) => UrgencyStage, field: 'angry' | 'sad'): Point[] {
  const points: Point[] = [];
  for (const smoothing of [0.35, 0.5, 0.7, 1])
    for (const raiseWindows of [1, 2, 3, 4])
      for (const t of grid(0.1, 0.98, 0.02)) {
        const config: TrackerConfig = field === 'angry'
          ? { ...DEFAULT_TRACKER_CONFIG, smoothing, raiseWindows, thresholds: { medium: Math.max(0.01, t - 0.1), high: t } }
          : { ...DEFAULT_TRACKER_CONFIG, smoothing, raiseWindows, hysteresis: Math.min(0.1, t / 2), thresholds: { medium: t, high: 0.999 } };
        const stage = make(config);
        const o = callOutcome(calls, stage, calls.map((c) => flagsOf(c, stage)));
        points.push({ share: field === 'angry' ? o.angryHighShare : o.sadFlaggedShare, falseHigh: o.falseHighPerHour, falseMedium: o.falseMediumPerHour, median: field === 'angry' ? o.angryMedianSeconds : o.sadMedianSeconds, config: `s=${smoothing} r=${raiseWindows} t=${t}` });
      }
  return points;
}

function best(points: Point[], budget: (p: Point) => boolean): string {
  const ok = points.filter(budget).sort((a, b) => b.share - a.share || (a.median ?? 99) - (b.median ?? 99));
  const p = ok[0];
  return p ? `${(p.share * 100).toFixed(0)}% median ${p.median} s (fh ${p.falseHigh}, fm ${p.falseMedium}; ${p.config})` : 'none';
}

const head = m.urgency!;
const headStage = (angry: TrackerConfig, sad: TrackerConfig) => new UrgencyStage(classifier.labels, { ...head, trackers: { angry, sad } }, undefined, { tracker: DEFAULT_TRACKER_CONFIG });
// Weighted: angry alone (weights angry=1) for the angry sweep, sad alone for the sad sweep, each on one tracker.
const weighted = (weights: Record<string, number>) => (config: TrackerConfig) => new UrgencyStage(classifier.labels, undefined, { neutral: 0, happy: 0, fearful: 0, disgust: 0, angry: 0, sad: 0, ...weights }, { tracker: config });
const rows: [string, Point[], Point[]][] = [
  ['head', sweep((c) => headStage(c, never), 'angry'), sweep((c) => headStage(never, c), 'sad')],
  ['P(angry) / P(sad)', sweep(weighted({ angry: 1 }), 'angry'), sweep(weighted({ sad: 1 }), 'sad')],
  ['P(angry)+P(sad)', sweep(weighted({ angry: 1, sad: 1 }), 'angry'), sweep(weighted({ angry: 1, sad: 1 }), 'sad')],
];
for (const [name, angry, sad] of rows) {
  console.log(name);
  for (const fh of [1, 2, 5]) console.log(`  angry high, false high ≤ ${fh}/h: ${best(angry, (p) => p.falseHigh <= fh && p.falseMedium <= 6)}`);
  for (const fm of [6, 10]) console.log(`  sad ≥ medium, false medium ≤ ${fm}/h: ${best(sad, (p) => p.falseMedium <= fm)}`);
}
