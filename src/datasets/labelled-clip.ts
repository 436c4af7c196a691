import type { Emotion } from '../model/emotions.js';

export type Gender = 'male' | 'female';

/** One labelled recording of a corpus or a customer's CSV. */
export interface LabelledClip {
  path: string;
  label: Emotion;
  /** Unique across corpora: `cremad:1005`, `ravdess:07`. Splits never put a speaker on both sides. */
  speaker: string;
  gender?: Gender;
  corpus: string;
}

export class DatasetError extends Error {
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(`${where}: ${message}`);
    this.name = 'DatasetError';
  }
}
