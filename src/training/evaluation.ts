import type { Gender } from '../datasets/labelled-clip.js';
import { EMOTIONS, type Emotion } from '../model/emotions.js';

/** What the model said about one labelled clip (its file verdict). */
export interface ClipOutcome {
  truth: Emotion;
  /** Top emotion of the file verdict; null when no speech was found (always an error). */
  predicted: Emotion | null;
  /** File-level probabilities over the model's labels. */
  probabilities: Record<string, number>;
  gender?: Gender;
  speaker?: string;
}

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface UrgentScores {
  labels: Emotion[];
  /** `top`: urgent when the top emotion is urgent; `threshold`: when P(urgent labels) ≥ threshold. */
  rule: 'top' | 'threshold';
  threshold?: number;
  recall: number;
  precision: number;
  f1: number;
  support: number;
  flagged: number;
}

export interface EvalMetrics {
  n: number;
  accuracy: number;
  macro_f1: number;
  per_class: Record<string, ClassScores>;
  /** Rows: true labels (in `confusion_labels` order); columns: `confusion_columns` (model labels, then `none` for no speech). */
  confusion: number[][];
  confusion_labels: Emotion[];
  confusion_columns: string[];
  urgent: UrgentScores;
  /** The same urgent metrics under the other rule, for comparison. */
  urgent_top?: UrgentScores;
  no_speech: number;
  /** Labels in the data the model cannot output: their clips all count as errors. */
  labels_not_in_model: Emotion[];
  per_gender?: Record<string, { n: number; accuracy: number; macro_f1: number; urgent_recall: number; urgent_precision: number }>;
}

const r4 = (x: number) => Number(x.toFixed(4));
const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
const f1of = (p: number, r: number) => (p + r > 0 ? (2 * p * r) / (p + r) : 0);

/** P(urgent labels) of a verdict. */
export function urgentProbability(probabilities: Record<string, number>, urgent: readonly Emotion[]): number {
  return urgent.reduce((s, l) => s + (probabilities[l] ?? 0), 0);
}

export function urgentScores(outcomes: ClipOutcome[], urgent: readonly Emotion[], threshold?: number): UrgentScores {
  const isUrgent = (o: ClipOutcome) =>
    threshold === undefined ? o.predicted !== null && urgent.includes(o.predicted) : o.predicted !== null && urgentProbability(o.probabilities, urgent) >= threshold;
  let tp = 0, flagged = 0, support = 0;
  for (const o of outcomes) {
    const truth = urgent.includes(o.truth);
    const flag = isUrgent(o);
    if (truth) support++;
    if (flag) flagged++;
    if (truth && flag) tp++;
  }
  const recall = ratio(tp, support), precision = ratio(tp, flagged);
  return {
    labels: [...urgent],
    rule: threshold === undefined ? 'top' : 'threshold',
    ...(threshold === undefined ? {} : { threshold: r4(threshold) }),
    recall: r4(recall),
    precision: r4(precision),
    f1: r4(f1of(precision, recall)),
    support,
    flagged,
  };
}

/**
 * The P(urgent) threshold with the highest recall among those that meet the target
 * (precision ≥ `minPrecision` at recall ≥ `minRecall`), found on validation outcomes; when
 * no threshold meets it, the best-F1 one: neither a flag that almost never fires nor one
 * that fires on everyone.
 */
export function tuneUrgentThreshold(outcomes: ClipOutcome[], urgent: readonly Emotion[], minPrecision = 0.65, minRecall = 0.8): number {
  let best: { t: number; recall: number } | null = null;
  let bestF1 = { t: 0.5, f1: -1 };
  for (let t = 0.1; t <= 0.9001; t += 0.01) {
    const s = urgentScores(outcomes, urgent, t);
    if (s.precision >= minPrecision && s.recall >= minRecall && (!best || s.recall > best.recall)) best = { t, recall: s.recall };
    if (s.f1 > bestF1.f1) bestF1 = { t, f1: s.f1 };
  }
  return Number((best?.t ?? bestF1.t).toFixed(2));
}

function core(outcomes: ClipOutcome[], modelLabels: readonly Emotion[]) {
  const dataLabels = EMOTIONS.filter((e) => outcomes.some((o) => o.truth === e));
  const columns = [...modelLabels, ...(outcomes.some((o) => o.predicted === null) ? ['none'] : [])];
  const confusion = dataLabels.map(() => new Array<number>(columns.length).fill(0));
  let right = 0;
  for (const o of outcomes) {
    const row = dataLabels.indexOf(o.truth);
    const col = columns.indexOf(o.predicted ?? 'none');
    confusion[row]![col]!++;
    if (o.predicted === o.truth) right++;
  }
  const per_class: Record<string, ClassScores> = {};
  for (const label of EMOTIONS.filter((e) => dataLabels.includes(e) || modelLabels.includes(e))) {
    let tp = 0, predicted = 0, support = 0;
    for (const o of outcomes) {
      if (o.truth === label) support++;
      if (o.predicted === label) predicted++;
      if (o.truth === label && o.predicted === label) tp++;
    }
    const precision = ratio(tp, predicted), recall = ratio(tp, support);
    per_class[label] = { precision: r4(precision), recall: r4(recall), f1: r4(f1of(precision, recall)), support };
  }
  // Macro-F1 over the labels present in the data: a model label the data never shows
  // (e.g. evaluating a 6-class model on a corpus subset) would otherwise count as F1 = 0.
  const macro = dataLabels.reduce((s, l) => s + per_class[l]!.f1, 0) / Math.max(1, dataLabels.length);
  return { dataLabels, columns, confusion, per_class, accuracy: r4(ratio(right, outcomes.length)), macro_f1: r4(macro) };
}

/** Every figure `eval` reports, from the file verdicts of a labelled set. */
export function computeMetrics(outcomes: ClipOutcome[], modelLabels: readonly Emotion[], urgent: readonly Emotion[], urgentThreshold?: number): EvalMetrics {
  const c = core(outcomes, modelLabels);
  const metrics: EvalMetrics = {
    n: outcomes.length,
    accuracy: c.accuracy,
    macro_f1: c.macro_f1,
    per_class: c.per_class,
    confusion: c.confusion,
    confusion_labels: c.dataLabels,
    confusion_columns: c.columns,
    urgent: urgentScores(outcomes, urgent, urgentThreshold),
    ...(urgentThreshold !== undefined ? { urgent_top: urgentScores(outcomes, urgent) } : {}),
    no_speech: outcomes.filter((o) => o.predicted === null).length,
    labels_not_in_model: c.dataLabels.filter((l) => !modelLabels.includes(l)),
  };
  const genders = [...new Set(outcomes.map((o) => o.gender).filter((g): g is Gender => g !== undefined))].sort();
  if (genders.length > 0) {
    metrics.per_gender = {};
    for (const g of genders) {
      const subset = outcomes.filter((o) => o.gender === g);
      const gc = core(subset, modelLabels);
      const u = urgentScores(subset, urgent, urgentThreshold);
      metrics.per_gender[g] = { n: subset.length, accuracy: gc.accuracy, macro_f1: gc.macro_f1, urgent_recall: u.recall, urgent_precision: u.precision };
    }
  }
  return metrics;
}

export function parseUrgentLabels(value: string): Emotion[] {
  const labels = value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const l of labels) if (!(EMOTIONS as readonly string[]).includes(l)) throw new Error(`--urgent: "${l}" is not one of ${EMOTIONS.join(', ')}`);
  if (labels.length === 0) throw new Error('--urgent: name at least one emotion, e.g. angry,sad');
  return labels as Emotion[];
}
