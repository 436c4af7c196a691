import type { WindowingConfig } from '../audio/speech-windower.js';
import type { LabelledClip } from '../datasets/labelled-clip.js';
import { foldOf } from '../datasets/select-clips.js';
import type { FeatureConfig } from '../features/feature-config.js';
import { EMOTIONS, type Emotion } from '../model/emotions.js';
import type { AugmentationName } from './augment.js';
import { extractClipWindows, type ClipWindows } from './clip-windows.js';

export interface TrainingSetOptions {
  features: FeatureConfig;
  windowing?: WindowingConfig;
  augmentations: readonly AugmentationName[];
  /** Share of the training speakers held out (per gender) to choose hyper-parameters and stop early. */
  validationFolds: number;
  seed: number;
  cacheDir?: string;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface TrainingSet {
  labels: Emotion[];
  /** Training speakers' clips with their augmented copies. */
  train: ClipWindows[];
  /** Validation speakers' clean clips (never augmented: they stand for real callers). */
  validation: ClipWindows[];
  /** Validation speakers' augmented copies, for the final fit on every speaker. */
  validationAugmented: ClipWindows[];
  trainSpeakers: number;
  validationSpeakers: number;
  /** Clips that could not be read (each logged with its reason): left out of every side. */
  skipped: string[];
}

/**
 * The training and validation speakers of a training run with `seed`: one of
 * `validationFolds` speaker folds (stratified by gender) validates. A trained urgency head
 * is fitted on the same validation speakers, the ones the network never learnt from.
 */
export function validationSplit(clips: LabelledClip[], validationFolds: number, seed: number): { train: LabelledClip[]; test: LabelledClip[] } {
  return foldOf(clips, { index: 0, count: validationFolds }, seed + 1);
}

/**
 * Splits clips into training and validation speakers (speaker-disjoint, stratified by
 * gender, seeded) and extracts their windows through the inference feature path.
 */
export async function buildTrainingSet(clips: LabelledClip[], options: TrainingSetOptions): Promise<TrainingSet> {
  const labels = EMOTIONS.filter((e) => clips.some((c) => c.label === e));
  const speakers = new Set(clips.map((c) => c.speaker)).size;
  if (speakers < options.validationFolds) throw new Error(`${speakers} training speakers cannot make ${options.validationFolds} validation folds: use --validation-folds ${Math.max(2, speakers)} or fewer, or more speakers`);
  const split = validationSplit(clips, options.validationFolds, options.seed);
  const log = options.log ?? (() => {});
  const skipped: string[] = [];
  const onError = (clip: LabelledClip, err: Error) => {
    skipped.push(clip.path);
    log(`skipped ${clip.path}: ${err.message}`);
  };
  const common = { features: options.features, ...(options.windowing ? { windowing: options.windowing } : {}), ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}), progress: options.progress ?? false, onError };
  log(`training speakers ${new Set(split.train.map((c) => c.speaker)).size} (${split.train.length} clips, ×${1 + options.augmentations.length} with augmentation: ${options.augmentations.join(', ') || 'none'}), validation speakers ${new Set(split.test.map((c) => c.speaker)).size} (${split.test.length} clips)`);
  const all = await extractClipWindows([...split.train, ...split.test], { ...common, augmentations: options.augmentations });
  const validationSpeakers = new Set(split.test.map((c) => c.speaker));
  const train = all.filter((i) => !validationSpeakers.has(i.clip.speaker));
  const validation = all.filter((i) => validationSpeakers.has(i.clip.speaker) && i.variant === 'clean');
  const validationAugmented = all.filter((i) => validationSpeakers.has(i.clip.speaker) && i.variant !== 'clean');
  return { labels, train, validation, validationAugmented, trainSpeakers: new Set(split.train.map((c) => c.speaker)).size, validationSpeakers: validationSpeakers.size, skipped };
}
