import type { DatasetFormat } from '../datasets/scan-dataset.js';
import { heldOutClips, scanAll, type SplitKind } from '../datasets/select-clips.js';
import type { Emotion } from '../model/emotions.js';
import { loadClassifier } from '../model/load-classifier.js';
import { writeReport } from '../training/eval-report.js';
import { evaluateClassifier, type EvalChannel } from '../training/evaluate-model.js';
import { parseUrgentLabels, type EvalMetrics } from '../training/evaluation.js';

export interface EvalCommandOptions {
  data: string[];
  model: string;
  format: DatasetFormat;
  json: boolean;
  report?: string;
  channel: EvalChannel;
  urgent: string;
  /** A number, `model` (the bundle's tuned threshold when it has one) or `top`. */
  urgentThreshold: string;
  fold?: string;
  seed: number;
  split: SplitKind;
  /** Keep only clips whose label the model has (cross-corpus comparisons on shared labels). */
  sharedLabels: boolean;
  /** Other clips of the speaker heard in the same call before each clip (models with a caller baseline). */
  callWarmup: number;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function summary(m: EvalMetrics): string {
  const lines = [
    `clips ${m.n}  accuracy ${pct(m.accuracy)}  macro-F1 ${m.macro_f1.toFixed(3)}`,
    `urgent (${m.urgent.labels.join('+')}, ${m.urgent.rule === 'threshold' ? `P ≥ ${m.urgent.threshold}` : 'top emotion'}): recall ${m.urgent.recall.toFixed(3)}  precision ${m.urgent.precision.toFixed(3)}`,
  ];
  if (m.urgent_top) lines.push(`urgent, top-emotion rule: recall ${m.urgent_top.recall.toFixed(3)}  precision ${m.urgent_top.precision.toFixed(3)}`);
  lines.push('label      precision recall  F1     support');
  for (const [l, s] of Object.entries(m.per_class)) lines.push(`${l.padEnd(10)} ${s.precision.toFixed(3).padStart(8)} ${s.recall.toFixed(3).padStart(6)} ${s.f1.toFixed(3).padStart(6)} ${String(s.support).padStart(7)}`);
  if (m.per_gender) for (const [g, s] of Object.entries(m.per_gender)) lines.push(`${g}: n ${s.n}  accuracy ${pct(s.accuracy)}  macro-F1 ${s.macro_f1.toFixed(3)}  urgent recall ${s.urgent_recall.toFixed(3)} precision ${s.urgent_precision.toFixed(3)}`);
  if (m.labels_not_in_model.length) lines.push(`labels the model cannot output (counted as errors): ${m.labels_not_in_model.join(', ')}`);
  lines.push(`confusion (rows true ${m.confusion_labels.join('/')}, columns ${m.confusion_columns.join('/')}):`);
  for (const [i, row] of m.confusion.entries()) lines.push(`  ${m.confusion_labels[i]!.padEnd(10)} ${row.map((c) => String(c).padStart(5)).join('')}`);
  return lines.join('\n');
}

export function resolveUrgentThreshold(value: string, bundleMetrics: Record<string, unknown>): number | undefined {
  if (value === 'top') return undefined;
  if (value === 'model') {
    const t = bundleMetrics['urgentThreshold'];
    return typeof t === 'number' ? t : undefined;
  }
  const t = Number(value);
  if (!(t > 0 && t < 1)) throw new Error(`--urgent-threshold "${value}" must be a probability between 0 and 1, "model" or "top"`);
  return t;
}

/** `ser-edge eval`: measures a bundle on labelled data through the real classify path. */
export async function runEval(options: EvalCommandOptions): Promise<number> {
  try {
    const urgent: Emotion[] = parseUrgentLabels(options.urgent);
    const classifier = await loadClassifier(options.model);
    let clips = heldOutClips(await scanAll(options.data, options.format), classifier.manifest.metrics, { ...(options.fold ? { fold: options.fold } : {}), seed: options.seed, split: options.split }, options.model);
    if (options.sharedLabels) clips = clips.filter((c) => classifier.labels.includes(c.label));
    const threshold = resolveUrgentThreshold(options.urgentThreshold, classifier.manifest.metrics);
    // Only a model that keeps a per-call context is warmed up: say so where it was.
    const callWarmup = classifier.newCallContext() !== null ? options.callWarmup : 0;
    let skipped = 0;
    const metrics = await evaluateClassifier(clips, classifier, {
      channel: options.channel,
      urgent,
      ...(threshold !== undefined ? { urgentThreshold: threshold } : {}),
      progress: !options.json && process.stderr.isTTY === true,
      callWarmup,
      seed: options.seed,
      onError: (clip, err) => {
        skipped++;
        process.stderr.write(`ser-edge eval: skipped ${clip.path}: ${err.message}\n`);
      },
    });
    classifier.dispose();
    const result = { model: `${classifier.manifest.name}@${classifier.manifest.version}`, channel: options.channel, callWarmup, skipped, ...metrics };
    if (options.report) {
      await writeReport(options.report, metrics, {
        model: result.model,
        data: options.data,
        channel: options.channel,
        callWarmup,
        command: ['ser-edge eval', ...process.argv.slice(3)].join(' '),
      });
    }
    process.stdout.write(options.json ? JSON.stringify(result) + '\n' : `${result.model} on ${options.data.join(', ')} (${options.channel}${callWarmup > 0 ? `, each clip after ${callWarmup} of its speaker's other clips in the same call` : ''})\n${summary(metrics)}\n${options.report ? `report: ${options.report}/report.md\n` : ''}`);
    if (skipped > 0) {
      process.stderr.write(`ser-edge eval: ${skipped} clip(s) could not be read and are not in these figures (each named above with the reason); fix or remove them and measure again\n`);
      return 1;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`ser-edge eval: ${(err as Error).message}\n`);
    return 2;
  }
}
