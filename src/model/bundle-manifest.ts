import { z } from 'zod';
import { urgencySectionSchema } from '../urgency/call-urgency.js';
import { featureConfigSchema } from '../features/feature-config.js';
import { EMOTIONS } from './emotions.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_SCHEMA_VERSION = 1;

const emotion = z.enum(EMOTIONS);
const finite = z.number().refine(Number.isFinite, 'must be a finite number');

const fileEntry = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() }).strict();

const normaliserSchema = z.object({ mean: z.array(finite), std: z.array(finite) }).strict();

const knnSection = z
  .object({
    k: z.number().int().min(1).max(64),
    metric: z.enum(['l1', 'l2']),
    weighting: z.enum(['distance', 'uniform']),
    /** Number of reference vectors and their width (the pooled dimension). */
    count: z.number().int().positive(),
    dim: z.number().int().positive(),
    /** Dequantised value = int8 × scale, in normalised (z-score) units. */
    scale: z.number().positive(),
    referencesFile: z.string(),
    labelsFile: z.string(),
  })
  .strict();

/** Where one int8 tensor and its float32 per-column scales lie in a weights file. */
const int8Tensor = z
  .object({
    name: z.string(),
    /** [rows, cols] row-major; a 1-D tensor (a bias) is one row. */
    shape: z.array(z.number().int().positive()).min(1).max(2),
    /** Byte offset of the rows × cols int8 values. */
    offset: z.number().int().nonnegative(),
    /** Byte offset of the cols little-endian float32 scales (dequantised = int8 × scale of its column). */
    scalesOffset: z.number().int().nonnegative().multipleOf(4),
  })
  .strict();

const gruSection = z
  .object({
    /** Units of each stacked GRU layer, input side first; all but the last return sequences. */
    units: z.array(z.number().int().positive().max(1024)).min(1).max(8),
    inputDim: z.number().int().positive(),
    /** Sequence steps the model was trained on; inference pads or crops to it. */
    steps: z.number().int().positive().max(4096),
    /**
     * The cell, spelled out so a bundle made for another cell is refused rather than
     * misread: Keras/TensorFlow.js GRUCell, gates z, r, ĥ in that order along the columns
     * of kernel / recurrent_kernel / bias, reset applied before the recurrent product.
     */
    cell: z
      .object({ gateOrder: z.literal('zrh'), recurrentActivation: z.literal('sigmoid'), activation: z.literal('tanh'), resetAfter: z.literal(false) })
      .strict(),
    /** One dense layer over the last state, one output per label. */
    head: z.object({ activation: z.literal('softmax') }).strict(),
    weightsFile: z.string(),
    /** gru_<i>/kernel, gru_<i>/recurrent_kernel, gru_<i>/bias for each layer, then dense/kernel, dense/bias. */
    tensors: z.array(int8Tensor),
  })
  .strict();

const mlpSection = z
  .object({
    /**
     * Members of the bag: networks trained from different seeds on the same data, whose
     * probabilities are averaged (variance a single small net on few speakers cannot shed).
     */
    members: z.number().int().positive().max(16),
    /** Widths of the hidden ReLU layers, input side first; then a dense softmax over the labels. */
    hidden: z.array(z.number().int().positive().max(1024)).max(4),
    activation: z.literal('relu'),
    head: z.object({ activation: z.literal('softmax') }).strict(),
    /** Functionals per frame value, in this order, then the voiced share: spelled out so a bundle pooled otherwise is refused. */
    pooling: z.object({ statistics: z.tuple([z.literal('mean'), z.literal('std'), z.literal('p10'), z.literal('p50'), z.literal('p90'), z.literal('slope'), z.literal('step')]), voicedShare: z.literal(true) }).strict(),
    /**
     * Present when the input is each window's functionals followed by the same relative to
     * the caller's baseline: the mean functionals of the call's first `windows` windows
     * (`CallerBaseline`); absent, the functionals alone.
     */
    callBaseline: z.object({ windows: z.number().int().min(1).max(20) }).strict().optional(),
    inputDim: z.number().int().positive(),
    weightsFile: z.string(),
    /** member_<m>/dense_<i>/kernel and …/bias per layer (the head last), member by member. */
    tensors: z.array(int8Tensor),
  })
  .strict();

