/**
 * k-fold cross-validation by speaker (or, with --split random, the seed study's file-level
 * protocol, for comparison only): for each fold, `train` on the other folds exactly as the
 * train command does (validation speakers, augmentation, model selection inside the
 * training folds), write the bundle, load it with loadClassifier and classify the fold's
 * clips through the classify pipeline. Prints per-fold and pooled metrics.
 *
 * Each finished fold leaves `fold-N/outcomes.json` (its clip verdicts and fold row), and a
 * fold that has one is not trained again: on a 2-core machine two processes can each take
 * some folds (`--only 0,1,2` and `--only 3,4`) into the same --out, and a last run without
 * --only pools every fold into summary.json and the reports.
 *
 *   node dist/scripts/cross-validate.js --data ../shared/data/cremad --kind knn --folds 5 --out var/cv/knn
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { DATASET_FORMATS, type DatasetFormat } from '../src/datasets/scan-dataset.js';
import { foldOf, scanAll, type SplitKind } from '../src/datasets/select-clips.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { writeBundle } from '../src/model/model-bundle.js';
import { parseAugmentations } from '../src/training/augment.js';
import { classifyClips, EVAL_CHANNELS, type EvalChannel } from '../src/training/evaluate-model.js';
import { computeMetrics, parseUrgentLabels, type ClipOutcome, type EvalMetrics } from '../src/training/evaluation.js';
import { writeReport } from '../src/training/eval-report.js';
import { FEATURE_PRESET_NAMES, FEATURE_PRESETS, type FeaturePreset } from '../src/training/feature-presets.js';
import { trainKnn } from '../src/training/train-knn.js';
import { buildTrainingSet } from '../src/training/training-set.js';
import { DEFAULT_EPOCHS, parseMasking, urgentOnlyWeights } from '../src/commands/train-command.js';


// Operator-facing errors (a wrong option, a dataset or model problem) as one line, not a stack.
process.on('uncaughtException', (error) => {
  process.stderr.write(`cross-validate: ${error.message}\n`);
  process.exit(2);
});

const program = exitTwoOnUsageError(new Command())
  .name('cross-validate')
  .description('k-fold cross-validation by speaker: per fold, train on the other folds as `train` does, then classify the fold through the classify pipeline; per-fold and pooled metrics, reports in --out')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .requiredOption('--out <dir>', 'where fold bundles and the summary go')
  .addOption(new Option('--kind <kind>').choices(['knn', 'gru', 'mlp']).default('knn'))
  .addOption(new Option('--format <name>').choices(DATASET_FORMATS).default('auto'))
  .addOption(new Option('--features <preset>').choices(FEATURE_PRESET_NAMES).default('prosody'))
  .option('--augment <list>', 'training augmentation', 'noise,telephone')
  .option('--folds <k>', 'folds', (v) => Number.parseInt(v, 10), 5)
  .option('--only <list>', 'run only these folds (comma-separated indices)')
  .addOption(new Option('--split <kind>').choices(['speaker', 'random']).default('speaker'))
  .option('--seed <n>', 'seed', (v) => Number.parseInt(v, 10), 1)
  .option('--urgent <labels>', 'urgent emotions', 'angry,sad')
  .option('--channels <list>', 'evaluate clean and/or telephone', 'clean,telephone')
  .option('--units <list>', 'GRU units', '32,32')
  .option('--epochs <n>', 'GRU, MLP max epochs (default 25, 80)', (v) => Number.parseInt(v, 10))
  .option('--batch-size <n>', 'GRU, MLP batch size', (v) => Number.parseInt(v, 10), 64)
  .option('--hidden <list>', 'MLP hidden units', '64')
  .option('--members <n>', 'MLP networks in the bag', (v) => Number.parseInt(v, 10), 5)
  .option('--call-baseline <windows>', 'MLP caller baseline windows (0: none)', (v) => Number.parseInt(v, 10), 0)
  .option('--same-emotion-baselines <share>', 'MLP: share of training baselines drawn from clips of the item\'s own emotion', Number, 0)
  .option('--call-warmup <clips>', "clips of the speaker heard before each test clip, for a model with a caller baseline (as eval)", (v) => Number.parseInt(v, 10), 3)
  .option('--mask <steps,dims>', 'GRU training masks (as train --mask)', 'none')
  .option('--cache <dir>', 'feature cache', 'var/cache/features')
  .parse();

const given = program.opts<{ data: string[]; out: string; kind: 'knn' | 'gru' | 'mlp'; format: DatasetFormat; features: FeaturePreset; augment: string; folds: number; only?: string; split: SplitKind; seed: number; urgent: string; channels: string; units: string; epochs?: number; batchSize: number; hidden: string; members: number; callBaseline: number; sameEmotionBaselines: number; callWarmup: number; mask: string; cache: string }>();
// Per-kind defaults resolved here, so the settings key below records what actually ran.
const opts = { ...given, epochs: given.epochs ?? (given.kind === 'mlp' ? DEFAULT_EPOCHS.mlp : DEFAULT_EPOCHS.gru) };
const log = (line: string) => process.stderr.write(`${line}\n`);
const urgent = parseUrgentLabels(opts.urgent);
const features = FEATURE_PRESETS[opts.features];
const channels = opts.channels.split(',') as EvalChannel[];
for (const c of channels) if (!EVAL_CHANNELS.includes(c)) throw new Error(`--channels: unknown channel "${c}" (use ${EVAL_CHANNELS.join(', ')})`);
const clips = await scanAll(opts.data, opts.format);
const folds = opts.only ? opts.only.split(',').map(Number) : Array.from({ length: opts.folds }, (_, i) => i);
const pooled = new Map<EvalChannel, { thresholded: ClipOutcome[] }>(channels.map((c) => [c, { thresholded: [] }]));
const perFold: Record<string, unknown>[] = [];

type FoldRecord = { settings: string; row: Record<string, unknown>; outcomes: Record<string, ClipOutcome[]> };

/** What a fold's outcomes depend on: a fold left by a run with other settings is never pooled with this one's. */
const settings = JSON.stringify({ data: opts.data, format: opts.format, kind: opts.kind, features: opts.features, augment: opts.augment, folds: opts.folds, split: opts.split, seed: opts.seed, urgent: opts.urgent, units: opts.units, epochs: opts.epochs, batchSize: opts.batchSize, mask: opts.mask, ...(opts.kind === 'mlp' ? { hidden: opts.hidden, members: opts.members } : {}), ...(opts.callBaseline > 0 ? { callBaseline: opts.callBaseline, callWarmup: opts.callWarmup, sameEmotionBaselines: opts.sameEmotionBaselines } : {}) });

