import { DEFAULT_WINDOWING } from '../audio/speech-windower.js';
import type { LabelledClip } from '../datasets/labelled-clip.js';
import { shuffleInPlace } from '../datasets/seeded-random.js';
import type { CallContext, Classifier } from '../model/classifier.js';
import type { Emotion } from '../model/emotions.js';
import { loadMono } from '../pipeline/file-features.js';
import { SpeechFeatureStream, type SpeechWindow } from '../pipeline/speech-feature-stream.js';
import { judgeWindow } from '../pipeline/window-verdict.js';
import type { UrgencyStage } from '../urgency/call-urgency.js';
import { addNoise, telephoneBand } from './augment.js';

/**
 * Kinds of simulated call: `escalating` opens with the caller's neutral clips and turns
 * angry or sad; `first-word` is angry or sad throughout; `calm` is neutral and happy clips
 * only, where every flag is a false one.
 */
export type CallKind = 'escalating' | 'first-word' | 'calm';
export type UrgentEmotion = 'angry' | 'sad';

export interface CallRecipe {
  /** Calls of each urgent kind (escalating, first-word), half angry and half sad. */
  calls: number;
  /** Calm calls. */
  calmCalls: number;
  /** Neutral clips that open an escalating call. */
  openingClips: number;
  /** Angry or sad clips of an urgent call. */
  urgentClips: number;
  /** Clips of a calm call. */
  calmClips: number;
  calmLabels: readonly Emotion[];
  /** Background noise, dB below the speech. */
  snrDb: number;
}

/** The calls: four neutral clips, then six angry or six sad; calm calls of twenty neutral and happy clips; noise 30 dB down. */
export const DEFAULT_CALL_RECIPE: CallRecipe = { calls: 16, calmCalls: 16, openingClips: 4, urgentClips: 6, calmClips: 20, calmLabels: ['neutral', 'happy'], snrDb: 30 };

export interface PlannedCall {
  kind: CallKind;
  /** angry or sad for urgent calls, null for calm ones. */
  emotion: UrgentEmotion | null;
  speaker: string;
  clips: LabelledClip[];
  /** Index in `clips` of the first angry or sad clip (0 for first-word calls, clips.length for calm ones). */
  urgentFrom: number;
}

/**
 * The calls of a set of speakers: `recipe.calls` escalating and as many first-word calls
 * (alternately angry and sad, speakers in turn), and `recipe.calmCalls` calm calls. Seeded:
 * the same speakers and seed give the same calls, whatever runs them.
 */
export function planCalls(clips: readonly LabelledClip[], recipe: CallRecipe, random: () => number): PlannedCall[] {
  const bySpeaker = new Map<string, LabelledClip[]>();
  for (const c of clips) bySpeaker.set(c.speaker, [...(bySpeaker.get(c.speaker) ?? []), c]);
  const speakers = [...bySpeaker.keys()].sort();
  if (speakers.length === 0) throw new Error('no speakers to simulate calls of');
  const pick = (from: LabelledClip[], n: number) => shuffleInPlace([...from], random).slice(0, n);
  const of = (speaker: string, labels: readonly Emotion[]) => bySpeaker.get(speaker)!.filter((c) => labels.includes(c.label));
  const calls: PlannedCall[] = [];
  for (const kind of ['escalating', 'first-word'] as const) {
    for (let i = 0, made = 0, tries = 0; made < recipe.calls && tries < recipe.calls * 4; i++, tries++) {
      const speaker = speakers[i % speakers.length]!;
      const emotion: UrgentEmotion = made % 2 === 0 ? 'angry' : 'sad';
      const opening = kind === 'escalating' ? pick(of(speaker, ['neutral']), recipe.openingClips) : [];
      const urgent = pick(of(speaker, [emotion]), recipe.urgentClips);
      if (urgent.length === 0 || (kind === 'escalating' && opening.length === 0)) continue;
      calls.push({ kind, emotion, speaker, clips: [...opening, ...urgent], urgentFrom: opening.length });
      made++;
    }
  }
  for (let i = 0, made = 0; made < recipe.calmCalls && i < recipe.calmCalls * 4; i++) {
    const speaker = speakers[i % speakers.length]!;
    const calm = pick(of(speaker, recipe.calmLabels), recipe.calmClips);
    if (calm.length === 0) continue;
    calls.push({ kind: 'calm', emotion: null, speaker, clips: calm, urgentFrom: calm.length });
    made++;
  }
  return calls;
}

/** Where each clip of a rendered call lies, in seconds of the call. */
export interface Utterance {
  start: number;
  end: number;
  label: Emotion;
}

export interface RenderedCall {
  samples: Float32Array;
  utterances: Utterance[];
  seconds: number;
}

/** Decoded clips at one rate, each read once however many calls use it. */
export class ClipAudio {
  private readonly cache = new Map<string, Float32Array>();
  constructor(readonly sampleRate: number) {}
  async of(clip: LabelledClip): Promise<Float32Array> {
    let samples = this.cache.get(clip.path);
    if (samples === undefined) {
      samples = (await loadMono(clip.path, this.sampleRate)).samples;
      this.cache.set(clip.path, samples);
    }
    return samples;
  }
}

/**
 * A planned call as audio: a short silence, then the clips with pauses of 0.4–1.6 s
 * between them, background noise `snrDb` below the speech, and optionally the telephone
 * band (300–3400 Hz) over all of it, as a VoIP leg would give it.
 */
