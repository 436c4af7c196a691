import { decodeAudioFile } from '../audio/decode-audio-file.js';
import { resample } from '../audio/resampler.js';
import { toMono } from '../audio/to-mono.js';
import { DEFAULT_VAD_CONFIG, type VadConfig } from '../audio/voice-activity-detector.js';
import type { WindowingConfig } from '../audio/speech-windower.js';
import type { FeatureConfig } from '../features/feature-config.js';
import { SpeechFeatureStream, type SpeechWindow } from './speech-feature-stream.js';

/**
 * A permissive detector for the second pass over a file in which the normal one found no
 * utterance (a quiet or very short clip, or one that starts mid-word, so its first frame
 * misleads the floor): the floor stays at the first frame and anything voiced above it
 * and -70 dBFS is speech. A voice is still required, so a file of noise yields nothing.
 */
const QUIET_CLIP_VAD: VadConfig = {
  ...DEFAULT_VAD_CONFIG,
  onsetDb: 0,
  offsetDb: 0,
  absoluteFloorDb: -70,
  onsetFrames: 1,
  hangoverFrames: 0,
  floorRise: 0,
  floorFall: 0,
};

export interface FileAudio {
  samples: Float32Array;
  durationSeconds: number;
}

/** Decodes a file to mono at the feature rate. */
export async function loadMono(path: string, sampleRate: number): Promise<FileAudio> {
  const decoded = await decodeAudioFile(path);
  const mono = toMono(decoded.channels);
  const samples = decoded.sampleRate === sampleRate ? mono : resample(mono, decoded.sampleRate, sampleRate);
  return { samples, durationSeconds: samples.length / sampleRate };
}

/** Blocks fed to the stream, as a live source would deliver them (100 ms). */
const BLOCK_SECONDS = 0.1;

/**
 * Runs a whole signal through the same streaming segmentation and features as a live
 * channel, and calls `onWindow` for each window (whose rows are reused afterwards).
 */
export function streamWindows(
  samples: Float32Array,
  options: { features: FeatureConfig; windowing?: WindowingConfig; vad?: VadConfig },
  onWindow: (w: SpeechWindow) => void,
): number {
  const run = (vad: VadConfig | undefined) => {
    const stream = new SpeechFeatureStream({ ...options, vad });
    let count = 0;
    const sink = (w: SpeechWindow) => {
      count++;
      onWindow(w);
    };
    const block = Math.round(BLOCK_SECONDS * options.features.sampleRate);
    for (let i = 0; i < samples.length; i += block) stream.push(samples.subarray(i, i + block), sink);
    stream.end(sink);
    return count;
  };
  const found = run(options.vad);
  return found > 0 ? found : run(QUIET_CLIP_VAD);
}