/** A fold finished by this or an earlier run with the same --out and settings, or null. */
async function finishedFold(fold: number): Promise<FoldRecord | null> {
  const file = join(opts.out, `fold-${fold}`, 'outcomes.json');
  let record: FoldRecord;
  try {
    record = JSON.parse(await readFile(file, 'utf8')) as FoldRecord;
  } catch {
    return null;
  }
  if (record.settings !== settings) {
    throw new Error(`${file} was made with other settings (${record.settings ?? 'unrecorded'}); use another --out, or delete it to run that fold again`);
  }
  return record;
}

for (const fold of folds) {
  const done = await finishedFold(fold);
  if (done) {
    log(`fold ${fold}: reusing ${join(opts.out, `fold-${fold}`, 'outcomes.json')}`);
    continue;
  }
  const split = foldOf(clips, { index: fold, count: opts.folds }, opts.seed, opts.split);
  const t0 = Date.now();
  const record: FoldRecord = { settings, row: {}, outcomes: {} };
  const set = await buildTrainingSet(split.train, { features, augmentations: parseAugmentations(opts.augment), validationFolds: 5, seed: opts.seed, cacheDir: opts.cache, log });
  const common = { name: `cv-fold-${fold}`, version: '0.0.0', features, seed: opts.seed, urgent, log, provenance: { heldOutFold: `${fold}/${opts.folds}`, split: opts.split, splitSeed: opts.seed, trainingSeed: opts.seed, validationFolds: 5 } };
  const model =
    opts.kind === 'knn'
      ? trainKnn(set, { ...common, maxReferenceBytes: 1_000_000 - 64 * 1024 })
      : opts.kind === 'mlp'
      ? await (await import('../src/training/train-mlp.js')).trainMlp(set, { ...common, hidden: opts.hidden.split(',').map(Number), members: opts.members, callBaseline: opts.callBaseline, sameEmotionBaselines: opts.sameEmotionBaselines, maxEpochs: opts.epochs, batchSize: opts.batchSize, onEpoch: (m, e, s) => log(`  fold ${fold} member ${m} epoch ${e} ${s}`) })
      : await (await import('../src/training/train-gru.js')).trainGru(set, { ...common, units: opts.units.split(',').map(Number), maxEpochs: opts.epochs, batchSize: opts.batchSize, ...parseMasking(opts.mask), onEpoch: (e, n, s) => log(`  fold ${fold} epoch ${e}/${n} ${s}`) });
  // The same bundle urgency as `train` writes, so fold bundles run in simulate-calls as the shipped one does.
  model.draft.urgencyWeights = urgentOnlyWeights(model.draft.labels, urgent);
  const dir = join(opts.out, `fold-${fold}`);
  await writeBundle(dir, model.draft, model.files);
  const classifier = await loadClassifier(dir);
  const threshold = classifier.manifest.metrics['urgentThreshold'] as number;
  const row: Record<string, unknown> = { fold, trainClips: split.train.length, testClips: split.test.length, testSpeakers: new Set(split.test.map((c) => c.speaker)).size, seconds: 0 };
  for (const channel of channels) {
    const outcomes = await classifyClips(split.test, classifier, { channel, urgent, callWarmup: opts.callWarmup, seed: opts.seed });
    const m = computeMetrics(outcomes, classifier.labels, urgent, threshold);
    record.outcomes[channel] = outcomes.map((o) => ({ ...o, probabilities: { ...o.probabilities, __t: threshold } }));
    row[channel] = { accuracy: m.accuracy, macro_f1: m.macro_f1, urgent_recall: m.urgent.recall, urgent_precision: m.urgent.precision, urgent_threshold: threshold, urgent_top_recall: m.urgent_top?.recall, urgent_top_precision: m.urgent_top?.precision, per_gender: m.per_gender };
    log(`fold ${fold} ${channel}: accuracy ${(m.accuracy * 100).toFixed(1)}% macro-F1 ${m.macro_f1} urgent recall ${m.urgent.recall} precision ${m.urgent.precision} (P ≥ ${threshold})`);
  }
  classifier.dispose();
  row.seconds = Math.round((Date.now() - t0) / 1000);
  record.row = row;
  await writeFile(join(dir, 'outcomes.json'), JSON.stringify(record) + '\n');
}

