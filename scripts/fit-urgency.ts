/**
 * Trains a bundle's urgency stage for the call: simulated calls of the speakers that
 * validated the bundle's network (never its training speakers, never a held-out fold's),
 * through the live path, clean and telephone-band; a logistic head over each window's
 * log-probabilities and the same relative to the caller's first windows, fitted on those
 * calls' windows; then each emotion's tracker, chosen on the same calls for the call
 * targets. Writes the bundle with its `urgency` section to --out.
 *
 *   node dist/scripts/fit-urgency.js --data ../shared/data/cremad ../shared/data/cremad-extra --model var/cv/fold-0 --out var/cv/fold-0-urgency
 */
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { DATASET_FORMATS, type DatasetFormat } from '../src/datasets/scan-dataset.js';
import { scanAll, trainedOnClips } from '../src/datasets/select-clips.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { loadBundle, writeBundleWith } from '../src/model/model-bundle.js';
import { DEFAULT_CALL_RECIPE, judgeCalls, planCalls } from '../src/training/call-simulation.js';
import { DEFAULT_HEAD_FIT, fitUrgencyStage, VALIDATION_TARGETS } from '../src/training/fit-urgency-head.js';
import { validationSplit } from '../src/training/training-set.js';

process.on('uncaughtException', (error) => {
  process.stderr.write(`fit-urgency: ${error.message}\n`);
  process.exit(2);
});

const int = (v: string) => Number.parseInt(v, 10);
const program = exitTwoOnUsageError(new Command())
  .name('fit-urgency')
  .description("Fits a bundle's urgency head and per-emotion trackers on simulated calls of its validation speakers")
  .requiredOption('--data <dirs...>', 'the corpus folders the bundle was trained on (the same, in the same order)')
  .requiredOption('-m, --model <dir>', 'the bundle')
  .requiredOption('-o, --out <dir>', 'where to write the bundle with its urgency section')
  .addOption(new Option('--format <name>').choices(DATASET_FORMATS).default('auto'))
  .option('--calls <n>', 'escalating and first-word calls each (half angry, half sad)', int, 48)
  .option('--calm-calls <n>', 'calm calls (each about 48 s)', int, 96)
  .option('--baseline-windows <n>', "windows of a call's opening that make the caller's baseline", int, DEFAULT_HEAD_FIT.baselineWindows)
  .option('--sad-weight <x>', 'weight of sad windows over the class balance', Number, DEFAULT_HEAD_FIT.sadWeight)
  .option('--false-high <per-hour>', 'false high flags per hour of calm calls allowed on these calls', Number, VALIDATION_TARGETS.falseHighPerHour)
  .option('--false-medium <per-hour>', 'false flags of any level per hour allowed on these calls', Number, VALIDATION_TARGETS.falseMediumPerHour)
  .option('--seed <n>', 'seed of the calls', int, 7)
  .option('--json', 'print the result as one JSON object', false)
  .parse();
const opts = program.opts<{ data: string[]; model: string; out: string; format: DatasetFormat; calls: number; calmCalls: number; baselineWindows: number; sadWeight: number; falseHigh: number; falseMedium: number; seed: number; json: boolean }>();
const log = (line: string) => process.stderr.write(`${line}\n`);

function withoutOut(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out' || args[i] === '-o') i++;
    else if (!args[i]!.startsWith('--out=')) out.push(args[i]!);
  }
  return out;
}

const bundle = await loadBundle(opts.model);
const metrics = bundle.manifest.metrics;
const trainingSeed = typeof metrics['trainingSeed'] === 'number' ? metrics['trainingSeed'] : typeof metrics['splitSeed'] === 'number' ? metrics['splitSeed'] : 1;
const validationFolds = typeof metrics['validationFolds'] === 'number' ? metrics['validationFolds'] : 5;
const trained = trainedOnClips(await scanAll(opts.data, opts.format), metrics);
const validation = validationSplit(trained, validationFolds, trainingSeed).test;
const speakers = new Set(validation.map((c) => c.speaker));
log(`${bundle.manifest.name} ${bundle.manifest.version}: ${speakers.size} validation speakers (${validation.length} clips)`);

const classifier = await loadClassifier(opts.model);
const random = seededRandom(opts.seed);
const recipe = { ...DEFAULT_CALL_RECIPE, calls: opts.calls, calmCalls: opts.calmCalls };
const plan = planCalls(validation, recipe, random);
const t0 = Date.now();
const calls = await judgeCalls(plan, classifier, { channels: ['clean', 'telephone'], snrDb: recipe.snrDb, random, onCall: (n, total) => n % 50 === 0 && log(`  ${n}/${total} calls judged`) });
log(`${calls.length} calls judged in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

const labels = classifier.labels;
const fitted = fitUrgencyStage(calls, labels, { baselineWindows: opts.baselineWindows, sadWeight: opts.sadWeight, targets: { falseHighPerHour: opts.falseHigh, falseMediumPerHour: opts.falseMedium } });
const hours = (kind: string) => Number((calls.filter((c) => (kind === 'calm' ? c.plan.kind === 'calm' : c.plan.kind !== 'calm')).reduce((s, c) => s + c.seconds, 0) / 3600).toFixed(2));
const chosenOn = {
  // Without --out: where the bundle went is no part of how its urgency was chosen, and a rebuild elsewhere gives the same manifest.
  command: `node dist/scripts/fit-urgency.js ${withoutOut(process.argv.slice(2)).join(' ')}`,
  speakers: [...speakers].sort(),
  calls: { escalating: opts.calls, firstWord: opts.calls, calm: opts.calmCalls, channels: ['clean', 'telephone'], urgentHours: hours('urgent'), calmHours: hours('calm'), seed: opts.seed },
  windows: fitted.windows,
  targets: { falseHighPerHour: opts.falseHigh, falseMediumPerHour: opts.falseMedium },
  validation: fitted.fitted,
  settingsTried: fitted.tried,
};
await writeBundleWith(bundle, opts.out, { urgency: { ...fitted.section, chosenOn } });
classifier.dispose();
const result = { model: opts.out, trackers: fitted.section.trackers, validation: fitted.fitted };
process.stdout.write(opts.json ? JSON.stringify(result) + '\n' : JSON.stringify(result, null, 1) + '\n');
