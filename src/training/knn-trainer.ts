import type { Emotion } from '../model/emotions.js';
import { fitNormaliser } from '../features/normaliser.js';
import { poolMeanStd } from '../features/pooling.js';
import { chooseScale, quantiseInto } from '../model/int8.js';
import { KnnClassifier } from '../model/knn-classifier.js';
import { argMax } from '../model/classifier.js';
import { Int8NeighbourSearch } from '../model/int8-neighbour-search.js';
import { Normaliser } from '../features/normaliser.js';
import type { BundleManifest, ManifestDraft } from '../model/bundle-manifest.js';
import type { DistanceMetric } from '../model/int8-neighbour-search.js';
import type { FeatureConfig } from '../features/feature-config.js';
import type { ClipWindows } from './clip-windows.js';
import { DEFAULT_URGENCY_WEIGHTS, type UrgencyWeights } from '../urgency/urgency-score.js';

export interface KnnTrainingOptions {
  name: string;
  version: string;
  labels: Emotion[];
  features: FeatureConfig;
  k: number;
  metric: DistanceMetric;
  description?: string;
  metrics?: Record<string, unknown>;
  /** The bundle's urgency weights; by default the daemon's (angry and sad 1) for the model's labels. */
  urgencyWeights?: Partial<UrgencyWeights>;
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
    // Written into every bundle, so the urgency a gateway computes is the one the bundle
    // was made with, not whatever defaults that gateway's version happens to have.
    urgencyWeights: options.urgencyWeights ?? Object.fromEntries(options.labels.map((l) => [l, DEFAULT_URGENCY_WEIGHTS[l]])),
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

/**
 * Random oversampling: copies of randomly drawn items of the smaller classes until every
 * class has as many items as the largest. Copies are of whole items (a clip or one of its
 * augmented versions), so they stay with their clip's speaker.
 */
export function oversampleToBalance<T extends { clip: { label: Emotion } }>(items: T[], random: () => number): T[] {
  const byLabel = new Map<Emotion, T[]>();
  for (const item of items) {
    if (!byLabel.has(item.clip.label)) byLabel.set(item.clip.label, []);
    byLabel.get(item.clip.label)!.push(item);
  }
  const most = Math.max(...[...byLabel.values()].map((v) => v.length));
  const out = [...items];
  for (const group of byLabel.values()) for (let n = group.length; n < most; n++) out.push(group[Math.floor(random() * group.length)]!);
  return out;
}

/** Keeps at most `max` rows of a pooled set, drawn at random (the bundle size budget). */
export function subsamplePooled(set: PooledSet, max: number, random: () => number): PooledSet {
  if (set.count <= max) return set;
  const order = Array.from({ length: set.count }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const keep = order.slice(0, max).sort((a, b) => a - b);
  const vectors = new Float32Array(max * set.dim);
  const labels = new Uint8Array(max);
  keep.forEach((src, row) => {
    vectors.set(set.vectors.subarray(src * set.dim, (src + 1) * set.dim), row * set.dim);
    labels[row] = set.labels[src]!;
  });
  return { vectors, labels, count: max, dim: set.dim };
}

export interface KnnChoice {
  k: number;
  metric: DistanceMetric;
  accuracy: number;
  /** Validation accuracy of every (metric, k) tried. */
  grid: { k: number; metric: DistanceMetric; accuracy: number }[];
}

/**
 * Picks k (1–maxK) and the metric by clip accuracy on speaker-disjoint validation clips,
 * with the clip verdict the classify pipeline uses (frame-weighted mean of the windows'
 * probabilities). One search per window and metric serves every k.
 */
export function chooseKnn(train: PooledSet, validation: ClipWindows[], labels: readonly Emotion[], features: FeatureConfig, maxK = 15): KnnChoice & { validationProbabilities: Map<DistanceMetric, Float64Array[][]> } {
  const model = buildKnnModel(train, { name: 'select', version: '0.0.0', labels: [...labels], features, k: maxK, metric: 'l1' });
  const refs = model.files['references.i8']!;
  const grid: KnnChoice['grid'] = [];
  const validationProbabilities = new Map<DistanceMetric, Float64Array[][]>();
  const ks = Array.from({ length: maxK }, (_, i) => i + 1);
  const normaliser = Normaliser.fromJSON(model.draft.normaliser, 'knn selection');
  const scale = model.draft.knn!.scale;
  const refLabels = model.files['reference-labels.u8']!;
  const search = new Int8NeighbourSearch(new Int8Array(refs.buffer, refs.byteOffset, refs.length), train.dim, maxK);
  const pooled = new Float32Array(train.dim);
  const query = new Int8Array(train.dim);
  const votes = new Float64Array(labels.length);
  for (const metric of ['l1', 'l2'] as const) {
    // Per k, per clip: the frame-weighted mean of window probabilities, with the votes
    // KnnClassifier casts (1/(distance+1) weights; its uniform smoothing never moves the argmax).
    const perK = ks.map(() => validation.map(() => new Float64Array(labels.length)));
    validation.forEach((item, c) => {
      let weight = 0;
      for (const w of item.windows) {
        const frames = w.length / item.dim;
        weight += frames;
        poolMeanStd(w, frames, item.dim, pooled);
        normaliser.apply(pooled);
        quantiseInto(pooled, scale, query);
        const { found, indices, distances } = search.search(query, maxK, metric);
        votes.fill(0);
        let total = 0;
        for (let n = 0; n < maxK; n++) {
          // With fewer than k references, k votes as all of them do.
          if (n < found) {
            const v = 1 / (distances[n]! + 1);
            votes[refLabels[indices[n]!]!]! += v;
            total += v;
          }
          const acc = perK[n]![c]!;
          for (let i = 0; i < labels.length; i++) acc[i]! += (votes[i]! / total) * frames;
        }
      }
      for (const k of ks) for (let i = 0; i < labels.length; i++) perK[k - 1]![c]![i]! /= weight;
    });
    validationProbabilities.set(metric, perK);
    for (const k of ks) {
      let right = 0;
      validation.forEach((item, c) => {
        if (labels[argMax(perK[k - 1]![c]!)] === item.clip.label) right++;
      });
      grid.push({ k, metric, accuracy: right / Math.max(1, validation.length) });
    }
  }
  // Ties go to the smaller k (cheaper, and the first found), then L1.
  const best = grid.reduce((a, b) => (b.accuracy > a.accuracy + 1e-9 ? b : a));
  return { ...best, grid, validationProbabilities };
}
