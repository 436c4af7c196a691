import { z } from 'zod';

/**
 * Every per-frame feature the analyser can compute. The order here is the order of the
 * columns in a frame vector, so a bundle trained with one list always sees the same layout.
 */
export const FEATURE_NAMES = [
  'mfcc',
  'mfcc_delta',
  'log_mel',
  'chroma',
  'contrast',
  'tonnetz',
  'rms',
  'zcr',
  'centroid',
  'rolloff',
  'flatness',
  'pitch',
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

export const featureConfigSchema = z
  .object({
    sampleRate: z.number().int().positive(),
    /** Samples per analysis frame (the window length). */
    frameSize: z.number().int().positive(),
    /** Samples between frame starts. */
    hopSize: z.number().int().positive(),
    /** FFT length; a power of two ≥ frameSize (frames are zero-padded). */
    fftSize: z.number().int().positive(),
    window: z.enum(['hann', 'hamming']),
    melBands: z.number().int().min(8).max(128),
    mfccCount: z.number().int().min(1).max(40),
    /** Half-width in frames of the regression used for deltas (HTK style). */
    deltaWidth: z.number().int().min(1).max(4),
    contrastBands: z.number().int().min(2).max(8),
    features: z.array(z.enum(FEATURE_NAMES)).min(1),
    /** Frames averaged into one step of a model input sequence (GRU); 1 keeps every frame. */
    sequenceStride: z.number().int().min(1).max(16),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.fftSize & (c.fftSize - 1)) !== 0) ctx.addIssue({ code: 'custom', path: ['fftSize'], message: 'must be a power of two' });
    if (c.fftSize < c.frameSize) ctx.addIssue({ code: 'custom', path: ['fftSize'], message: 'must be ≥ frameSize' });
    if (c.hopSize > c.frameSize) ctx.addIssue({ code: 'custom', path: ['hopSize'], message: 'must be ≤ frameSize' });
    if (c.mfccCount > c.melBands) ctx.addIssue({ code: 'custom', path: ['mfccCount'], message: 'must be ≤ melBands' });
    if (new Set(c.features).size !== c.features.length) ctx.addIssue({ code: 'custom', path: ['features'], message: 'lists a feature twice' });
    if (c.features.includes('mfcc_delta') && !c.features.includes('mfcc'))
      ctx.addIssue({ code: 'custom', path: ['features'], message: 'mfcc_delta needs mfcc' });
  });

export type FeatureConfig = z.infer<typeof featureConfigSchema>;

/** 16 kHz, 32 ms frames every 16 ms: the speech-analysis default every shipped model uses. */
export const DEFAULT_FEATURE_CONFIG: FeatureConfig = {
  sampleRate: 16000,
  frameSize: 512,
  hopSize: 256,
  fftSize: 512,
  window: 'hann',
  melBands: 40,
  mfccCount: 40,
  deltaWidth: 2,
  contrastBands: 7,
  features: ['mfcc', 'mfcc_delta', 'log_mel', 'chroma', 'contrast', 'tonnetz', 'rms', 'zcr', 'centroid', 'rolloff', 'flatness'],
  sequenceStride: 3,
};

/** Width of one feature's block in the frame vector. */
export function featureWidth(config: FeatureConfig, name: FeatureName): number {
  switch (name) {
    case 'mfcc':
    case 'mfcc_delta':
      return config.mfccCount;
    case 'log_mel':
      return config.melBands;
    case 'chroma':
      return 12;
    case 'contrast':
      return config.contrastBands;
    case 'tonnetz':
      return 6;
    case 'rms':
    case 'zcr':
    case 'centroid':
    case 'rolloff':
    case 'flatness':
      return 1;
    case 'pitch':
      // log2(F0 / 50 Hz) when voiced (else 0), and periodicity.
      return 2;
  }
}

/** Column offset and width of every configured feature in the frame vector. */
export function featureLayout(config: FeatureConfig): { name: FeatureName; offset: number; width: number }[] {
  const ordered = FEATURE_NAMES.filter((n) => config.features.includes(n));
  let offset = 0;
  return ordered.map((name) => {
    const width = featureWidth(config, name);
    const entry = { name, offset, width };
    offset += width;
    return entry;
  });
}

export function frameVectorSize(config: FeatureConfig): number {
  return featureLayout(config).reduce((n, f) => n + f.width, 0);
}

/** Parses an untrusted config (a bundle manifest's), naming the offending key in the error. */
export function parseFeatureConfig(value: unknown, where: string): FeatureConfig {
  const result = featureConfigSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${where}: feature config ${issue.path.join('.') || '(root)'} ${issue.message}`);
  }
  return result.data;
}

/**
 * How two configs' frame features differ, one `key a → b` per difference; empty when a
 * stream built for one computes exactly the frames the other expects. `sequenceStride`
 * is left out: it only groups finished frames into a model's input sequence, so two
 * models that differ in it still read the same frames. `features` is compared as a set,
 * since frame vectors lay features out in FEATURE_NAMES order whatever the list's order.
 */
export function frameFeatureDifferences(a: FeatureConfig, b: FeatureConfig): string[] {
  const differences: string[] = [];
  for (const key of FRAME_KEYS) if (a[key] !== b[key]) differences.push(`${key} ${a[key]} → ${b[key]}`);
  const inA = new Set(a.features);
  const inB = new Set(b.features);
  if (inA.size !== inB.size || [...inA].some((f) => !inB.has(f))) differences.push(`features [${a.features.join(', ')}] → [${b.features.join(', ')}]`);
  return differences;
}

const FRAME_KEYS = ['sampleRate', 'frameSize', 'hopSize', 'fftSize', 'window', 'melBands', 'mfccCount', 'deltaWidth', 'contrastBands'] as const satisfies readonly Exclude<keyof FeatureConfig, 'features' | 'sequenceStride'>[];
/** Fails to compile when FeatureConfig gains a key that FRAME_KEYS (or the two exceptions) does not name. */
type UncomparedKey = Exclude<keyof FeatureConfig, (typeof FRAME_KEYS)[number] | 'features' | 'sequenceStride'>;
const everyKeyCompared: [UncomparedKey] extends [never] ? true : UncomparedKey = true;
void everyKeyCompared;
