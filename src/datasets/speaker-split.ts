import type { LabelledClip } from './labelled-clip.js';
import { seededRandom, shuffleInPlace } from './seeded-random.js';

export interface Split {
  train: LabelledClip[];
  test: LabelledClip[];
}

/**
 * Deals speakers into k folds, each gender dealt separately so every fold gets its share
 * of male and female voices. A speaker's clips all land in one fold.
 */
export function speakerFolds(clips: LabelledClip[], k: number, seed: number): string[][] {
  const random = seededRandom(seed);
  const byGender = new Map<string, Set<string>>();
  for (const c of clips) {
    const g = c.gender ?? 'unknown';
    if (!byGender.has(g)) byGender.set(g, new Set());
    byGender.get(g)!.add(c.speaker);
  }
  const folds: string[][] = Array.from({ length: k }, () => []);
  let next = 0;
  for (const g of [...byGender.keys()].sort()) {
    for (const speaker of shuffleInPlace([...byGender.get(g)!].sort(), random)) folds[next++ % k]!.push(speaker);
  }
  return folds;
}

/** Train/test by speaker: roughly `testFraction` of the speakers (per gender) are held out. */
export function splitBySpeaker(clips: LabelledClip[], testFraction: number, seed: number): Split {
  const k = Math.max(2, Math.round(1 / testFraction));
  return splitByFold(clips, speakerFolds(clips, k, seed), 0);
}

export function splitByFold(clips: LabelledClip[], folds: string[][], testFold: number): Split {
  const test = new Set(folds[testFold]);
  return { train: clips.filter((c) => !test.has(c.speaker)), test: clips.filter((c) => test.has(c.speaker)) };
}

/**
 * The seed study's protocol: files shuffled regardless of speaker. Only for reproducing its
 * (inflated) figures; every real result uses a speaker split.
 */
export function randomFileSplit(clips: LabelledClip[], testFraction: number, seed: number): Split {
  const shuffled = shuffleInPlace([...clips], seededRandom(seed));
  const n = Math.round(shuffled.length * testFraction);
  return { test: shuffled.slice(0, n), train: shuffled.slice(n) };
}
