import { join } from 'node:path';
import type { UrgencySettings } from '../../src/urgency/call-urgency.js';
import { DEFAULT_WINDOWING, type WindowingConfig } from '../../src/audio/speech-windower.js';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { liveModel, type LiveModel } from '../../src/daemon/model-slot.js';
import { manifestDigest } from '../../src/daemon/load-model.js';
import { scanDataset } from '../../src/datasets/scan-dataset.js';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../../src/features/feature-config.js';
import type { CallContext, Classifier } from '../../src/model/classifier.js';
import type { Emotion } from '../../src/model/emotions.js';
import { loadClassifier } from '../../src/model/load-classifier.js';
import { writeBundle } from '../../src/model/model-bundle.js';
import { SpeechFeatureStream } from '../../src/pipeline/speech-feature-stream.js';
import { extractClipWindows } from '../../src/training/clip-windows.js';
import { buildKnnModel, poolWindows } from '../../src/training/knn-trainer.js';
import { writeSyntheticDataset } from './synthetic-dataset.js';

export const RATE = 16000;
/** 100 ms capture blocks, as a live source delivers them. */
export const BLOCK = 1600;

/**
 * Two KNN bundles on the synthetic voices, with the same feature config: `synthetic`
 * (angry voice → angry, calm → neutral) and `contrary`, trained on the same windows with
 * angry and calm swapped, so it flags the calm caller and not the angry one.
 */
export async function writeKnnBundles(dir: string): Promise<{ synthetic: string; contrary: string }> {
  const csv = await writeSyntheticDataset(join(dir, 'data'), { speakers: 2, perClass: 3 });
  const items = await extractClipWindows(await scanDataset(csv), { features: DEFAULT_FEATURE_CONFIG });
  const labels: Emotion[] = ['neutral', 'sad', 'angry'];
  const swap: Partial<Record<Emotion, Emotion>> = { angry: 'neutral', neutral: 'angry' };
  const write = async (name: string, relabel: boolean) => {
    const set = relabel ? items.map((i) => ({ ...i, clip: { ...i.clip, label: swap[i.clip.label] ?? i.clip.label } })) : items;
    const model = buildKnnModel(poolWindows(set, labels), { name, version: '1.0.0', labels, features: DEFAULT_FEATURE_CONFIG, k: 3, metric: 'l1' });
    const out = join(dir, name);
    await writeBundle(out, model.draft, model.files);
    return out;
  };
  return { synthetic: await write('synthetic', false), contrary: await write('contrary', true) };
}

/** A window as a model saw it: its size and a digest of its frame vectors. */
export interface SeenWindow {
  frames: number;
  dim: number;
  checksum: number;
}

const digest = (rows: Float32Array, frames: number): SeenWindow => {
  let checksum = 0;
  for (let i = 0; i < rows.length; i++) checksum = (checksum * 31 + rows[i]! * 1000 * ((i % 7) + 1)) % 1e9;
  return { frames, dim: rows.length / frames, checksum };
};

/** Replaces the probabilities a model wrote over its `labels`. */
export type Rewrite = (out: Float32Array, labels: readonly Emotion[]) => void;

/** A real classifier whose questions are counted: the windows it judged, the contexts it made and the ones it was given. */
export interface CountedClassifier extends Classifier {
  readonly tag: string;
  readonly made: (CallContext | null)[];
  readonly given: (CallContext | null | undefined)[];
  predicts: number;
}

/**
 * Wraps `inner`; every window it judges is appended to `judged` (shared by the models of
 * one test, so the log is the order in which windows were classified, by whom). `rewrite`
 * may replace the probabilities the real model wrote (after it ran).
 */
export function counted(inner: Classifier, tag: string, judged: (SeenWindow & { tag: string })[] = [], rewrite?: Rewrite): CountedClassifier {
  const wrapper: CountedClassifier = {
    tag,
    made: [],
    given: [],
    predicts: 0,
    labels: inner.labels,
    manifest: inner.manifest,
    backend: inner.backend,
    predict(rows, frames, out, call) {
      judged.push({ tag, ...digest(rows, frames) });
      wrapper.given.push(call);
      inner.predict(rows, frames, out, call);
      rewrite?.(out, inner.labels);
      wrapper.predicts++;
      return out;
    },
    newCallContext() {
      const context = inner.newCallContext();
      wrapper.made.push(context);
      return context;
    },
    predictModelInput: (input, out) => inner.predictModelInput(input, out),
    modelInput: (rows, frames) => inner.modelInput(rows, frames),
    dispose: () => inner.dispose(),
  };
  return wrapper;
}

/**
 * Loads `dir` and wraps it (see `counted`) as a LiveModel, with the bundle's own urgency
 * stage under `settings` (the daemon's defaults when absent).
 */
export async function countedModel(dir: string, tag: string, judged?: (SeenWindow & { tag: string })[], rewrite?: Rewrite, settings?: UrgencySettings): Promise<LiveModel & { classifier: CountedClassifier }> {
  const classifier = counted(await loadClassifier(dir), tag, judged, rewrite);
  return liveModel(classifier, settings, await manifestDigest(dir)) as LiveModel & { classifier: CountedClassifier };
}

/** A synthetic call (`pattern`: [style, seconds] played one after the other), cut into capture blocks. */
export function voiceBlocks(pattern: [keyof typeof VOICE_STYLES, number][], seed = 100): Float32Array[] {
  const parts = pattern.map(([style, seconds], i) => synthesiseVoice(VOICE_STYLES[style], seconds, RATE, seed + i));
  const voice = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    voice.set(p, at);
    at += p.length;
  }
  const blocks: Float32Array[] = [];
  for (let b = 0; b < voice.length; b += BLOCK) blocks.push(voice.subarray(b, b + BLOCK));
  return blocks;
}

/** The windows a feature stream of its own finds in `blocks`: what a channel's stream must hand its models. */
export function referenceWindows(features: FeatureConfig, blocks: Float32Array[], windowing: WindowingConfig = DEFAULT_WINDOWING): (SeenWindow & { endSeconds: number })[] {
  const stream = new SpeechFeatureStream({ features, windowing });
  const out: (SeenWindow & { endSeconds: number })[] = [];
  for (const block of blocks) stream.push(block, (w) => out.push({ ...digest(w.rows, w.frames), endSeconds: w.endSeconds }));
  return out;
}
