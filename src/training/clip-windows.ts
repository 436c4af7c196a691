import { SingleBar, Presets } from 'cli-progress';
import type { WindowingConfig } from '../audio/speech-windower.js';
import type { LabelledClip } from '../datasets/labelled-clip.js';
import type { FeatureConfig } from '../features/feature-config.js';
import { loadMono, streamWindows } from '../pipeline/file-features.js';

/** The speech windows of one clip, each a copy of its frame vectors (frames × dim). */
export interface ClipWindows {
  clip: LabelledClip;
  windows: Float32Array[];
  dim: number;
}

export interface ExtractOptions {
  features: FeatureConfig;
  windowing?: WindowingConfig;
  /** Transforms a clip's audio before analysis (augmentation); identity when absent. */
  transform?: (samples: Float32Array, clip: LabelledClip) => Float32Array;
  progress?: boolean;
  /** Called for a clip that cannot be read; it is then left out of the set. */
  onError?: (clip: LabelledClip, err: Error) => void;
}

/** Runs every clip through the inference path (decode → resample → VAD → frames → windows). */
export async function extractClipWindows(clips: LabelledClip[], options: ExtractOptions): Promise<ClipWindows[]> {
  const bar = options.progress && process.stderr.isTTY !== undefined ? new SingleBar({ format: 'features {bar} {value}/{total} clips | ETA {eta_formatted}', stream: process.stderr }, Presets.shades_classic) : null;
  bar?.start(clips.length, 0);
  const out: ClipWindows[] = [];
  for (const clip of clips) {
    try {
      const audio = await loadMono(clip.path, options.features.sampleRate);
      const samples = options.transform ? options.transform(audio.samples, clip) : audio.samples;
      const windows: Float32Array[] = [];
      let dim = 0;
      streamWindows(samples, { features: options.features, windowing: options.windowing }, (w) => {
        windows.push(w.rows.slice());
        dim = w.dim;
      });
      if (windows.length > 0) out.push({ clip, windows, dim });
    } catch (err) {
      options.onError?.(clip, err as Error);
    }
    bar?.increment();
  }
  bar?.stop();
  return out;
}
