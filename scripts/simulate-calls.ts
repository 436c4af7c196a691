/**
 * The call as the unit of evaluation. For each bundle (one per speaker fold, each trained
 * with that fold held out, or one bundle with --fold), simulated calls of the held-out
 * speakers: escalating calls (four neutral clips, then six angry or six sad), calls angry
 * or sad from the first word, and calm calls of neutral and happy clips, with pauses and
 * background noise 30 dB down, clean and telephone-band. Each call runs through the live
 * path (streaming VAD and features in 100 ms blocks, the model with one call context, the
 * bundle's urgency stage in a fresh CallUrgency, as a headset channel runs them). Reports,
 * per fold and as the mean over folds: the share of angry callers flagged high and the
 * median seconds from their first angry utterance; the share of sad callers flagged medium
 * or higher and its median; false high and false medium flags per hour of calm calls.
 *
 *   node dist/scripts/simulate-calls.js --data ../shared/data/cremad ../shared/data/cremad-extra --models var/cv/fold-0 var/cv/fold-1 …
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { DATASET_FORMATS, type DatasetFormat } from '../src/datasets/scan-dataset.js';
import { heldOutClips, parseFold, scanAll, type SplitKind } from '../src/datasets/select-clips.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { DEFAULT_CALL_RECIPE, judgeCalls, planCalls } from '../src/training/call-simulation.js';
import { callOutcomeBreakdown, meanOverFolds, type CallOutcome } from '../src/training/call-outcomes.js';
import { writeJudgedCalls } from '../src/training/judged-calls-file.js';
import { UrgencyStage } from '../src/urgency/call-urgency.js';
import { DEFAULT_TRACKER_CONFIG, trackerConfigSchema, type TrackerConfig } from '../src/urgency/urgency-tracker.js';

// Operator-facing errors (a wrong option, a dataset or model problem) as one line, not a stack.
process.on('uncaughtException', (error) => {
  process.stderr.write(`simulate-calls: ${error.message}\n`);
  process.exit(2);
});

const int = (v: string) => Number.parseInt(v, 10);
const program = exitTwoOnUsageError(new Command())
  .name('simulate-calls')
  .description("Call-level figures of a model's urgency stage on simulated calls of held-out speakers, through the live path")
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .option('--models <dirs...>', 'bundles, one per fold (each trained with its fold held out)', ['models/default'])
  .addOption(new Option('--format <name>').choices(DATASET_FORMATS).default('auto'))
  .option('--fold <i/k>', 'for a bundle trained on everything: simulate the speakers of this fold')
  .option('--seed <n>', 'seed of the fold split (for --fold)', int, 1)
  .addOption(new Option('--split <kind>', 'how --fold folds are made').choices(['speaker', 'random']).default('speaker'))
  .option('--calls-seed <n>', 'seed of the calls', int, 11)
  .option('--calls <n>', 'escalating and first-word calls each, per fold (half angry, half sad)', int, DEFAULT_CALL_RECIPE.calls)
  .option('--calm-calls <n>', 'calm calls per fold', int, DEFAULT_CALL_RECIPE.calmCalls)
  .option('--snr <db>', 'background noise, dB below the speech', Number, DEFAULT_CALL_RECIPE.snrDb)
  .option('--channels <list>', 'clean and/or telephone', 'clean,telephone')
  .option('--weighted <list>', "judge with one weighted score instead of the bundle's head, on this tracker (e.g. smoothing=0.5,high=0.7,medium=0.5): what fixed thresholds over the six-class probabilities give")
  .option('--save-calls <dir>', "write each fold's judged calls to DIR/fold-{i}.json, for scripts/cross-fit-urgency")
  .option('--json', 'print one JSON object', false)
  .parse();
const opts = program.opts<{ data: string[]; models: string[]; format: DatasetFormat; fold?: string; seed: number; split: SplitKind; callsSeed: number; calls: number; calmCalls: number; snr: number; channels: string; weighted?: string; saveCalls?: string; json: boolean }>();
const channels = opts.channels.split(',').map((c) => {
  if (c !== 'clean' && c !== 'telephone') throw new Error(`--channels: "${c}" is neither clean nor telephone`);
  return c;
});

/** `key=value,…` over the daemon's default tracker; `high` and `medium` set the thresholds. */
function trackerFromOption(text: string): TrackerConfig {
  const config = structuredClone(DEFAULT_TRACKER_CONFIG);
  for (const pair of text ? text.split(',') : []) {
    const [key, value] = pair.split('=');
    const n = Number(value);
    if (key === 'high' || key === 'medium') config.thresholds[key] = n;
    else if (key === 'smoothing' || key === 'hysteresis' || key === 'raiseWindows' || key === 'clearWindows') config[key] = n;
    else throw new Error(`--weighted: unknown setting "${key}" (smoothing, high, medium, hysteresis, raiseWindows, clearWindows)`);
  }
  return trackerConfigSchema.parse(config);
}

