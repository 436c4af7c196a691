import { resolve } from 'node:path';
import { DatasetError, type LabelledClip } from './labelled-clip.js';
import { scanDataset, type DatasetFormat } from './scan-dataset.js';
import { randomFileSplit, speakerFolds, splitByFold } from './speaker-split.js';

/** `i/k`: fold i (0-based) of k speaker folds. */
export interface FoldSpec {
  index: number;
  count: number;
}

export function parseFold(value: string): FoldSpec {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 2 || index >= count) throw new Error(`fold "${value}" must be i/k with 0 ≤ i < k and k ≥ 2, e.g. 0/5`);
  return { index, count };
}

export type SplitKind = 'speaker' | 'random';

/**
 * The train and test side of fold `fold` of a dataset: by speaker (stratified by gender)
 * unless `split` is `random`, the seed study's file-level protocol kept only to reproduce
 * its inflated figures. `train` and `eval` call this with the same arguments, so a model
 * trained with `--holdout 0/5` is evaluated with `--fold 0/5` on exactly the clips it never saw.
 */
export function foldOf(clips: LabelledClip[], fold: FoldSpec, seed: number, split: SplitKind = 'speaker'): { train: LabelledClip[]; test: LabelledClip[] } {
  if (split === 'random') {
    // The random protocol's fold i of k: file positions i, i+k, … after one seeded shuffle.
    const shuffled = randomFileSplit(clips, 0, seed).train;
    return { train: shuffled.filter((_, j) => j % fold.count !== fold.index), test: shuffled.filter((_, j) => j % fold.count === fold.index) };
  }
  const folds = speakerFolds(clips, fold.count, seed);
  if (folds[fold.index]!.length === 0) throw new DatasetError(`fold ${fold.index}/${fold.count}`, 'has no speakers: use fewer folds');
  return splitByFold(clips, folds, fold.index);
}

/**
 * The clips of every `--data` folder or CSV, as one set. Speakers are named by corpus and
 * id (`cremad:1001`), so the speakers of two folders of one corpus (cremad/ and
 * cremad-extra/) are simply more speakers, as long as no id turns up in both: that is
 * refused, since it means the same recordings twice (a folder beside its decoded copy) or
 * two people under one id, and either would put wrong counts into every split.
 */
export async function scanAll(dirs: string[], format: DatasetFormat): Promise<LabelledClip[]> {
  const clips: LabelledClip[] = [];
  const speakerFolder = new Map<string, string>();
  for (const d of dirs) {
    const found = await scanDataset(d, format);
    const here = new Set(found.map((c) => c.speaker));
    const shared = [...here].filter((s) => speakerFolder.has(s));
    if (shared.length > 0) {
      const first = speakerFolder.get(shared[0]!)!;
      if (resolve(first) === resolve(d)) throw new DatasetError(d, 'is given twice as --data: pass each folder once');
      const who = shared.length === 1 ? `speaker ${shared[0]} has` : `${shared.length} speakers (${shared.slice(0, 3).join(', ')}${shared.length > 3 ? ', …' : ''}) have`;
      throw new DatasetError(
        d,
        `${who} clips here and in ${first}: ` +
          `a speaker's clips must all come from one --data folder (two folders that share speakers usually hold the same recordings twice, e.g. a corpus and its decoded copy); pass only one of them, or give a CSV's speakers names of their own`,
      );
    }
    for (const s of here) speakerFolder.set(s, d);
    clips.push(...found);
  }
  if (clips.length === 0) throw new DatasetError(dirs.join(', '), 'no labelled clips found');
  return clips;
}

/**
 * The test clips of a model trained with `--holdout`: refuses a fold, seed or split other
 * than the ones the bundle records, since any other fold holds speakers it was trained on.
 * Without `fold`, a model with a held-out fold is refused too (all data includes its
 * training speakers); a model without one is measured on every clip.
 */
export function heldOutClips(clips: LabelledClip[], bundleMetrics: Record<string, unknown>, request: { fold?: string; seed: number; split: SplitKind }, model: string): LabelledClip[] {
  const trained = typeof bundleMetrics['heldOutFold'] === 'string' ? (bundleMetrics['heldOutFold'] as string) : null;
  if (trained === null) return request.fold ? foldOf(clips, parseFold(request.fold), request.seed, request.split).test : clips;
  const seed = typeof bundleMetrics['splitSeed'] === 'number' ? (bundleMetrics['splitSeed'] as number) : request.seed;
  const split = bundleMetrics['split'] === 'random' ? 'random' : 'speaker';
  const wanted = `--fold ${trained} --seed ${seed} --split ${split}`;
  if (!request.fold) throw new DatasetError(model, `was trained with fold ${trained} held out; the rest of the data trained it, so evaluate with ${wanted}`);
  if (request.fold !== trained || request.seed !== seed || request.split !== split) {
    throw new DatasetError(model, `was trained with fold ${trained} (seed ${seed}, ${split} split) held out; --fold ${request.fold} --seed ${request.seed} --split ${request.split} would include speakers it was trained on: use ${wanted}`);
  }
  return foldOf(clips, parseFold(trained), seed, split).test;
}

/**
 * The clips a bundle was trained on: the rest of the data beside its held-out fold
 * (`heldOutFold`, `splitSeed` in its metrics), or all of `clips` for a bundle trained on
 * everything. What its validation speakers are drawn from.
 */
export function trainedOnClips(clips: LabelledClip[], bundleMetrics: Record<string, unknown>): LabelledClip[] {
  const trained = typeof bundleMetrics['heldOutFold'] === 'string' ? (bundleMetrics['heldOutFold'] as string) : null;
  if (trained === null) return clips;
  const seed = typeof bundleMetrics['splitSeed'] === 'number' ? (bundleMetrics['splitSeed'] as number) : 1;
  return foldOf(clips, parseFold(trained), seed, bundleMetrics['split'] === 'random' ? 'random' : 'speaker').train;
}
