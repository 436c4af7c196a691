import type { CallContext, Classifier } from '../model/classifier.js';
import { argMax } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import { urgencyScore } from '../urgency/urgency-score.js';
import type { SpeechWindow } from './speech-feature-stream.js';

/** What the model said about one window of speech. */
export interface WindowVerdict {
  startSeconds: number;
  endSeconds: number;
  emotion: Emotion;
  /** Probabilities in the classifier's label order (a fresh array, safe to keep). */
  probabilities: Float32Array;
  /** Raw (unsmoothed) urgency score of this window, 0..1. */
  score: number;
}

/**
 * Classifies a window: the step shared by `classify`, `eval` and the daemon's channels.
 * `call` is the context of the call the window belongs to (`Classifier.newCallContext`).
 */
export function judgeWindow(classifier: Classifier, window: SpeechWindow, labelWeights: Float32Array, call: CallContext | null = null): WindowVerdict {
  const probabilities = classifier.predict(window.rows, window.frames, new Float32Array(classifier.labels.length), call);
  return {
    startSeconds: window.startSeconds,
    endSeconds: window.endSeconds,
    emotion: classifier.labels[argMax(probabilities)]!,
    probabilities,
    score: urgencyScore(probabilities, labelWeights),
  };
}

export function probabilityRecord(labels: readonly Emotion[], probabilities: ArrayLike<number>, digits = 4): Record<string, number> {
  const out: Record<string, number> = {};
  labels.forEach((l, i) => (out[l] = Number(probabilities[i]!.toFixed(digits))));
  return out;
}
