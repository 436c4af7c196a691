/**
 * Time to flag on simulated calls. A call is clips of one speaker joined with pauses over
 * background noise: calm (neutral) utterances first, then angry or sad ones. The call runs
 * through the live path (streaming VAD + features, the model, per-call UrgencyTracker with
 * the daemon's defaults); a flag is the tracker reaching `high`. Reports the median seconds
 * from the first urgent utterance's start to the flag, the share of urgent calls flagged,
 * and false flags per hour on calm-only calls of the same speakers. `--calm-utterances 0`
 * simulates callers who are urgent from their first word.
 *
 *   node dist/scripts/simulate-calls.js --data ../shared/data/cremad --model var/cv/fold-0 --fold 0/5
 */
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { DATASET_FORMATS, type DatasetFormat } from '../src/datasets/scan-dataset.js';
import { heldOutClips, scanAll, type SplitKind } from '../src/datasets/select-clips.js';
import type { LabelledClip } from '../src/datasets/labelled-clip.js';
import { seededRandom, shuffleInPlace } from '../src/datasets/seeded-random.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import type { Emotion } from '../src/model/emotions.js';
import { loadMono } from '../src/pipeline/file-features.js';
import { SpeechFeatureStream } from '../src/pipeline/speech-feature-stream.js';
import { judgeWindow } from '../src/pipeline/window-verdict.js';
import { resolveWeights, weightsForLabels } from '../src/urgency/urgency-score.js';
import { DEFAULT_TRACKER_CONFIG, UrgencyTracker, trackerConfigSchema, type TrackerConfig } from '../src/urgency/urgency-tracker.js';
import { addNoise, telephoneBand } from '../src/training/augment.js';


// Operator-facing errors (a wrong option, a dataset or model problem) as one line, not a stack.
process.on('uncaughtException', (error) => {
  process.stderr.write(`simulate-calls: ${error.message}\n`);
  process.exit(2);
});

const program = exitTwoOnUsageError(new Command())
  .name('simulate-calls')
  .description('Time to flag on simulated calls (calm utterances of one speaker, then angry or sad ones, over noise) through the live path; false flags per hour on calm-only calls')
  .requiredOption('--data <dirs...>', 'corpus folders or CSV files')
  .option('-m, --model <dir>', 'model bundle', 'models/default')
  .addOption(new Option('--format <name>').choices(DATASET_FORMATS).default('auto'))
  .option('--fold <i/k>', 'use only the speakers of this fold (those a `--holdout i/k` model never saw)')
  .option('--seed <n>', 'seed of the fold split and of the calls', (v) => Number.parseInt(v, 10), 1)
  .addOption(new Option('--split <kind>', 'how --fold folds are made').choices(['speaker', 'random']).default('speaker'))
  .option('--calls <n>', 'urgent calls to simulate (and as many calm-only calls)', (v) => Number.parseInt(v, 10), 40)
  .option('--snr <db>', 'background noise SNR', (v) => Number(v), 20)
  .option('--calm-utterances <n>', 'neutral utterances before the urgent part', (v) => Number.parseInt(v, 10), 4)
  .option('--urgent-utterances <n>', 'urgent utterances', (v) => Number.parseInt(v, 10), 5)
  .option('--calm-labels <list>', 'emotions of calm-only calls', 'neutral')
  .option('--weights <list>', 'urgency weights to try instead of the bundle\'s, e.g. angry=1,sad=1,fearful=0,disgust=0')
  .option('--tracker <list>', 'tracker settings to try instead of the daemon defaults, e.g. smoothing=0.3,high=0.7,medium=0.45,raiseWindows=3; several settings separated by ";" are compared on the same calls')
  .option('--ensemble-with <dir>', 'a second bundle (same features and labels) whose window scores are averaged with the model\'s: what an ensemble of the two would flag')
  .option('--telephone', 'pass calls through the telephone-band channel', false)
  .option('--json', 'print one JSON object', false)
  .parse();
const opts = program.opts<{ data: string[]; model: string; format: DatasetFormat; fold?: string; seed: number; split: SplitKind; calls: number; snr: number; calmUtterances: number; urgentUtterances: number; telephone: boolean; json: boolean; calmLabels: string; weights?: string; tracker?: string; ensembleWith?: string }>();
const calmLabels = opts.calmLabels.split(',');

