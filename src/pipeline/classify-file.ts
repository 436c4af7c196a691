import type { VadConfig } from '../audio/voice-activity-detector.js';
import type { WindowingConfig } from '../audio/speech-windower.js';
import type { CallContext, Classifier } from '../model/classifier.js';
import { argMax } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import type { UrgencyDriver, UrgencyStage } from '../urgency/call-urgency.js';
import { levelRank, type UrgencyLevel } from '../urgency/urgency-score.js';
import { truncateScore } from '../urgency/score-text.js';
import { loadMono, streamWindows, type FileAudio } from './file-features.js';
import { judgeWindow, probabilityRecord, type WindowVerdict } from './window-verdict.js';

export interface FileVerdict {
  file: string;
  durationSeconds: number;
  /** Top emotion over the whole file; null when no speech was found. */
  emotion: Emotion | null;
  probabilities: Record<string, number>;
  /**
   * `level` and `score`: the whole file's mean probabilities, scored as one window. `trackedPeak`:
   * the highest level the live per-call tracker (smoothing, hysteresis, `raiseWindows` in a row)
   * reached over the file's windows, and `trackedPeakScore` its highest smoothed score. The two
   * answer different questions (what is this clip? would a live call have been flagged?), so a
   * short clip can score high as a whole and never raise the tracker. `driver`: which of the
   * urgency stage's scores gives `level` (angry or sad with a trained head, else weighted),
   * and `trackedDriver` the one behind `trackedPeak`.
   */
  urgency: { level: UrgencyLevel; score: number; driver: UrgencyDriver; trackedPeak: UrgencyLevel; trackedPeakScore: number; trackedDriver: UrgencyDriver };
  windows: {
    /** Where the window's first speech frame starts and its last one ends, in seconds of the file; a window can span a pause. */
    start: number;
    end: number;
    /** Seconds of speech in the window (pauses left out): the window length once that much speech was heard, less before. */
    speechSeconds: number;
    emotion: Emotion;
    probabilities: Record<string, number>;
    /** The level and raw score this window earns on its own (its driver's), as the call's trackers read it. */
    urgency: { level: UrgencyLevel; score: number; driver: UrgencyDriver };
  }[];
}

export interface ClassifyOptions {
  /** The model's urgency stage (its head or weights, and the trackers a live call would run). */
  urgency: UrgencyStage;
  windowing?: WindowingConfig;
  vad?: VadConfig;
  /**
   * The context of the call the file continues (e.g. `eval` warms a caller baseline on the
   * speaker's other clips first); without it a file is a call of its own.
   */
  call?: CallContext | null;
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));
/** Scores are cut, not rounded, so a score beside its level never reads as the next level's threshold. */
const score4 = (x: number) => truncateScore(x, 4);

/**
 * Classifies a recorded file: its speech windows, and a summary whose probabilities are
 * the windows' mean (weighted by their speech frames). `trackedPeak` is the highest level a
 * live per-call tracker would have flagged on this file.
 */
export async function classifyFile(path: string, classifier: Classifier, options: ClassifyOptions): Promise<FileVerdict> {
  const audio = await loadMono(path, classifier.manifest.features.sampleRate);
  return classifySignal(path, audio, classifier, options);
}

/**
 * `classifyFile` for audio already decoded at the model's rate (e.g. `eval --channel
 * telephone` passes a telephone-band version of the file): the same windows and summary.
 */
export function classifySignal(path: string, audio: FileAudio, classifier: Classifier, options: ClassifyOptions): FileVerdict {
  const stage = options.urgency;
  const verdicts: { v: WindowVerdict; frames: number; urgency: ReturnType<UrgencyStage['levelOf']> }[] = [];
  const call = options.call ?? classifier.newCallContext();
  // The call's urgency as a live channel follows it: its head's baseline and its trackers.
  const tracked = stage.newCall();
  let peak: UrgencyLevel = 'low';
  let peakScore = 0;
  let peakDriver = tracked.driver;
  const { features } = classifier.manifest;
  streamWindows(audio.samples, { features, windowing: options.windowing, vad: options.vad }, (w) => {
    const v = judgeWindow(classifier, w, stage.labelWeights, call);
    tracked.update(v.probabilities);
    if (levelRank(tracked.level) > levelRank(peak)) [peak, peakDriver] = [tracked.level, tracked.driver];
    peakScore = Math.max(peakScore, tracked.score);
    verdicts.push({ v, frames: w.frames, urgency: stage.levelOf(tracked.scores) });
  });

  const labels = classifier.labels;
  const mean = new Float64Array(labels.length);
  let weight = 0;
  for (const { v, frames } of verdicts) {
    for (let i = 0; i < mean.length; i++) mean[i]! += v.probabilities[i]! * frames;
    weight += frames;
  }
  if (weight > 0) for (let i = 0; i < mean.length; i++) mean[i]! /= weight;
  // The whole file as one window that opens a call: no baseline of the caller to compare with.
  const whole = stage.newCall();
  if (weight > 0) whole.update(mean);
  const summary = weight > 0 ? stage.levelOf(whole.scores) : { level: 'low' as const, score: 0, driver: whole.driver };
  return {
    file: path,
    durationSeconds: round(audio.durationSeconds),
    emotion: weight > 0 ? labels[argMax(mean)]! : null,
    probabilities: weight > 0 ? probabilityRecord(labels, mean) : {},
    urgency: { level: summary.level, score: score4(summary.score), driver: summary.driver, trackedPeak: peak, trackedPeakScore: score4(peakScore), trackedDriver: peakDriver },
    windows: verdicts.map(({ v, frames, urgency }) => ({
      start: round(v.startSeconds),
      end: round(v.endSeconds),
      speechSeconds: round((frames * features.hopSize) / features.sampleRate, 2),
      emotion: v.emotion,
      probabilities: probabilityRecord(labels, v.probabilities),
      urgency: { level: urgency.level, score: score4(urgency.score), driver: urgency.driver },
    })),
  };
}
