/**
 * Model-kernel figures: KNN query time on each distance kernel, GRU inference time per
 * second of audio (one 3 s window per 1 s hop, so one prediction per audio second) on the
 * fused kernel and on TensorFlow.js, and the pooled MLP's (functionals and the bag). CPU time (process.cpuUsage), one core.
 */
import { DEFAULT_FEATURE_CONFIG, frameVectorSize } from '../../src/features/feature-config.js';
import { functionalsSize } from '../../src/features/functionals.js';
import { PooledMlpClassifier, pitchColumnOf } from '../../src/model/mlp/pooled-mlp-classifier.js';
import { FEATURE_PRESETS } from '../../src/training/feature-presets.js';
import { seededRandom } from '../../src/datasets/seeded-random.js';
import type { BundleManifest } from '../../src/model/bundle-manifest.js';
import type { Classifier } from '../../src/model/classifier.js';
import type { Emotion } from '../../src/model/emotions.js';
import { chooseScale, quantiseInto } from '../../src/model/int8.js';
import { Int8NeighbourSearch, type DistanceKernelName, type DistanceMetric } from '../../src/model/int8-neighbour-search.js';
import { FusedGruClassifier, type GruKernelName } from '../../src/model/gru/fused-gru-classifier.js';
import type { GruWeights } from '../../src/model/gru/gru-weights.js';
import type { TfBackendName } from '../../src/model/tf-backend.js';
import { cpuSecondsPerCall } from './cpu-time.js';

/** CPU milliseconds of one query against `count` random int8 references of `dim`. */
export function benchKnnKernel(kernel: DistanceKernelName, count: number, dim: number, k: number, metric: DistanceMetric, minSeconds = 0.5): number {
  const random = seededRandom(3);
  const values = Float32Array.from({ length: count * dim }, () => random() * 4 - 2);
  const refs = new Int8Array(values.length);
  quantiseInto(values, chooseScale(values), refs);
  const search = new Int8NeighbourSearch(refs, dim, k, { kernel });
  const queries = Array.from({ length: 16 }, (_, q) => refs.slice(q * dim, (q + 1) * dim));
  let q = 0;
  return cpuSecondsPerCall(() => search.search(queries[q++ % queries.length]!, k, metric), minSeconds) * 1000;
}

export interface GruShape {
  units: number[];
  steps: number;
  inputDim: number;
  labels: number;
}

/** The architecture the GRU figures are quoted for: 2×GRU48 over 63 steps × 48 features. */
export const BENCH_GRU: GruShape = { units: [48, 48], steps: 63, inputDim: 48, labels: 8 };

export function randomGruWeights(shape: GruShape, seed = 1): GruWeights {
  const random = seededRandom(seed);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  const layers = shape.units.map((u, i) => {
    const inputDim = i === 0 ? shape.inputDim : shape.units[i - 1]!;
    return { units: u, inputDim, kernel: fill(inputDim * 3 * u, 0.3), recurrentKernel: fill(u * 3 * u, 0.3), bias: fill(3 * u, 0.1) };
  });
  const last = shape.units[shape.units.length - 1]!;
  return { inputDim: shape.inputDim, steps: shape.steps, layers, denseKernel: fill(last * shape.labels, 0.5), denseBias: fill(shape.labels, 0.1), labels: shape.labels };
}

/** Just what the classifiers read from a manifest. */
function benchManifest(shape: GruShape): BundleManifest {
  const labels = (['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised'] as Emotion[]).slice(0, shape.labels);
  return {
    name: 'bench-gru',
    labels,
    features: DEFAULT_FEATURE_CONFIG,
    normaliser: { mean: new Array<number>(shape.inputDim).fill(0), std: new Array<number>(shape.inputDim).fill(1) },
  } as unknown as BundleManifest;
}

function msPerPrediction(classifier: Classifier, shape: GruShape, minSeconds: number): number {
  const random = seededRandom(9);
  const input = Float32Array.from({ length: shape.steps * shape.inputDim }, () => random() * 2 - 1);
  const out = new Float32Array(shape.labels);
  for (let i = 0; i < 20; i++) classifier.predictModelInput(input, out);
  return cpuSecondsPerCall(() => classifier.predictModelInput(input, out), minSeconds) * 1000;
}

/** Fused-kernel CPU ms per prediction (= per second of audio at a 1 s window hop). */
export function benchFusedGru(kernel: GruKernelName, shape: GruShape = BENCH_GRU, minSeconds = 0.5): number {
  return msPerPrediction(new FusedGruClassifier(benchManifest(shape), randomGruWeights(shape), { kernel }), shape, minSeconds);
}

