import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import type { DatasetFormat } from '../datasets/scan-dataset.js';
import { foldOf, parseFold, scanAll, type SplitKind } from '../datasets/select-clips.js';
import { frameVectorSize } from '../features/feature-config.js';
import { functionalsSize } from '../features/functionals.js';
import { int8TensorBytes } from '../model/int8-tensors.js';
import { mlpTensorShapes } from '../model/mlp/mlp-weights.js';
import { mlpInputSize } from '../model/mlp/caller-baseline.js';
import { writeBundle } from '../model/model-bundle.js';
import type { Emotion } from '../model/emotions.js';
import { parseAugmentations } from '../training/augment.js';
import { parseUrgentLabels } from '../training/evaluation.js';
import { FEATURE_PRESETS, type FeaturePreset } from '../training/feature-presets.js';
import { trainKnn } from '../training/train-knn.js';
import { buildTrainingSet } from '../training/training-set.js';

export interface TrainCommandOptions {
  data: string[];
  format: DatasetFormat;
  kind: 'knn' | 'gru' | 'mlp';
  out: string;
  features?: FeaturePreset;
  augment: string;
  /** `i/k`: leave fold i of k out of training entirely (evaluate it with `eval --fold i/k`). */
  holdout?: string;
  split: SplitKind;
  seed: number;
  validationFolds: number;
  cache: string;
  name: string;
  modelVersion: string;
  urgent: string;
  maxBytes: number;
  /** Most epochs; per-kind default (GRU 25, MLP 80) when absent. */
  epochs?: number;
  units: string;
  batchSize: number;
  /** MLP: hidden units per layer, comma-separated. */
  hidden: string;
  /** MLP: networks in the bag. */
  members: number;
  /** MLP: windows in the caller baseline, 0 for none. */
  callBaseline: number;
  progress: boolean;
  refit: boolean;
  /** `steps,dims` of the GRU's training masks, or `none`. */
  mask: string;
}

