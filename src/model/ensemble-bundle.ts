import type { EnsembleMember, ManifestDraft } from './bundle-manifest.js';
import { buildTfGruModel } from './gru/tfjs-gru-classifier.js';
import { readGruBundleWeights } from './gru/fused-gru-classifier.js';
import { tfMlpBag } from './mlp/mlp-export.js';
import { readMlpBundleWeights } from './mlp/pooled-mlp-classifier.js';
import { bundleFile, type ModelBundle } from './model-bundle.js';
import { tf } from './tf-backend.js';

export interface EnsembleOptions {
  name: string;
  version: string;
  /** Each member's share of the averaged probabilities; equal when absent. */
  weights?: number[];
  description?: string;
}

/** Provenance keys that must agree across members: a held-out-fold model mixed with one that saw that fold would leak it. */
const SPLIT_KEYS = ['heldOutFold', 'split', 'splitSeed'] as const;

/**
 * An ensemble bundle (manifest draft and files, for `writeBundle`) from trained GRU and
 * MLP bundles of the same features and labels: their sections and normalisers move into
 * `ensemble.members`, their weights files are renamed `member-<i>.i8`. Self-test vectors
 * pair the members' own (inputs concatenated), and their expectations are the weighted
 * mean of TensorFlow.js's outputs on each member's int8 weights, as for a single bundle.
 */
export function composeEnsemble(bundles: ModelBundle[], opts: EnsembleOptions): { draft: ManifestDraft; files: Record<string, Uint8Array> } {
  if (bundles.length < 2 || bundles.length > 4) throw new Error(`an ensemble takes 2 to 4 member bundles, not ${bundles.length}`);
  const weights = opts.weights ?? bundles.map(() => 1);
  if (weights.length !== bundles.length || weights.some((w) => !(w > 0 && w <= 100)))
    throw new Error(`ensemble weights ${weights.join(',')}: one weight per member (${bundles.length}), each above 0 and at most 100 (only their ratio matters)`);
  const first = bundles[0]!.manifest;
  const files: Record<string, Uint8Array> = {};
  const members: EnsembleMember[] = bundles.map((b, i) => {
    const m = b.manifest;
    const where = `member ${i} (${b.dir})`;
    if (m.kind !== 'gru' && m.kind !== 'mlp') throw new Error(`${where} is a ${m.kind} bundle; an ensemble holds gru and mlp members`);
    if (JSON.stringify(m.features) !== JSON.stringify(first.features)) throw new Error(`${where} was trained on other features than member 0: one extractor must feed every member`);
    if (m.labels.join() !== first.labels.join()) throw new Error(`${where} has labels ${m.labels.join(',')}, member 0 ${first.labels.join(',')}`);
    if (JSON.stringify(m.urgencyWeights) !== JSON.stringify(first.urgencyWeights)) throw new Error(`${where} has other urgency weights than member 0`);
    for (const key of SPLIT_KEYS)
      if (m.metrics[key] !== first.metrics[key]) throw new Error(`${where} has ${key} ${String(m.metrics[key])}, member 0 ${String(first.metrics[key])}: members must have been trained on the same speakers`);
    const section = m.kind === 'gru' ? m.gru! : m.mlp!;
    const weightsFile = `member-${i}.i8`;
    files[weightsFile] = bundleFile(b, section.weightsFile);
    return {
      kind: m.kind,
      from: { name: m.name, version: m.version },
      weight: weights[i]!,
      input: m.input as EnsembleMember['input'],
      normaliser: m.normaliser!,
      ...(m.kind === 'gru' ? { gru: { ...m.gru!, weightsFile } } : { mlp: { ...m.mlp!, weightsFile } }),
    };
  });

  const total = weights.reduce((a, b) => a + b, 0);
  const references = bundles.map((b) => referenceOf(b));
  const count = Math.min(...bundles.map((b) => b.manifest.selfTest.length));
  const selfTest = Array.from({ length: count }, (_, v) => {
    const expected = new Array<number>(first.labels.length).fill(0);
    bundles.forEach((b, i) => {
      const out = references[i]!(Float32Array.from(b.manifest.selfTest[v]!.input));
      out.forEach((p, c) => (expected[c]! += (weights[i]! / total) * p));
    });
    return { input: bundles.flatMap((b) => b.manifest.selfTest[v]!.input), expected };
  });
  references.forEach((r) => r.dispose());

  const threshold = bundles.reduce((sum, b, i) => sum + (weights[i]! / total) * Number(b.manifest.metrics['urgentThreshold'] ?? NaN), 0);
  const split = Object.fromEntries(SPLIT_KEYS.filter((k) => first.metrics[k] !== undefined).map((k) => [k, first.metrics[k]]));
  const draft: ManifestDraft = {
    name: opts.name,
    version: opts.version,
    kind: 'ensemble',
    description: opts.description ?? `ensemble of ${bundles.map((b) => b.manifest.description ?? b.manifest.kind).join(' and ')}, probabilities averaged ${weights.join(':')}`,
    labels: first.labels,
    features: first.features,
    input: 'members',
    ...(first.urgencyWeights ? { urgencyWeights: first.urgencyWeights } : {}),
    metrics: {
      ...split,
      // The members' validation-tuned thresholds on P(urgent), averaged as their probabilities are.
      ...(Number.isFinite(threshold) ? { urgentThreshold: Number(threshold.toFixed(3)) } : {}),
      ...(first.metrics['urgentLabels'] ? { urgentLabels: first.metrics['urgentLabels'] } : {}),
      members: bundles.map((b) => ({ name: b.manifest.name, version: b.manifest.version, kind: b.manifest.kind, metrics: b.manifest.metrics })),
    },
    createdAt: new Date().toISOString(),
    selfTest,
    ensemble: { members },
  };
  return { draft, files };
}

/** A member's reference outputs: TensorFlow.js on its int8 weights, one model input at a time. */
function referenceOf(bundle: ModelBundle): ((input: Float32Array) => number[]) & { dispose(): void } {
  const m = bundle.manifest;
  if (m.kind === 'gru') {
    const w = readGruBundleWeights(bundle);
    const model = buildTfGruModel(w);
    const run = (input: Float32Array) => Array.from(tf.tidy(() => (model.predict(tf.tensor3d(input, [1, w.steps, w.inputDim])) as tf.Tensor).dataSync()));
    return Object.assign(run, { dispose: () => model.dispose() });
  }
  const bag = tfMlpBag(readMlpBundleWeights(bundle));
  return Object.assign((input: Float32Array) => bag.predict(input), { dispose: () => bag.dispose() });
}
