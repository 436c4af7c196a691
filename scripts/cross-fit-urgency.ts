/**
 * The urgency stage fitted across speaker folds. Each fold's calls were judged by the
 * model that held that fold out (`simulate-calls --save-calls`), so every window's
 * probabilities are out-of-sample, as a new caller's are. For each fold in turn, the head
 * is fitted and the trackers chosen on the other folds' calls, and the result measured on
 * that fold's calls: the cross-validated call-level figures of the whole procedure. Then
 * the same procedure on every fold's calls gives the stage written into --model's bundle
 * (a model trained on all the speakers), at --out.
 *
 *   node dist/scripts/cross-fit-urgency.js --calls var/calls/fold-*.json --model var/final/mlp75 --out var/final/call
 */
import { Command } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { loadBundle, writeBundleWith } from '../src/model/model-bundle.js';
import type { Emotion } from '../src/model/emotions.js';
import type { JudgedCall } from '../src/training/call-simulation.js';
import { callOutcomeBreakdown, meanOverFolds, type CallOutcome } from '../src/training/call-outcomes.js';
import { DEFAULT_HEAD_FIT, fitUrgencyStage, VALIDATION_TARGETS } from '../src/training/fit-urgency-head.js';
import { readJudgedCalls } from '../src/training/judged-calls-file.js';
import { UrgencyStage, type UrgencySection } from '../src/urgency/call-urgency.js';
import { DEFAULT_TRACKER_CONFIG } from '../src/urgency/urgency-tracker.js';

process.on('uncaughtException', (error) => {
  process.stderr.write(`cross-fit-urgency: ${error.message}\n`);
  process.exit(2);
});

const int = (v: string) => Number.parseInt(v, 10);
const program = exitTwoOnUsageError(new Command())
  .name('cross-fit-urgency')
  .description("Fits the urgency head and trackers on several folds' judged calls, with the cross-validated call-level figures, and writes them into a bundle")
  .requiredOption('--calls <files...>', 'judged calls, one file per fold (simulate-calls --save-calls)')
  .option('-m, --model <dir>', 'the bundle to give the stage fitted on every fold (same labels as the fold models)')
  .option('-o, --out <dir>', 'where to write that bundle')
  .option('--baseline-windows <n>', "windows of a call's opening that make the caller's baseline", int, DEFAULT_HEAD_FIT.baselineWindows)
  .option('--sad-weight <x>', 'weight of sad windows over the class balance', Number, DEFAULT_HEAD_FIT.sadWeight)
  .option('--false-high <per-hour>', 'false high flags per hour of calm calls allowed', Number, VALIDATION_TARGETS.falseHighPerHour)
  .option('--false-medium <per-hour>', 'false flags of any level per hour allowed', Number, VALIDATION_TARGETS.falseMediumPerHour)
  .option('--json', 'print the result as one JSON object', false)
  .parse();
const opts = program.opts<{ calls: string[]; model?: string; out?: string; baselineWindows: number; sadWeight: number; falseHigh: number; falseMedium: number; json: boolean }>();
if ((opts.model === undefined) !== (opts.out === undefined)) throw new Error('--model and --out go together: the bundle to give the stage, and where to write it');
const log = (line: string) => process.stderr.write(`${line}\n`);

const folds = await Promise.all(opts.calls.map(readJudgedCalls));
const labels = folds[0]!.model.labels as Emotion[];
for (const [i, f] of folds.entries()) {
  if (f.model.labels.join() !== labels.join()) throw new Error(`${opts.calls[i]}: its model's labels (${f.model.labels.join(', ')}) differ from ${opts.calls[0]}'s (${labels.join(', ')})`);
}
const heldOut = folds.map((f) => f.model.heldOutFold);
if (new Set(heldOut).size !== heldOut.length || heldOut.includes(null)) throw new Error(`each file must hold a different held-out fold's calls, not ${heldOut.join(', ')}`);
const targets = { falseHighPerHour: opts.falseHigh, falseMediumPerHour: opts.falseMedium };

