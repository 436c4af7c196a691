import { z } from 'zod';
import { EMOTIONS, type Emotion } from '../model/emotions.js';

export const URGENCY_LEVELS = ['low', 'medium', 'high'] as const;
export type UrgencyLevel = (typeof URGENCY_LEVELS)[number];

export type UrgencyWeights = Record<Emotion, number>;

/**
 * How much each emotion says "serve this caller first", 0..1. Angry and sad callers are
 * the ones the queue must move; fear and disgust often come with them; the rest do not.
 */
export const DEFAULT_URGENCY_WEIGHTS: UrgencyWeights = {
  angry: 1,
  sad: 1,
  fearful: 0.5,
  disgust: 0.5,
  neutral: 0,
  calm: 0,
  happy: 0,
  surprised: 0,
};

export const urgencyThresholdsSchema = z
  .object({ medium: z.number().min(0).max(1), high: z.number().min(0).max(1) })
  .strict()
  .refine((t) => t.medium < t.high, { message: 'medium must be below high' });
export type UrgencyThresholds = z.infer<typeof urgencyThresholdsSchema>;

/**
 * The one tracker's thresholds for a bundle without a trained urgency head (a head bundle,
 * such as the shipped cremad-call 4.0.0, carries per-emotion thresholds of its own).
 * Chosen on simulated calls of held-out speakers for the earlier cremad-ensemble 3.0.0
 * (its card, under *History* in models/default/MODEL_CARD.md).
 */
export const DEFAULT_URGENCY_THRESHOLDS: UrgencyThresholds = { medium: 0.5, high: 0.7 };

export const urgencyWeightsSchema = z.partialRecord(z.enum(EMOTIONS), z.number().min(0).max(1));

/** Site overrides over the bundle's weights over the defaults, resolved once at start-up. */
export function resolveWeights(...layers: (Partial<UrgencyWeights> | undefined)[]): UrgencyWeights {
  return Object.assign({ ...DEFAULT_URGENCY_WEIGHTS }, ...layers.filter(Boolean));
}

/** Resolves the weight of each model label once, so scoring a window is a dot product. */
export function weightsForLabels(labels: readonly Emotion[], weights: UrgencyWeights): Float32Array {
  return Float32Array.from(labels, (l) => weights[l]);
}

export function urgencyScore(probabilities: ArrayLike<number>, labelWeights: Float32Array): number {
  let score = 0;
  let total = 0;
  for (let i = 0; i < labelWeights.length; i++) {
    const p = probabilities[i]!;
    score += p * labelWeights[i]!;
    total += p;
  }
  // Probabilities should sum to 1; dividing guards against a model that does not quite.
  const s = total > 0 ? score / total : 0;
  return s < 0 ? 0 : s > 1 ? 1 : s;
}

export function levelForScore(score: number, thresholds: UrgencyThresholds = DEFAULT_URGENCY_THRESHOLDS): UrgencyLevel {
  return score >= thresholds.high ? 'high' : score >= thresholds.medium ? 'medium' : 'low';
}

export function levelRank(level: UrgencyLevel): number {
  return URGENCY_LEVELS.indexOf(level);
}