/** `ser-edge train`: a bundle from labelled recordings, with the model chosen on speaker-disjoint validation. */
export async function runTrain(options: TrainCommandOptions): Promise<number> {
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const urgent = parseUrgentLabels(options.urgent);
    if (options.callBaseline > 0 && options.kind !== 'mlp') throw new Error(`--call-baseline is for --kind mlp (a ${options.kind} model judges every window on its own)`);
    const augmentations = parseAugmentations(options.augment);
    const preset: FeaturePreset = options.features ?? 'prosody';
    const features = FEATURE_PRESETS[preset];
    let clips = await scanAll(options.data, options.format);
    const holdout = options.holdout ? parseFold(options.holdout) : null;
    if (holdout) clips = foldOf(clips, holdout, options.seed, options.split).train;
    log(`${clips.length} clips from ${new Set(clips.map((c) => c.speaker)).size} speakers${holdout ? ` (fold ${options.holdout} held out, ${options.split} split, seed ${options.seed})` : ''}`);
    const set = await buildTrainingSet(clips, { features, augmentations, validationFolds: options.validationFolds, seed: options.seed, cacheDir: options.cache, progress: options.progress, log });
    const provenance = {
      trainedOn: options.data,
      clips: clips.length,
      speakers: set.trainSpeakers + set.validationSpeakers,
      ...(holdout ? { heldOutFold: options.holdout, split: options.split, splitSeed: options.seed } : {}),
      // Which speakers validated: what fit-urgency fits the urgency head on.
      trainingSeed: options.seed,
      validationFolds: options.validationFolds,
      augmentation: augmentations,
      featurePreset: preset,
    };
    const common = { name: options.name, version: options.modelVersion, features, seed: options.seed, urgent, log, provenance };
    let model: { draft: Parameters<typeof writeBundle>[1]; files: Record<string, Uint8Array> };
    if (options.kind === 'knn') {
      model = trainKnn(set, { ...common, maxReferenceBytes: options.maxBytes - 64 * 1024 });
    } else if (options.kind === 'mlp') {
      const { trainMlp } = await import('../training/train-mlp.js');
      const hidden = options.hidden.split(',').map((u) => Number.parseInt(u, 10));
      const inputDim = mlpInputSize(functionalsSize(frameVectorSize(features)), options.callBaseline > 0);
      const bytes = int8TensorBytes(mlpTensorShapes(options.members, inputDim, hidden, set.labels.length));
      if (bytes > options.maxBytes - 64 * 1024)
        throw new Error(`an MLP bag of ${options.members} × ${hidden.join(',')} hidden units takes ${bytes} bytes of weights, over the --max-bytes budget of ${options.maxBytes} (64 KiB kept for the manifest): use fewer --members or --hidden units`);
      const maxEpochs = options.epochs ?? DEFAULT_EPOCHS.mlp;
      const bar = options.progress ? new SingleBar({ format: 'train {bar} {value}/{total} epochs (upper bound) | {status} | ETA {eta_formatted}', stream: process.stderr, etaBuffer: 20 }, Presets.shades_classic) : null;
      bar?.start(options.members * maxEpochs, 0, { status: '' });
      model = await trainMlp(set, {
        ...common,
        hidden,
        members: options.members,
        callBaseline: options.callBaseline,
        maxEpochs,
        batchSize: options.batchSize,
        onEpoch: (member, epoch, status) => {
          // Early stopping ends a member before maxEpochs: the bar jumps to the next member's share.
          if (bar) bar.update((member - 1) * maxEpochs + epoch, { status: `member ${member}/${options.members} ${status}` });
          else log(`member ${member}/${options.members} epoch ${epoch} ${status}`);
        },
        onDone: () => bar?.stop(),
      });
    } else {
      const { trainGru } = await import('../training/train-gru.js');
      const bar = options.progress ? new SingleBar({ format: 'train {bar} {value}/{total} epochs | {status} | ETA {eta_formatted}', stream: process.stderr, etaBuffer: 3 }, Presets.shades_classic) : null;
      model = await trainGru(set, {
        ...common,
        maxEpochs: options.epochs ?? DEFAULT_EPOCHS.gru,
        units: options.units.split(',').map((u) => Number.parseInt(u, 10)),
        batchSize: options.batchSize,
        refit: options.refit,
        ...parseMasking(options.mask),
        onEpoch: (epoch, total, status) => {
          if (bar && epoch === 1) bar.start(total, 0, { status });
          bar?.update(epoch, { status });
          if (!bar) log(`epoch ${epoch}/${total} ${status}`);
        },
        onDone: () => bar?.stop(),
      });
    }
    (model.draft.metrics as Record<string, unknown>).trainingSeconds = Math.round((Date.now() - started) / 1000);
    // The bundle's urgency is P(urgent labels): the quantity whose threshold was tuned on
    // validation. (The daemon's default weights also count fear and disgust at 0.5, which on
    // simulated calm calls nearly tripled the false flags.)
    model.draft.urgencyWeights = urgentOnlyWeights(model.draft.labels, urgent);
    const manifest = await writeBundle(options.out, model.draft, model.files);
    const bytes = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
    await mkdir(options.out, { recursive: true });
    await writeFile(join(options.out, 'training-command.txt'), `ser-edge train ${process.argv.slice(3).join(' ')}\n`);
    log(`wrote ${options.out}: ${manifest.name}@${manifest.version} (${manifest.kind}), ${bytes} bytes of weights, ${Math.round((Date.now() - started) / 1000)} s`);
    // The bundle is kept (the other clips trained it), but a run that lost data does not pass as a clean one.
    if (set.skipped.length > 0) {
      log(`ser-edge train: ${set.skipped.length} clip(s) could not be read and were left out of training (each named above with the reason); fix or remove them and train again`);
      return 1;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`ser-edge train: ${(err as Error).message}\n`);
    return 2;
  }
}

/** Most epochs per kind when --epochs is not given (both stop early on validation loss). */
export const DEFAULT_EPOCHS = { gru: 25, mlp: 80 } as const;

/** `--mask steps,dims` (e.g. `8,6`) or `none`. */
export function parseMasking(value: string): { masking?: { maxSteps: number; maxDims: number } } {
  if (value === 'none') return {};
  const m = /^(\d+),(\d+)$/.exec(value.trim());
  if (!m) throw new Error(`--mask "${value}" must be steps,dims (e.g. 8,6) or none`);
  return { masking: { maxSteps: Number(m[1]), maxDims: Number(m[2]) } };
}

/** A trained bundle's urgency weights: 1 for the urgent labels its threshold was tuned on, 0 for the rest. */
export function urgentOnlyWeights(labels: readonly Emotion[], urgent: readonly Emotion[]): Partial<Record<Emotion, number>> {
  return Object.fromEntries(labels.map((l) => [l, urgent.includes(l) ? 1 : 0]));
}
