import { SingleBar, Presets } from 'cli-progress';
import { DEFAULT_WINDOWING, type WindowingConfig } from '../audio/speech-windower.js';
import type { LabelledClip } from '../datasets/labelled-clip.js';
import { frameVectorSize, type FeatureConfig } from '../features/feature-config.js';
import { loadMono, streamWindows } from '../pipeline/file-features.js';
import { drawAugmentation, type Augmentation, type AugmentationName } from './augment.js';
import { FeatureCache } from './feature-cache.js';

/** The channel a copy was heard over: `clean`, or its augmentation's kind (`noise`, `telephone`…), without the drawn parameters. */
export function channelOf(item: ClipWindows): string {
  return (item.variant ?? 'clean').split(':')[0]!;
}

/** The speech windows of one clip (or of one augmented copy of it), each a copy of its frame vectors (frames × dim). */
export interface ClipWindows {
  clip: LabelledClip;
  windows: Float32Array[];
  dim: number;
  /** `clean`, or the augmentation's key: copies of a clip always stay on their clip's side of a split. */
  variant?: string;
}

export interface ExtractOptions {
  features: FeatureConfig;
  windowing?: WindowingConfig;
  /** Augmented copies to make of every clip, besides the clean one. */
  augmentations?: readonly AugmentationName[];
  /** Folder of the on-disk feature cache; no caching when absent. */
  cacheDir?: string;
  progress?: boolean;
  /** Called for a clip that cannot be read; it is then left out of the set. */
  onError?: (clip: LabelledClip, err: Error) => void;
}

/**
 * Runs every clip (and its augmented copies) through the inference path: decode →
 * resample → VAD → frames → windows, with cached results reused.
 */
export async function extractClipWindows(clips: LabelledClip[], options: ExtractOptions): Promise<ClipWindows[]> {
  const windowing = options.windowing ?? DEFAULT_WINDOWING;
  const dim = frameVectorSize(options.features);
  const cache = options.cacheDir ? new FeatureCache(options.cacheDir, options.features, windowing, dim) : null;
  const bar = options.progress ? new SingleBar({ format: 'features {bar} {value}/{total} clips | {duration_formatted} elapsed | ETA {eta_formatted}', stream: process.stderr, etaBuffer: 200 }, Presets.shades_classic) : null;
  bar?.start(clips.length, 0);
  const out: ClipWindows[] = [];
  for (const clip of clips) {
    try {
      const variants: { name: string; augmentation: Augmentation | null }[] = [{ name: 'clean', augmentation: null }];
      for (const a of options.augmentations ?? []) {
        const augmentation = drawAugmentation(a, clip.path);
        variants.push({ name: augmentation.key, augmentation });
      }
      let audio: Float32Array | null = null;
      for (const v of variants) {
        const key = cache ? await cache.keyFor(clip.path, v.name) : '';
        let windows = cache ? await cache.get(key) : null;
        if (!windows) {
          audio ??= (await loadMono(clip.path, options.features.sampleRate)).samples;
          const samples = v.augmentation ? v.augmentation.apply(audio, options.features.sampleRate) : audio;
          const found: Float32Array[] = [];
          streamWindows(samples, { features: options.features, windowing }, (w) => found.push(w.rows.slice(0, w.frames * w.dim)));
          windows = found;
          if (cache) await cache.put(key, windows);
        }
        if (windows.length > 0) out.push({ clip, windows, dim, variant: v.name });
      }
    } catch (err) {
      options.onError?.(clip, err as Error);
    }
    bar?.increment();
  }
  bar?.stop();
  return out;
}
