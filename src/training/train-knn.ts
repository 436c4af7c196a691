import { seededRandom } from '../datasets/seeded-random.js';
import type { FeatureConfig } from '../features/feature-config.js';
import type { Emotion } from '../model/emotions.js';
import type { ManifestDraft } from '../model/bundle-manifest.js';
import { probabilityRecord } from '../pipeline/window-verdict.js';
import { argMax } from '../model/classifier.js';
import { computeMetrics, tuneUrgentThreshold, type ClipOutcome } from './evaluation.js';
import { buildKnnModel, chooseKnn, oversampleToBalance, poolWindows, subsamplePooled, type KnnModel } from './knn-trainer.js';
import type { TrainingSet } from './training-set.js';

export interface KnnTrainOptions {
  name: string;
  version: string;
  features: FeatureConfig;
  seed: number;
  urgent: readonly Emotion[];
  /** Bytes the int8 references may take (the bundle size budget). */
  maxReferenceBytes: number;
  maxK?: number;
  log?: (line: string) => void;
  /** Facts about the run recorded in the manifest's metrics. */
  provenance?: Record<string, unknown>;
}

/**
 * KNN training: choose k and the metric on the validation speakers, tune the urgent
 * threshold there, then build the references from every speaker (train + validation,
 * with augmentation and class balancing), int8, within the size budget.
 */
export function trainKnn(set: TrainingSet, options: KnnTrainOptions): KnnModel {
  const log = options.log ?? (() => {});
  const random = seededRandom(options.seed);
  const budgetRows = (pooledDim: number) => Math.floor(options.maxReferenceBytes / pooledDim);

  const trainPooled = poolWindows(oversampleToBalance(set.train, random), set.labels);
  const selectionRefs = subsamplePooled(trainPooled, budgetRows(trainPooled.dim), random);
  const choice = chooseKnn(selectionRefs, set.validation, set.labels, options.features, options.maxK ?? 15);
  log(`validation (${set.validation.length} clips): best k=${choice.k} ${choice.metric} accuracy ${(choice.accuracy * 100).toFixed(1)}%`);

  // KnnClassifier's uniform vote smoothing, so the tuned threshold is the deployed model's.
  const probabilities = choice.validationProbabilities.get(choice.metric)![choice.k - 1]!.map((p) => p.map((v) => 0.98 * v + 0.02 / set.labels.length));
  const outcomes: ClipOutcome[] = set.validation.map((item, c) => ({
    truth: item.clip.label,
    predicted: set.labels[argMax(probabilities[c]!)]!,
    probabilities: probabilityRecord(set.labels, probabilities[c]!),
    ...(item.clip.gender ? { gender: item.clip.gender } : {}),
  }));
  const urgentThreshold = tuneUrgentThreshold(outcomes, options.urgent);
  const validation = computeMetrics(outcomes, set.labels, options.urgent, urgentThreshold);
  log(`validation urgent threshold P(${options.urgent.join('+')}) ≥ ${urgentThreshold}: recall ${validation.urgent.recall} precision ${validation.urgent.precision}`);

  const all = poolWindows(oversampleToBalance([...set.train, ...set.validation, ...set.validationAugmented], random), set.labels);
  const references = subsamplePooled(all, budgetRows(all.dim), random);
  if (references.count < all.count) log(`references: ${references.count} of ${all.count} windows kept (size budget ${options.maxReferenceBytes} bytes)`);
  return buildKnnModel(references, {
    name: options.name,
    version: options.version,
    labels: set.labels,
    features: options.features,
    k: choice.k,
    metric: choice.metric,
    description: `KNN (k=${choice.k}, ${choice.metric}, distance-weighted) over ${references.count} int8 pooled references (${references.dim} dims)`,
    metrics: {
      ...(options.provenance ?? {}),
      urgentThreshold,
      urgentLabels: options.urgent,
      validation: { speakers: set.validationSpeakers, clips: set.validation.length, accuracy: validation.accuracy, macro_f1: validation.macro_f1, urgent: validation.urgent },
      knnGrid: choice.grid.map((g) => ({ ...g, accuracy: Number(g.accuracy.toFixed(4)) })),
    },
  });
}

export type { ManifestDraft };
