import { z } from 'zod';

/** What the head says of a window: the caller sounds angry, sad, or neither. */
export const HEAD_CLASSES = ['angry', 'sad', 'calm'] as const;
export type HeadClass = (typeof HEAD_CLASSES)[number];

/** Probabilities are floored here before the log, so one near-zero class cannot dominate the input. */
const PROBABILITY_FLOOR = 1e-4;

export const urgencyHeadSchema = z
  .object({
    kind: z.literal('call-logistic'),
    /** Windows at the start of a call whose log-probabilities make the caller's baseline. */
    baselineWindows: z.number().int().min(1).max(30),
    classes: z.tuple([z.literal('angry'), z.literal('sad'), z.literal('calm')]),
    /**
     * One row per class: a weight for each of the model's log-probabilities, then for the same
     * relative to the caller's baseline, then the bias (2 × labels + 1 values).
     */
    weights: z.array(z.array(z.number().refine(Number.isFinite, 'must be finite'))).length(3),
  })
  .strict();
export type UrgencyHeadSpec = z.infer<typeof urgencyHeadSchema>;

/**
 * What the head keeps of one call: the sum of the log-probabilities of its first
 * `baselineWindows` windows. Frozen once full, as the MLP's caller baseline is: a running
 * mean would follow the caller into anger or sadness and hide the very change it is for.
 */
export class HeadBaseline {
  readonly sum: Float64Array;
  seen = 0;
  constructor(labels: number) {
    this.sum = new Float64Array(labels);
  }
}

/**
 * The trained urgency stage: a multinomial logistic model over a window's six-class
 * log-probabilities and the same relative to the caller's own first windows. Sadness is
 * mostly a change from how this caller sounded (slower, lower, quieter than their own
 * neutral), which a window judged alone confuses with a calm voice; the relative half lets
 * the head see the change, the absolute half still flags a caller sad from the first word.
 * Small enough to fit on a few thousand call windows of held-out speakers, and cheap per
 * window (3 × 13 multiply-adds for six labels); nothing is allocated per window.
 */
export class UrgencyHead {
  readonly labels: number;
  readonly baselineWindows: number;
  private readonly weights: Float64Array;
  private readonly input: Float64Array;
  private readonly logits = new Float64Array(HEAD_CLASSES.length);

  constructor(spec: UrgencyHeadSpec, labels: number) {
    const width = 2 * labels + 1;
    spec.weights.forEach((row, c) => {
      if (row.length !== width) throw new Error(`urgency head: the ${HEAD_CLASSES[c]} row has ${row.length} weights; a model with ${labels} labels needs ${width} (2 × labels + bias)`);
    });
    this.labels = labels;
    this.baselineWindows = spec.baselineWindows;
    this.weights = Float64Array.from(spec.weights.flat());
    this.input = new Float64Array(2 * labels);
  }

  newCall(): HeadBaseline {
    return new HeadBaseline(this.labels);
  }

  /**
   * The head's input for a window of a call (log-probabilities, then relative to the
   * baseline: zeros while it is empty), written into `out`; the window then joins the
   * baseline if it is not yet full. A window is never part of its own baseline.
   */
  inputInto(probabilities: ArrayLike<number>, call: HeadBaseline, out: Float64Array): Float64Array {
    const n = this.labels;
    for (let i = 0; i < n; i++) {
      const p = probabilities[i]!;
      out[i] = Math.log(p > PROBABILITY_FLOOR ? p : PROBABILITY_FLOOR);
    }
    const seen = call.seen;
    for (let i = 0; i < n; i++) out[n + i] = seen === 0 ? 0 : out[i]! - call.sum[i]! / seen;
    if (seen < this.baselineWindows) {
      for (let i = 0; i < n; i++) call.sum[i]! += out[i]!;
      call.seen++;
    }
    return out;
  }

  /** P(angry), P(sad), P(calm) for a window of `call` into `out` (length 3). */
  scoresInto(probabilities: ArrayLike<number>, call: HeadBaseline, out: Float64Array | Float32Array): void {
    const x = this.inputInto(probabilities, call, this.input);
    headProbabilities(this.weights, x, this.logits);
    for (let c = 0; c < this.logits.length; c++) out[c] = this.logits[c]!;
  }
}

/** Softmax of W·[x, 1] into `out` (W row-major, classes × (|x| + 1)). */
export function headProbabilities(weights: ArrayLike<number>, x: ArrayLike<number>, out: Float64Array): void {
  const width = x.length + 1;
  let max = -Infinity;
  for (let c = 0; c < out.length; c++) {
    let z = weights[c * width + x.length]!;
    for (let i = 0; i < x.length; i++) z += weights[c * width + i]! * x[i]!;
    out[c] = z;
    if (z > max) max = z;
  }
  let total = 0;
  for (let c = 0; c < out.length; c++) total += out[c] = Math.exp(out[c]! - max);
  for (let c = 0; c < out.length; c++) out[c]! /= total;
}