const allClips = await scanAll(opts.data, opts.format);
const classifier = await loadClassifier(opts.model);
// A model trained with --holdout runs only on the speakers it never saw.
const clips = heldOutClips(allClips, classifier.manifest.metrics, { ...(opts.fold ? { fold: opts.fold } : {}), seed: opts.seed, split: opts.split }, opts.model);
const partner = opts.ensembleWith ? await loadClassifier(opts.ensembleWith) : null;
if (partner) {
  // The partner must hold out the same speakers: the same check, on the whole corpus.
  const partnerClips = heldOutClips(allClips, partner.manifest.metrics, { ...(opts.fold ? { fold: opts.fold } : {}), seed: opts.seed, split: opts.split }, opts.ensembleWith!);
  if (partnerClips.map((c) => c.path).join() !== clips.map((c) => c.path).join()) throw new Error(`--ensemble-with ${opts.ensembleWith} held out other speakers than ${opts.model}`);
  if (JSON.stringify(partner.manifest.features) !== JSON.stringify(classifier.manifest.features) || partner.labels.join() !== classifier.labels.join())
    throw new Error(`--ensemble-with ${opts.ensembleWith}: its features or labels differ from ${opts.model}'s, so one window cannot feed both`);
}
const rate = classifier.manifest.features.sampleRate;
const override = opts.weights ? Object.fromEntries(opts.weights.split(',').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])])) : undefined;
// Several settings separated by `;` are all measured on the same calls (the model runs once).
const trackers = (opts.tracker ?? '').split(';').map((t) => trackerFromOption(t || undefined));
const weights = weightsForLabels(classifier.labels, resolveWeights(classifier.manifest.urgencyWeights, override));
const random = seededRandom(opts.seed);
const bySpeaker = new Map<string, LabelledClip[]>();
for (const c of clips) bySpeaker.set(c.speaker, [...(bySpeaker.get(c.speaker) ?? []), c]);
const speakers = [...bySpeaker.keys()].sort();
const audioCache = new Map<string, Float32Array>();
const audio = async (c: LabelledClip) => audioCache.get(c.path) ?? audioCache.set(c.path, (await loadMono(c.path, rate)).samples).get(c.path)!;

/** `key=value,…` over the daemon's default tracker; `high` and `medium` set the thresholds. */
function trackerFromOption(text: string | undefined): TrackerConfig {
  const config = structuredClone(DEFAULT_TRACKER_CONFIG);
  for (const pair of text ? text.split(',') : []) {
    const [key, value] = pair.split('=');
    const n = Number(value);
    if (key === 'high' || key === 'medium') config.thresholds[key] = n;
    else if (key === 'smoothing' || key === 'hysteresis' || key === 'raiseWindows' || key === 'clearWindows') config[key] = n;
    else throw new Error(`--tracker: unknown setting "${key}" (smoothing, high, medium, hysteresis, raiseWindows, clearWindows)`);
  }
  return trackerConfigSchema.parse(config);
}

async function buildCall(parts: LabelledClip[]): Promise<{ samples: Float32Array; starts: number[] }> {
  const pieces: Float32Array[] = [];
  const starts: number[] = [];
  let at = Math.round((0.5 + random()) * rate);
  pieces.push(new Float32Array(at));
  for (const c of parts) {
    starts.push(at / rate);
    const a = await audio(c);
    const pause = new Float32Array(Math.round((0.4 + 1.2 * random()) * rate));
    pieces.push(a, pause);
    at += a.length + pause.length;
  }
  const joined = new Float32Array(at);
  let o = 0;
  for (const p of pieces) {
    joined.set(p, o);
    o += p.length;
  }
  let samples = addNoise(joined, opts.snr, Math.floor(random() * 2 ** 31));
  if (opts.telephone) samples = telephoneBand(samples, rate);
  return { samples, starts };
}

/** A call's window scores in order, with each window's end (seconds): what every tracker setting reads. */
interface ScoredCall {
  scores: number[];
  ends: number[];
}

/** Runs a call through the live path (streaming VAD, features, the model) once. */
function scoreCall(samples: Float32Array): ScoredCall {
  const stream = new SpeechFeatureStream({ features: classifier.manifest.features, windowing: DEFAULT_WINDOWING });
  const call: ScoredCall = { scores: [], ends: [] };
  // One context per model for the whole call, as a headset channel keeps for its call.
  const context = classifier.newCallContext();
  const partnerContext = partner?.newCallContext() ?? null;
  const onWindow = (w: Parameters<Parameters<SpeechFeatureStream['push']>[1]>[0]) => {
    const score = judgeWindow(classifier, w, weights, context).score;
    // Both scores are Σ weight × probability over the same labels, so their mean is the averaged model's score.
    call.scores.push(partner ? (score + judgeWindow(partner, w, weights, partnerContext).score) / 2 : score);
    call.ends.push(w.endSeconds);
  };
  const block = Math.round(0.1 * rate);
  for (let i = 0; i < samples.length; i += block) stream.push(samples.subarray(i, i + block), onWindow);
  stream.end(onWindow);
  return call;
}