export async function renderCall(call: PlannedCall, audio: ClipAudio, random: () => number, options: { snrDb: number; telephone: boolean }): Promise<RenderedCall> {
  const rate = audio.sampleRate;
  const pieces: Float32Array[] = [];
  const utterances: Utterance[] = [];
  let at = Math.round((0.5 + random()) * rate);
  pieces.push(new Float32Array(at));
  for (const clip of call.clips) {
    const a = await audio.of(clip);
    utterances.push({ start: at / rate, end: (at + a.length) / rate, label: clip.label });
    const pause = new Float32Array(Math.round((0.4 + 1.2 * random()) * rate));
    pieces.push(a, pause);
    at += a.length + pause.length;
  }
  const joined = new Float32Array(at);
  let o = 0;
  for (const p of pieces) {
    joined.set(p, o);
    o += p.length;
  }
  let samples = addNoise(joined, options.snrDb, Math.floor(random() * 2 ** 31));
  if (options.telephone) samples = telephoneBand(samples, rate);
  return { samples, utterances, seconds: at / rate };
}

/** One window of a call as the daemon judged it: its span, and the model's probabilities. */
export interface CallWindow {
  start: number;
  end: number;
  probabilities: Float32Array;
}

/**
 * Runs a call through the live path once: the streaming VAD and features in 100 ms
 * blocks, as a capture source delivers them, and the model with one call context for the
 * whole call, as a headset channel keeps it.
 */
export function judgeCall(samples: Float32Array, classifier: Classifier): CallWindow[] {
  const rate = classifier.manifest.features.sampleRate;
  const stream = new SpeechFeatureStream({ features: classifier.manifest.features, windowing: DEFAULT_WINDOWING });
  const context: CallContext | null = classifier.newCallContext();
  const windows: CallWindow[] = [];
  const none = new Float32Array(classifier.labels.length);
  const onWindow = (w: SpeechWindow) => {
    const v = judgeWindow(classifier, w, none, context);
    windows.push({ start: w.startSeconds, end: w.endSeconds, probabilities: v.probabilities });
  };
  const block = Math.round(0.1 * rate);
  for (let i = 0; i < samples.length; i += block) stream.push(samples.subarray(i, i + block), onWindow);
  stream.end(onWindow);
  return windows;
}

/** The label of the utterance a window overlaps most (a window spans speech and the pauses inside it). */
export function windowLabel(window: { start: number; end: number }, utterances: readonly Utterance[]): Emotion {
  let best = utterances[0]!;
  let most = -Infinity;
  for (const u of utterances) {
    const overlap = Math.min(window.end, u.end) - Math.max(window.start, u.start);
    if (overlap > most) [best, most] = [u, overlap];
  }
  return best.label;
}

/** A judged call: what was planned, where its urgent part starts, and its windows. */
export interface JudgedCall {
  plan: PlannedCall;
  channel: 'clean' | 'telephone';
  seconds: number;
  /** Seconds into the call where the first angry or sad clip starts (Infinity for calm calls). */
  onset: number;
  utterances: Utterance[];
  windows: CallWindow[];
}

/** Plans, renders and judges every call on each channel: what the head is fitted on and the trackers are measured on. */
export async function judgeCalls(plan: readonly PlannedCall[], classifier: Classifier, options: { channels: readonly ('clean' | 'telephone')[]; snrDb: number; random: () => number; onCall?: (done: number, total: number) => void }): Promise<JudgedCall[]> {
  const audio = new ClipAudio(classifier.manifest.features.sampleRate);
  const judged: JudgedCall[] = [];
  const total = plan.length * options.channels.length;
  for (const channel of options.channels) {
    for (const call of plan) {
      const rendered = await renderCall(call, audio, options.random, { snrDb: options.snrDb, telephone: channel === 'telephone' });
      const onset = call.kind === 'calm' ? Infinity : rendered.utterances[call.urgentFrom]!.start;
      judged.push({ plan: call, channel, seconds: rendered.seconds, onset, utterances: rendered.utterances, windows: judgeCall(rendered.samples, classifier) });
      options.onCall?.(judged.length, total);
    }
  }
  return judged;
}

/** When a call's level rose, by the stage's CallUrgency (the daemon's own), from the call's window scores. */
export interface CallFlags {
  /** Window ends (seconds) where the level rose out of low, and where it rose to high. */
  anyRaises: number[];
  highRaises: number[];
}

/**
 * Replays a judged call's windows through a fresh CallUrgency of `stage`, as a headset
 * channel would. `scores`, each window's raw scores already made by a stage with the same
 * head, skip the head: a threshold search replays one call under many tracker settings.
 */
export function flagsOf(call: JudgedCall, stage: UrgencyStage, scores?: readonly ArrayLike<number>[]): CallFlags {
  const urgency = stage.newCall();
  const flags: CallFlags = { anyRaises: [], highRaises: [] };
  for (const [i, w] of call.windows.entries()) {
    const change = scores ? urgency.updateScores(scores[i]!) : urgency.update(w.probabilities);
    if (change?.kind !== 'raise') continue;
    if (change.previous === 'low') flags.anyRaises.push(w.end);
    if (change.level === 'high') flags.highRaises.push(w.end);
  }
  return flags;
}