const allClips = await scanAll(opts.data, opts.format);
const recipe = { ...DEFAULT_CALL_RECIPE, calls: opts.calls, calmCalls: opts.calmCalls, snrDb: opts.snr };
const perFold: { model: string; fold: string | null; speakers: number; outcome: Record<string, CallOutcome> }[] = [];
for (const dir of opts.models) {
  const classifier = await loadClassifier(dir);
  const m = classifier.manifest;
  // A model trained with a fold held out runs only on that fold's speakers.
  const own = typeof m.metrics['heldOutFold'] === 'string' ? (m.metrics['heldOutFold'] as string) : undefined;
  const request = own && !opts.fold ? { fold: own, seed: (m.metrics['splitSeed'] as number | undefined) ?? opts.seed, split: m.metrics['split'] === 'random' ? ('random' as const) : ('speaker' as const) } : { ...(opts.fold ? { fold: opts.fold } : {}), seed: opts.seed, split: opts.split };
  const clips = heldOutClips(allClips, m.metrics, request, dir);
  const fold = typeof m.metrics['heldOutFold'] === 'string' ? (m.metrics['heldOutFold'] as string) : (opts.fold ?? null);
  const stage = opts.weighted !== undefined ? new UrgencyStage(classifier.labels, undefined, m.urgencyWeights, { tracker: trackerFromOption(opts.weighted) }) : UrgencyStage.of(classifier);
  const random = seededRandom(opts.callsSeed);
  const calls = await judgeCalls(planCalls(clips, recipe, random), classifier, { channels, snrDb: recipe.snrDb, random });
  if (opts.saveCalls) {
    await mkdir(opts.saveCalls, { recursive: true });
    const file = join(opts.saveCalls, `fold-${fold ? parseFold(fold).index : 'all'}.json`);
    await writeJudgedCalls(file, { name: m.name, version: m.version, labels: [...classifier.labels], heldOutFold: fold }, calls);
    process.stderr.write(`wrote ${calls.length} judged calls to ${file}\n`);
  }
  const outcome = callOutcomeBreakdown(calls, stage);
  perFold.push({ model: `${m.name}@${m.version} (${dir})`, fold, speakers: new Set(clips.map((c) => c.speaker)).size, outcome });
  classifier.dispose();
  process.stderr.write(`fold ${fold ?? '-'}: ${summaryLine(outcome['all']!)}\n`);
}

function summaryLine(o: CallOutcome): string {
  const s = (x: number | null) => (x === null ? '–' : `${x.toFixed(1)} s`);
  return `angry high ${(o.angryHighShare * 100).toFixed(0)}% (median ${s(o.angryMedianSeconds)}), sad ≥ medium ${(o.sadFlaggedShare * 100).toFixed(0)}% (median ${s(o.sadMedianSeconds)}), false high ${o.falseHighPerHour}/h, false medium ${o.falseMediumPerHour}/h`;
}

const mean = meanOverFolds(perFold.map((f) => f.outcome));
const result = { command: `node dist/scripts/simulate-calls.js ${process.argv.slice(2).join(' ')}`, recipe, channels, folds: perFold, mean };
if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  process.stderr.write(`mean over ${perFold.length} fold${perFold.length === 1 ? '' : 's'}: ${summaryLine(mean['all'] as unknown as CallOutcome)}\n`);
}