// Pool every fold of k that is finished (this run's and earlier runs'); with --only, a
// partial run stops here and leaves pooling to the run that completes the set.
const records: FoldRecord[] = [];
for (let fold = 0; fold < opts.folds; fold++) {
  const r = await finishedFold(fold);
  if (r) records.push(r);
}
if (records.length < opts.folds) {
  log(`${records.length} of ${opts.folds} folds finished in ${opts.out}; run again without --only to pool them`);
  process.exit(0);
}
for (const r of records) {
  perFold.push(r.row);
  for (const channel of channels) pooled.get(channel)!.thresholded.push(...(r.outcomes[channel] ?? []));
}

/** Urgent recall and precision where each clip is flagged by its own fold's validation-tuned threshold. */
function thresholdedUrgent(outcomes: ClipOutcome[]): { recall: number; precision: number; support: number; flagged: number } {
  let tp = 0, flagged = 0, support = 0;
  for (const o of outcomes) {
    const p = urgent.reduce((s, l) => s + (o.probabilities[l] ?? 0), 0);
    const flag = o.predicted !== null && p >= o.probabilities['__t']!;
    const truth = urgent.includes(o.truth);
    if (truth) support++;
    if (flag) flagged++;
    if (flag && truth) tp++;
  }
  return { recall: support ? tp / support : 0, precision: flagged ? tp / flagged : 0, support, flagged };
}

/** Pooled over folds; the urgent decision (overall and per gender) uses each fold's own validation-tuned threshold. */
function pooledMetrics(outcomes: ClipOutcome[]): EvalMetrics {
  const labels = [...new Set(outcomes.flatMap((o) => Object.keys(o.probabilities).filter((k) => k !== '__t')))] as EvalMetrics['confusion_labels'];
  const base = computeMetrics(outcomes, labels, urgent);
  const r4 = (x: number) => Number(x.toFixed(4));
  const { recall, precision, support, flagged } = thresholdedUrgent(outcomes);
  const perGender = base.per_gender
    ? Object.fromEntries(
        Object.entries(base.per_gender).map(([gender, g]) => {
          const u = thresholdedUrgent(outcomes.filter((o) => o.gender === gender));
          return [gender, { ...g, urgent_recall: r4(u.recall), urgent_precision: r4(u.precision) }];
        }),
      )
    : undefined;
  return {
    ...base,
    ...(perGender ? { per_gender: perGender } : {}),
    urgent_top: base.urgent,
    urgent: { labels: urgent, rule: 'threshold', recall: r4(recall), precision: r4(precision), f1: r4((2 * recall * precision) / (recall + precision || 1)), support, flagged },
  };
}

await mkdir(opts.out, { recursive: true });
const summary: Record<string, unknown> = { command: `node dist/scripts/cross-validate.js ${process.argv.slice(2).join(' ')}`, kind: opts.kind, folds: opts.folds, split: opts.split, seed: opts.seed, foldMinutes: Number((perFold.reduce((n, r) => n + (r.seconds as number), 0) / 60).toFixed(1)), perFold };
for (const channel of channels) {
  const m = pooledMetrics(pooled.get(channel)!.thresholded);
  const accs = perFold.map((r) => (r[channel] as { accuracy: number }).accuracy);
  const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
  const sd = Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, accs.length - 1));
  summary[channel] = { pooled: m, foldAccuracyMean: Number(mean.toFixed(4)), foldAccuracySd: Number(sd.toFixed(4)) };
  await writeReport(join(opts.out, `report-${channel}`), m, { model: `${opts.kind} ${opts.folds}-fold CV (${opts.split} split)`, data: opts.data, channel, command: summary.command as string });
  log(`${channel}: pooled accuracy ${(m.accuracy * 100).toFixed(1)}% (folds ${(mean * 100).toFixed(1)} ± ${(sd * 100).toFixed(1)}), macro-F1 ${m.macro_f1}, urgent recall ${m.urgent.recall} precision ${m.urgent.precision}; top-emotion rule ${m.urgent_top!.recall}/${m.urgent_top!.precision}`);
}
await writeFile(join(opts.out, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
process.stdout.write(JSON.stringify(summary) + '\n');