/** One network of an ensemble: its own input, normaliser and weights; the features and labels are the bundle's. */
const ensembleMember = z
  .object({
    kind: z.enum(['gru', 'mlp']),
    /** The bundle it was taken from, for provenance. */
    from: z.object({ name: z.string(), version: z.string() }).strict(),
    /** Its share of the averaged probabilities (weights are normalised to sum to 1). */
    weight: z.number().positive().max(100),
    input: z.enum(['sequence', 'pooled_functionals']),
    normaliser: normaliserSchema,
    gru: gruSection.optional(),
    mlp: mlpSection.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.kind === 'gru' && !m.gru) ctx.addIssue({ code: 'custom', path: ['gru'], message: 'is required for a gru member' });
    if (m.kind === 'mlp' && !m.mlp) ctx.addIssue({ code: 'custom', path: ['mlp'], message: 'is required for an mlp member' });
    // One network per member: a stray section of the other kind would be ambiguous.
    if (m.kind === 'gru' && m.mlp) ctx.addIssue({ code: 'custom', path: ['mlp'], message: 'must be absent from a gru member' });
    if (m.kind === 'mlp' && m.gru) ctx.addIssue({ code: 'custom', path: ['gru'], message: 'must be absent from an mlp member' });
    if (m.normaliser.mean.length !== m.normaliser.std.length) ctx.addIssue({ code: 'custom', path: ['normaliser'], message: 'mean and std differ in length' });
  });

const ensembleSection = z.object({ members: z.array(ensembleMember).min(2).max(4) }).strict();

const selfTestVector = z.object({ input: z.array(finite), expected: z.array(finite) }).strict();

export const manifestSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lower-case letters, digits, dot, dash or underscore'),
    version: z.string().regex(/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, 'a semantic version such as 1.2.0'),
    kind: z.enum(['knn', 'gru', 'mlp', 'ensemble']),
    description: z.string().optional(),
    labels: z.array(emotion).min(2),
    features: featureConfigSchema,
    /**
     * What the model consumes: pooled mean/std of frames (KNN), a frame sequence (GRU),
     * functionals of the frames (MLP), or each member's input in turn, concatenated (ensemble).
     */
    input: z.enum(['pooled_mean_std', 'sequence', 'pooled_functionals', 'members']),
    /** Every kind but an ensemble, whose members carry their own. */
    normaliser: normaliserSchema.optional(),
    urgencyWeights: z.partialRecord(emotion, z.number().min(0).max(1)).optional(),
    /** A trained urgency head with its per-emotion trackers; without one, `urgencyWeights` score each window. */
    urgency: urgencySectionSchema.optional(),
    metrics: z.record(z.string(), z.unknown()),
    createdAt: z.iso.datetime(),
    files: z.record(z.string().regex(/^[A-Za-z0-9._-]+$/), fileEntry),
    selfTest: z.array(selfTestVector),
    knn: knnSection.optional(),
    gru: gruSection.optional(),
    mlp: mlpSection.optional(),
    ensemble: ensembleSection.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.kind === 'knn' && !m.knn) ctx.addIssue({ code: 'custom', path: ['knn'], message: 'is required for a knn bundle' });
    if (m.kind === 'gru' && !m.gru) ctx.addIssue({ code: 'custom', path: ['gru'], message: 'is required for a gru bundle' });
    if (m.kind === 'mlp' && !m.mlp) ctx.addIssue({ code: 'custom', path: ['mlp'], message: 'is required for an mlp bundle' });
    if (m.kind === 'ensemble' && !m.ensemble) ctx.addIssue({ code: 'custom', path: ['ensemble'], message: 'is required for an ensemble bundle' });
    if (m.kind !== 'ensemble' && !m.normaliser) ctx.addIssue({ code: 'custom', path: ['normaliser'], message: `is required for a ${m.kind} bundle` });
    if (new Set(m.labels).size !== m.labels.length) ctx.addIssue({ code: 'custom', path: ['labels'], message: 'lists a label twice' });
    if (m.normaliser && m.normaliser.mean.length !== m.normaliser.std.length)
      ctx.addIssue({ code: 'custom', path: ['normaliser'], message: 'mean and std differ in length' });
    m.urgency?.head.weights.forEach((row, c) => {
      if (row.length !== 2 * m.labels.length + 1)
        ctx.addIssue({ code: 'custom', path: ['urgency', 'head', 'weights', c], message: `has ${row.length} weights; ${m.labels.length} labels need ${2 * m.labels.length + 1} (2 × labels + bias)` });
    });
    for (const [i, v] of m.selfTest.entries()) {
      if (v.expected.length !== m.labels.length)
        ctx.addIssue({ code: 'custom', path: ['selfTest', i, 'expected'], message: `has ${v.expected.length} values for ${m.labels.length} labels` });
    }
  });

export type BundleManifest = z.infer<typeof manifestSchema>;
export type EnsembleMember = z.infer<typeof ensembleMember>;
/** What a writer supplies; the file hashes are computed when the bundle is written. */
export type ManifestDraft = Omit<BundleManifest, 'files' | 'schemaVersion'>;

export const MANIFEST_SCHEMA_FILE = 'model-manifest.schema.json';

export function manifestJsonSchema(): unknown {
  return z.toJSONSchema(manifestSchema, { unrepresentable: 'any' });
}

/** `schemas/model-manifest.schema.json` as committed (a test keeps the file in step). */
export function manifestJsonSchemaText(): string {
  return `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
}
