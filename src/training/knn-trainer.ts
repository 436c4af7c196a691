import type { Emotion } from '../model/emotions.js';
import { fitNormaliser } from '../features/normaliser.js';
import { poolMeanStd } from '../features/pooling.js';
import { chooseScale, quantiseInto } from '../model/int8.js';
import { KnnClassifier } from '../model/knn-classifier.js';
import type { BundleManifest, ManifestDraft } from '../model/bundle-manifest.js';
import type { DistanceMetric } from '../model/int8-neighbour-search.js';
import type { FeatureConfig } from '../features/feature-config.js';
import type { ClipWindows } from './clip-windows.js';

export interface KnnTrainingOptions {
  name: string;
  version: string;
  labels: Emotion[];
  features: FeatureConfig;
  k: number;
  metric: DistanceMetric;
  description?: string;
  metrics?: Record<string, unknown>;
}

export interface PooledSet {
  vectors: Float32Array;
  labels: Uint8Array;
  count: number;
  dim: number;
}

/** One pooled (mean, std) vector per window, labelled with its clip's label index. */
export function poolWindows(items: ClipWindows[], labels: readonly Emotion[]): PooledSet {
  const frameDim = items[0]?.dim ?? 0;
  const dim = frameDim * 2;
  const count = items.reduce((n, c) => n + (labels.includes(c.clip.label) ? c.windows.length : 0), 0);
  const vectors = new Float32Array(count * dim);
  const out = new Uint8Array(count);
  let row = 0;
  for (const item of items) {
    const label = labels.indexOf(item.clip.label);
    if (label < 0) continue;
    for (const w of item.windows) {
      poolMeanStd(w, w.length / frameDim, frameDim, vectors, row * dim);
      out[row++] = label;
    }
  }
  return { vectors, labels: out, count, dim };
}

export interface KnnModel {
  draft: ManifestDraft;
  files: Record<string, Uint8Array>;
}

const REFERENCES_FILE = 'references.i8';
const LABELS_FILE = 'reference-labels.u8';

/** Builds a KNN bundle's contents: normaliser, int8 references, and self-test vectors. */
export function buildKnnModel(train: PooledSet, options: KnnTrainingOptions): KnnModel {
  const normaliser = fitNormaliser(train.vectors, train.dim);
  const normalised = train.vectors.slice();
  normaliser.apply(normalised);
  const scale = chooseScale(normalised);
  const references = new Int8Array(normalised.length);
  quantiseInto(normalised, scale, references);

  const draft: ManifestDraft = {
    name: options.name,
    version: options.version,
    kind: 'knn',
    ...(options.description ? { description: options.description } : {}),
    labels: options.labels,
    features: options.features,
    input: 'pooled_mean_std',
    normaliser: normaliser.toJSON(),
    metrics: options.metrics ?? {},
    createdAt: new Date().toISOString(),
    selfTest: [],
    knn: { k: options.k, metric: options.metric, weighting: 'distance', count: train.count, dim: train.dim, scale, referencesFile: REFERENCES_FILE, labelsFile: LABELS_FILE },
  };
  const files = { [REFERENCES_FILE]: new Uint8Array(references.buffer), [LABELS_FILE]: train.labels.slice() };

  // Self-test vectors are raw pooled inputs from the training data with what this very
  // model answers: a bundle damaged or misread anywhere between here and a gateway fails them.
  const classifier = new KnnClassifier({ ...draft, schemaVersion: 1, files: {} } as BundleManifest, references, train.labels);
  const picks = [0, Math.floor(train.count / 3), Math.floor((2 * train.count) / 3), train.count - 1].filter((v, i, a) => v >= 0 && a.indexOf(v) === i);
  const probs = new Float32Array(options.labels.length);
  draft.selfTest = picks.map((i) => {
    const input = train.vectors.slice(i * train.dim, (i + 1) * train.dim);
    classifier.predictModelInput(input, probs);
    return { input: Array.from(input), expected: Array.from(probs) };
  });
  return { draft, files };
}
