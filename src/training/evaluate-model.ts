import { SingleBar, Presets } from 'cli-progress';
import { DEFAULT_WINDOWING } from '../audio/speech-windower.js';
import type { LabelledClip } from '../datasets/labelled-clip.js';
import type { Classifier } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import { classifySignal } from '../pipeline/classify-file.js';
import { loadMono } from '../pipeline/file-features.js';
import { resolveWeights, weightsForLabels } from '../urgency/urgency-score.js';
import { DEFAULT_TRACKER_CONFIG } from '../urgency/urgency-tracker.js';
import { telephoneBand } from './augment.js';
import { computeMetrics, type ClipOutcome, type EvalMetrics } from './evaluation.js';

export const EVAL_CHANNELS = ['clean', 'telephone'] as const;
export type EvalChannel = (typeof EVAL_CHANNELS)[number];

export interface EvaluateOptions {
  channel?: EvalChannel;
  urgent: readonly Emotion[];
  /** P(urgent) threshold for the urgent decision; the top-emotion rule when absent. */
  urgentThreshold?: number;
  progress?: boolean;
  onError?: (clip: LabelledClip, err: Error) => void;
}

/**
 * Runs each clip through the real inference path (the classify pipeline: decode, VAD,
 * windows, the model, file verdict = mean of window probabilities) and scores the verdicts.
 */
export async function classifyClips(clips: LabelledClip[], classifier: Classifier, options: EvaluateOptions): Promise<ClipOutcome[]> {
  const labelWeights = weightsForLabels(classifier.labels, resolveWeights(classifier.manifest.urgencyWeights));
  const rate = classifier.manifest.features.sampleRate;
  const bar = options.progress ? new SingleBar({ format: 'eval {bar} {value}/{total} clips | ETA {eta_formatted}', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(clips.length, 0);
  const outcomes: ClipOutcome[] = [];
  for (const clip of clips) {
    try {
      const audio = await loadMono(clip.path, rate);
      if (options.channel === 'telephone') audio.samples = telephoneBand(audio.samples, rate);
      const verdict = classifySignal(clip.path, audio, classifier, { labelWeights, thresholds: DEFAULT_TRACKER_CONFIG.thresholds, tracker: DEFAULT_TRACKER_CONFIG, windowing: DEFAULT_WINDOWING });
      outcomes.push({ truth: clip.label, predicted: verdict.emotion, probabilities: verdict.probabilities, speaker: clip.speaker, ...(clip.gender ? { gender: clip.gender } : {}) });
    } catch (err) {
      options.onError?.(clip, err as Error);
    }
    bar?.increment();
  }
  bar?.stop();
  return outcomes;
}

export async function evaluateClassifier(clips: LabelledClip[], classifier: Classifier, options: EvaluateOptions): Promise<EvalMetrics> {
  const outcomes = await classifyClips(clips, classifier, options);
  return computeMetrics(outcomes, classifier.labels, options.urgent, options.urgentThreshold);
}
