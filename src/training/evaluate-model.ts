import { basename } from 'node:path';
import { UrgencyStage } from '../urgency/call-urgency.js';
import { SingleBar, Presets } from 'cli-progress';
import { DEFAULT_WINDOWING } from '../audio/speech-windower.js';
import type { LabelledClip } from '../datasets/labelled-clip.js';
import { seededRandom, shuffleInPlace, stringSeed } from '../datasets/seeded-random.js';
import type { Classifier } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import { callBaselineWindows } from '../model/mlp/pooled-mlp-classifier.js';
import { classifySignal } from '../pipeline/classify-file.js';
import { loadMono, streamWindows } from '../pipeline/file-features.js';
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
  /**
   * For a model that keeps a per-call context (a caller baseline): other clips of the same
   * speaker heard earlier in the call, before each clip; 0 or absent, each clip opens a
   * call of its own. Ignored for models without a context.
   */
  callWarmup?: number;
  /** Seed of the warm-up clips' draw. */
  seed?: number;
}

/**
 * Runs each clip through the real inference path (the classify pipeline: decode, VAD,
 * windows, the model, file verdict = mean of window probabilities) and scores the verdicts.
 */
export async function classifyClips(clips: LabelledClip[], classifier: Classifier, options: EvaluateOptions): Promise<ClipOutcome[]> {
  const rate = classifier.manifest.features.sampleRate;
  const urgency = UrgencyStage.of(classifier);
  const settings = { urgency, windowing: DEFAULT_WINDOWING };
  const decode = async (clip: LabelledClip) => {
    const audio = await loadMono(clip.path, rate);
    if (options.channel === 'telephone') audio.samples = telephoneBand(audio.samples, rate);
    return audio;
  };
  const outcomeOf = (clip: LabelledClip, verdict: ReturnType<typeof classifySignal>): ClipOutcome => ({
    truth: clip.label,
    predicted: verdict.emotion,
    probabilities: verdict.probabilities,
    speaker: clip.speaker,
    ...(clip.gender ? { gender: clip.gender } : {}),
  });
  const bar = options.progress ? new SingleBar({ format: 'eval {bar} {value}/{total} clips | ETA {eta_formatted}', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(clips.length, 0);
  const warmup = options.callWarmup ?? 0;
  const outcomes: ClipOutcome[] = [];
  if (warmup === 0 || classifier.newCallContext() === null) {
    for (const clip of clips) {
      try {
        outcomes.push(outcomeOf(clip, classifySignal(clip.path, await decode(clip), classifier, settings)));
      } catch (err) {
        options.onError?.(clip, err as Error);
      }
      bar?.increment();
    }
  } else {
    // Speaker by speaker. A warm-up clip only matters for the windows a caller baseline
    // takes in, so the first pass keeps just those of each clip and the second decodes
    // each clip again to judge it: memory grows with clips, not with hours of audio.
    const keep = callBaselineWindows(classifier.manifest);
    const scratch = new Float32Array(classifier.labels.length);
    const bySpeaker = new Map<string, number[]>();
    clips.forEach((c, i) => bySpeaker.set(c.speaker, [...(bySpeaker.get(c.speaker) ?? []), i]));
    const slots: (ClipOutcome | undefined)[] = new Array(clips.length);
    for (const indices of bySpeaker.values()) {
      const firstWindows = new Map<number, { rows: Float32Array; frames: number }[]>();
      for (const i of indices) {
        try {
          const kept: { rows: Float32Array; frames: number }[] = [];
          streamWindows((await decode(clips[i]!)).samples, { features: classifier.manifest.features, windowing: DEFAULT_WINDOWING }, (w) => {
            if (kept.length < keep) kept.push({ rows: w.rows.slice(0, w.frames * w.dim), frames: w.frames });
          });
          firstWindows.set(i, kept);
        } catch (err) {
          options.onError?.(clips[i]!, err as Error);
          bar?.increment();
        }
      }
      // Candidates in file-name order and a seed from the clip's file name: a clip's warm-up
      // depends on neither the order clips were listed in nor where the corpus lives.
      const candidates = [...firstWindows.keys()].sort((a, b) => fileName(clips[a]!).localeCompare(fileName(clips[b]!)) || clips[a]!.path.localeCompare(clips[b]!.path));
      for (const i of firstWindows.keys()) {
        const clip = clips[i]!;
        try {
          const call = classifier.newCallContext();
          const random = seededRandom(stringSeed(fileName(clip)) ^ (options.seed ?? 1));
          for (const j of shuffleInPlace(candidates.filter((j) => j !== i), random).slice(0, warmup))
            for (const w of firstWindows.get(j)!) classifier.predict(w.rows, w.frames, scratch, call);
          slots[i] = outcomeOf(clip, classifySignal(clip.path, await decode(clip), classifier, { ...settings, call }));
        } catch (err) {
          options.onError?.(clip, err as Error);
        }
        bar?.increment();
      }
    }
    for (const o of slots) if (o) outcomes.push(o);
  }
  bar?.stop();
  return outcomes;
}

const fileName = (clip: LabelledClip) => basename(clip.path);


export async function evaluateClassifier(clips: LabelledClip[], classifier: Classifier, options: EvaluateOptions): Promise<EvalMetrics> {
  const outcomes = await classifyClips(clips, classifier, options);
  return computeMetrics(outcomes, classifier.labels, options.urgent, options.urgentThreshold);
}
