import { argMax } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import { probabilityRecord } from '../pipeline/window-verdict.js';
import type { ClipWindows } from './clip-windows.js';
import type { ClipOutcome } from './evaluation.js';

/** Which clip each of `count` model rows (windows) came from, and its speech frames. */
export interface WindowRows {
  clip: Int32Array;
  frames: Float32Array;
  count: number;
}

/** Clip verdicts from window probabilities (`labels` per row): frame-weighted means, as classifyFile does. */
export function clipOutcomes(items: ClipWindows[], rows: WindowRows, probs: Float32Array, labels: readonly Emotion[]): ClipOutcome[] {
  const L = labels.length;
  const sums = items.map(() => new Float64Array(L));
  const weights = new Float64Array(items.length);
  for (let r = 0; r < rows.count; r++) {
    const c = rows.clip[r]!;
    for (let i = 0; i < L; i++) sums[c]![i]! += probs[r * L + i]! * rows.frames[r]!;
    weights[c]! += rows.frames[r]!;
  }
  return items.map((item, c) => {
    const mean = sums[c]!.map((v) => v / weights[c]!);
    return { truth: item.clip.label, predicted: labels[argMax(mean)]!, probabilities: probabilityRecord(labels, mean), ...(item.clip.gender ? { gender: item.clip.gender } : {}) };
  });
}