/** The times (window ends) at which a per-call tracker with `config` rose to `level` or above. */
function raisesTo(call: ScoredCall, config: TrackerConfig, level: 'medium' | 'high'): number[] {
  const tracker = new UrgencyTracker(config);
  const raises: number[] = [];
  call.scores.forEach((score, i) => {
    const change = tracker.update(score);
    // `high`: every rise to high; `medium`: every rise out of low (a new flag of any level).
    if (change?.kind === 'raise' && (level === 'high' ? change.level === 'high' : change.previous === 'low')) raises.push(call.ends[i]!);
  });
  return raises;
}

const pick = <T>(items: T[], n: number) => shuffleInPlace([...items], random).slice(0, n);
const urgentCalls: { call: ScoredCall; onset: number; emotion: Emotion }[] = [];
const calmCalls: ScoredCall[] = [];
let urgentSeconds = 0, calmSeconds = 0;
for (let call = 0; call < opts.calls; call++) {
  const speaker = speakers[call % speakers.length]!;
  const own = bySpeaker.get(speaker)!;
  const emotion: Emotion = call % 2 === 0 ? 'angry' : 'sad';
  const calm = pick(own.filter((c) => c.label === 'neutral'), opts.calmUtterances);
  const hot = pick(own.filter((c) => c.label === emotion), opts.urgentUtterances);
  // With --calm-utterances 0 a call is urgent from its first word (no calm opening to skip).
  if ((opts.calmUtterances > 0 && calm.length === 0) || hot.length === 0) continue;
  const { samples, starts } = await buildCall([...calm, ...hot]);
  urgentCalls.push({ call: scoreCall(samples), onset: starts[calm.length]!, emotion });
  urgentSeconds += samples.length / rate;

  // A calm-only call of the same speaker: up to 20 utterances of the calm labels.
  const calmOnly = await buildCall(pick(own.filter((c) => calmLabels.includes(c.label)), 20));
  calmCalls.push(scoreCall(calmOnly.samples));
  calmSeconds += calmOnly.samples.length / rate;
}

/**
 * Time to flag and false flags for one tracker setting, over the same scored calls: for
 * the high flag, and for any flag (a rise from low to medium or high).
 */
function outcome(config: TrackerConfig) {
  const atLevel = (level: 'medium' | 'high') => {
    const delays: number[] = [];
    let earlyFlags = 0, calmFlags = 0;
    const flaggedBy: Record<string, { calls: number; flagged: number }> = {};
    for (const { call, onset, emotion } of urgentCalls) {
      const raises = raisesTo(call, config, level);
      if (raises.some((t) => t < onset)) earlyFlags++;
      const flag = raises.find((t) => t >= onset);
      const tally = (flaggedBy[emotion] ??= { calls: 0, flagged: 0 });
      tally.calls++;
      if (flag !== undefined) {
        delays.push(flag - onset);
        tally.flagged++;
      }
    }
    for (const call of calmCalls) calmFlags += raisesTo(call, config, level).length;
    delays.sort((a, b) => a - b);
    const mid = delays.length >> 1;
    const median = delays.length === 0 ? null : delays.length % 2 ? delays[mid]! : (delays[mid - 1]! + delays[mid]!) / 2;
    return {
      flagged: delays.length,
      flaggedShare: Number((delays.length / Math.max(1, urgentCalls.length)).toFixed(3)),
      flaggedShareByEmotion: Object.fromEntries(Object.entries(flaggedBy).map(([e, t]) => [e, Number((t.flagged / t.calls).toFixed(3))])),
      medianSecondsToFlag: median === null ? null : Number(median.toFixed(2)),
      p90SecondsToFlag: delays.length ? Number(delays[Math.floor(delays.length * 0.9)]!.toFixed(2)) : null,
      flagsBeforeUrgentPart: earlyFlags,
      falseFlagsPerHour: calmSeconds > 0 ? Number((calmFlags / (calmSeconds / 3600)).toFixed(1)) : null,
    };
  };
  return { tracker: config, urgentCalls: urgentCalls.length, ...atLevel('high'), anyLevel: atLevel('medium') };
}

const common = {
  model: `${classifier.manifest.name}@${classifier.manifest.version}${partner ? ` + ${partner.manifest.name}@${partner.manifest.version}` : ''}`,
  command: `node dist/scripts/simulate-calls.js ${process.argv.slice(2).join(' ')}`,
  weights: Object.fromEntries(classifier.labels.map((l, i) => [l, weights[i]])),
  speakers: speakers.length,
  calmOnlyCalls: calmCalls.length,
  calmLabels,
  calmOnlyHours: Number((calmSeconds / 3600).toFixed(3)),
  urgentCallHours: Number((urgentSeconds / 3600).toFixed(3)),
};
const results = trackers.map(outcome);
const result = results.length === 1 ? { ...common, ...results[0] } : { ...common, settings: results };
process.stdout.write(opts.json ? JSON.stringify(result) + '\n' : JSON.stringify(result, null, 1) + '\n');
classifier.dispose();
