import { poolMeanStd } from '../features/pooling.js';
import { Normaliser } from '../features/normaliser.js';
import type { BundleManifest } from './bundle-manifest.js';
import type { Classifier } from './classifier.js';
import type { Emotion } from './emotions.js';
import { quantiseInto } from './int8.js';
import { Int8NeighbourSearch, type NeighbourSearchOptions } from './int8-neighbour-search.js';
import { bundleFile, BundleError, type ModelBundle } from './model-bundle.js';

const VOTE_SMOOTHING = 0.02;

type KnnSettings = NonNullable<BundleManifest['knn']>;

/**
 * k-nearest neighbours over int8 pooled feature vectors: pool the window's frames (mean
 * and std per dimension), standardise with the bundle's normaliser, quantise with the
 * references' scale, and let the k nearest vote. Votes are weighted by 1/distance so a
 * near neighbour outweighs a far one.
 */
export class KnnClassifier implements Classifier {
  /** `knn-int8-wasm-simd` or `knn-int8-js`: which distance kernel runs. */
  readonly backend: string;
  readonly labels: readonly Emotion[];
  private readonly search: Int8NeighbourSearch;
  private readonly refLabels: Uint8Array;
  private readonly normaliser: Normaliser;
  private readonly settings: KnnSettings;
  private readonly pooled: Float32Array;
  private readonly query: Int8Array;
  private readonly votes: Float64Array;

  constructor(
    readonly manifest: BundleManifest,
    references: Int8Array,
    refLabels: Uint8Array,
    options: NeighbourSearchOptions = {},
  ) {
    const s = manifest.knn;
    if (!s) throw new Error('KnnClassifier needs a knn bundle');
    this.settings = s;
    this.labels = manifest.labels;
    this.search = new Int8NeighbourSearch(references, s.dim, s.k, options);
    this.backend = `knn-int8-${this.search.kernel}`;
    if (refLabels.length !== this.search.count) throw new Error(`${refLabels.length} reference labels for ${this.search.count} references`);
    this.refLabels = refLabels;
    this.normaliser = Normaliser.fromJSON(manifest.normaliser, `model ${manifest.name}`);
    if (this.normaliser.dim !== s.dim) throw new Error(`model ${manifest.name}: normaliser has ${this.normaliser.dim} dimensions, the references ${s.dim}`);
    this.pooled = new Float32Array(s.dim);
    this.query = new Int8Array(s.dim);
    this.votes = new Float64Array(manifest.labels.length);
  }

  /** From a bundle `loadBundle` read, which has already checked its input shape against its features (checkModelInput). */
  static fromBundle(bundle: ModelBundle, options: NeighbourSearchOptions = {}): KnnClassifier {
    const m = bundle.manifest;
    const s = m.knn;
    if (!s) throw new BundleError(bundle.dir, 'has no knn section');
    const refs = bundleFile(bundle, s.referencesFile);
    const labels = bundleFile(bundle, s.labelsFile);
    if (refs.length !== s.count * s.dim) throw new BundleError(bundle.dir, `${s.referencesFile} holds ${refs.length} bytes, expected count × dim = ${s.count * s.dim}`);
    if (labels.length !== s.count) throw new BundleError(bundle.dir, `${s.labelsFile} holds ${labels.length} labels, expected ${s.count}`);
    if (labels.some((l) => l >= m.labels.length)) throw new BundleError(bundle.dir, `${s.labelsFile} names a label index beyond the ${m.labels.length} labels`);
    return new KnnClassifier(m, new Int8Array(refs.buffer, refs.byteOffset, refs.length), new Uint8Array(labels.buffer, labels.byteOffset, labels.length), options);
  }

  modelInput(rows: Float32Array, frames: number): Float32Array {
    const out = new Float32Array(this.settings.dim);
    poolMeanStd(rows, frames, this.settings.dim / 2, out);
    return out;
  }

  /** Every window is judged on its own: no per-call state. */
  newCallContext(): null {
    return null;
  }

  predict(rows: Float32Array, frames: number, out: Float32Array): Float32Array {
    poolMeanStd(rows, frames, this.settings.dim / 2, this.pooled);
    return this.predictModelInput(this.pooled, out);
  }

  predictModelInput(pooled: Float32Array, out: Float32Array): Float32Array {
    if (pooled !== this.pooled) this.pooled.set(pooled);
    this.normaliser.apply(this.pooled);
    quantiseInto(this.pooled, this.settings.scale, this.query);
    const { found, indices, distances } = this.search.search(this.query, this.settings.k, this.settings.metric);
    const votes = this.votes.fill(0);
    for (let i = 0; i < found; i++) {
      // Integer distances; +1 keeps an exact match from taking an infinite weight.
      const w = this.settings.weighting === 'distance' ? 1 / (distances[i]! + 1) : 1;
      votes[this.refLabels[indices[i]!]!]! += w;
    }
    let total = 0;
    for (let i = 0; i < votes.length; i++) total += votes[i]!;
    // A small uniform share keeps every label possible: k neighbours are a coarse
    // estimate, and an exact 0 would make downstream smoothing and log-losses brittle.
    const uniform = VOTE_SMOOTHING / votes.length;
    for (let i = 0; i < votes.length; i++) out[i] = (1 - VOTE_SMOOTHING) * (votes[i]! / total) + uniform;
    return out;
  }

  dispose(): void {}
}