/** The same on TensorFlow.js; returns the backend that ran. */
export async function benchTfjsGru(backends: TfBackendName[], shape: GruShape = BENCH_GRU, minSeconds = 0.5): Promise<{ ms: number; backend: string }> {
  const { TfjsGruClassifier } = await import('../../src/model/gru/tfjs-gru-classifier.js');
  const classifier = await TfjsGruClassifier.create(benchManifest(shape), randomGruWeights(shape), { tfBackends: backends });
  const ms = msPerPrediction(classifier, shape, minSeconds);
  classifier.dispose();
  return { ms, backend: classifier.backend };
}

/**
 * CPU ms of one prediction of a loaded bundle from a 3 s window's frame rows (the shipped
 * model as the daemon runs it: its input preparation, pooling or sequence, included): per
 * second of audio at the default 1 s window hop, within a call. Rows are random, F0 voiced on
 * 70% of frames.
 */
export function benchBundleModel(classifier: Classifier, minSeconds = 0.5, frames = 188): number {
  const features = classifier.manifest.features;
  const dim = frameVectorSize(features);
  const pitch = pitchColumnOf(features);
  const random = seededRandom(12);
  const rows = Float32Array.from({ length: frames * dim }, (_, i) => (i % dim === pitch ? (random() < 0.7 ? 100 + 150 * random() : 0) : random() * 4 - 2));
  const out = new Float32Array(classifier.labels.length);
  // Within a call, as a headset channel runs it (a caller baseline, if the model keeps one, fills in the warm-up).
  const call = classifier.newCallContext();
  for (let i = 0; i < 20; i++) classifier.predict(rows, frames, out, call);
  return cpuSecondsPerCall(() => classifier.predict(rows, frames, out, call), minSeconds) * 1000;
}

/**
 * The MLP bag the figures are quoted for, as shipped: 5 × (660 → 64 → 6) over the
 * functionals of the prosody frame and their copy relative to a 3-window caller baseline,
 * 3 s windows.
 */
export const BENCH_MLP = { members: 5, hidden: [64], labels: 6, frames: 188, callBaseline: 3 } as const;

/**
 * CPU ms per prediction of a pooled-MLP bag from window rows (functionals over a 3 s
 * window, then the members): per second of audio at the default 1 s window hop.
 */
export function benchPooledMlp(minSeconds = 0.5): number {
  const features = FEATURE_PRESETS.prosody;
  const frameDim = frameVectorSize(features);
  const inputDim = 2 * functionalsSize(frameDim);
  const random = seededRandom(5);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  const widths = [inputDim, ...BENCH_MLP.hidden, BENCH_MLP.labels];
  const members = Array.from({ length: BENCH_MLP.members }, () => widths.slice(1).map((cols, i) => ({ rows: widths[i]!, cols, kernel: fill(widths[i]! * cols, 0.1), bias: fill(cols, 0.1) })));
  const manifest = {
    name: 'bench-mlp',
    labels: ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust'],
    features,
    normaliser: { mean: new Array<number>(inputDim).fill(0), std: new Array<number>(inputDim).fill(1) },
    mlp: { callBaseline: { windows: BENCH_MLP.callBaseline } },
  } as unknown as BundleManifest;
  const classifier = new PooledMlpClassifier(manifest, { inputDim, hidden: [...BENCH_MLP.hidden], labels: BENCH_MLP.labels, members });
  const rows = fill(BENCH_MLP.frames * frameDim, 3);
  const out = new Float32Array(BENCH_MLP.labels);
  const call = classifier.newCallContext();
  for (let i = 0; i < 20; i++) classifier.predict(rows, BENCH_MLP.frames, out, call);
  return cpuSecondsPerCall(() => classifier.predict(rows, BENCH_MLP.frames, out, call), minSeconds) * 1000;
}

/** Fused wasm-simd ms per audio second over a grid of sizes (for choosing what ships). */
export function benchGruSizes(minSeconds = 0.2): { units: string; steps: number; inputDim: number; ms: number }[] {
  const rows = [];
  for (const units of [[32, 32], [48, 48], [64, 64], [32], [64], [48, 48, 48]])
    for (const [steps, inputDim] of [[63, 48], [63, 32], [94, 48]] as const) {
      const shape = { units, steps, inputDim, labels: 8 };
      rows.push({ units: units.join('×'), steps, inputDim, ms: Number(benchFusedGru('wasm-simd', shape, minSeconds).toFixed(3)) });
    }
  return rows;
}

// `node dist/scripts/bench/bench-model.js --sizes`: the size grid alone.
if (process.argv[1]?.endsWith('bench-model.js') && process.argv.includes('--sizes')) console.table(benchGruSizes());