const fitStage = (calls: JudgedCall[]) => fitUrgencyStage(calls, labels, { baselineWindows: opts.baselineWindows, sadWeight: opts.sadWeight, targets });

const perFold: { fold: string; trackers: UrgencySection['trackers']; outcome: Record<string, CallOutcome> }[] = [];
for (let k = 0; k < folds.length; k++) {
  const others = folds.filter((_, i) => i !== k).flatMap((f) => f.calls);
  const { section } = fitStage(others);
  const stage = new UrgencyStage(labels, section, undefined, { tracker: DEFAULT_TRACKER_CONFIG });
  const outcome = callOutcomeBreakdown(folds[k]!.calls, stage);
  perFold.push({ fold: heldOut[k]!, trackers: section.trackers, outcome });
  const o = outcome['all']!;
  log(`fold ${heldOut[k]}: angry high ${(o.angryHighShare * 100).toFixed(0)}% (median ${o.angryMedianSeconds} s), sad ≥ medium ${(o.sadFlaggedShare * 100).toFixed(0)}% (median ${o.sadMedianSeconds} s), false high ${o.falseHighPerHour}/h, false medium ${o.falseMediumPerHour}/h`);
}

const mean = meanOverFolds(perFold.map((f) => f.outcome));
const m = mean['all']!;
log(`mean over ${folds.length} folds: angry high ${((m['angryHighShare'] ?? 0) * 100).toFixed(1)}% (median ${m['angryMedianSeconds']} s), sad ≥ medium ${((m['sadFlaggedShare'] ?? 0) * 100).toFixed(1)}% (median ${m['sadMedianSeconds']} s), false high ${m['falseHighPerHour']}/h, false medium ${m['falseMediumPerHour']}/h`);

const command = `node dist/scripts/cross-fit-urgency.js --calls ${opts.calls.join(' ')}${opts.baselineWindows !== DEFAULT_HEAD_FIT.baselineWindows ? ` --baseline-windows ${opts.baselineWindows}` : ''}${opts.sadWeight !== DEFAULT_HEAD_FIT.sadWeight ? ` --sad-weight ${opts.sadWeight}` : ''}${opts.falseHigh !== VALIDATION_TARGETS.falseHighPerHour ? ` --false-high ${opts.falseHigh}` : ''}${opts.falseMedium !== VALIDATION_TARGETS.falseMediumPerHour ? ` --false-medium ${opts.falseMedium}` : ''}`;
let written: string | null = null;
if (opts.model && opts.out) {
  const bundle = await loadBundle(opts.model);
  if (bundle.manifest.labels.join() !== labels.join()) throw new Error(`${opts.model}: its labels (${bundle.manifest.labels.join(', ')}) differ from the fold models' (${labels.join(', ')})`);
  const all = fitStage(folds.flatMap((f) => f.calls));
  const calmHours = folds.flatMap((f) => f.calls).filter((c) => c.plan.kind === 'calm').reduce((s, c) => s + c.seconds, 0) / 3600;
  const chosenOn = {
    command,
    folds: heldOut,
    calls: folds.reduce((n, f) => n + f.calls.length, 0),
    calmHours: Number(calmHours.toFixed(2)),
    windows: all.windows,
    targets,
    // The procedure's figures on each fold it was not fitted on, then on the calls it was fitted on.
    crossValidated: { perFold: perFold.map((f) => ({ fold: f.fold, ...f.outcome['all']! })), mean: mean['all'] },
    fitted: all.fitted,
  };
  await writeBundleWith(bundle, opts.out, { urgency: { ...all.section, chosenOn } });
  written = opts.out;
  log(`wrote ${opts.out}: ${bundle.manifest.name} ${bundle.manifest.version} with the stage fitted on all ${folds.length} folds' calls`);
}
const result = { command, perFold, mean, ...(written ? { model: written } : {}) };
process.stdout.write(opts.json ? JSON.stringify(result) + '\n' : JSON.stringify(result, null, 1) + '\n');
