import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../features/feature-config.js';
import type { FeaturePreset } from './feature-preset-names.js';

export { FEATURE_PRESET_NAMES, type FeaturePreset } from './feature-preset-names.js';

/**
 * Named feature configurations a training run can pick. The bundle records the chosen one
 * and the daemon configures its extractor from it, so these only name starting points.
 */
export const FEATURE_PRESETS = {
  /** Everything the analyser computes (300 pooled dims): the interim KNN's input. */
  full: DEFAULT_FEATURE_CONFIG,
  /**
   * A compact frame for sequence models and small KNN reference sets: 20 MFCC + their
   * deltas and the five scalar voice-quality features (45 dims, within the GRU's 48). Steps are
   * 3-frame means (48 ms), so a 3 s window is 63 steps: within the GRU's inference budget.
   */
  compact: {
    ...DEFAULT_FEATURE_CONFIG,
    mfccCount: 20,
    features: ['mfcc', 'mfcc_delta', 'rms', 'zcr', 'centroid', 'rolloff', 'flatness'],
    sequenceStride: 3,
  },
  /** `compact` plus F0 and periodicity per frame (47 dims): prosody the spectra only hint at. */
  prosody: {
    ...DEFAULT_FEATURE_CONFIG,
    mfccCount: 20,
    features: ['mfcc', 'mfcc_delta', 'rms', 'zcr', 'centroid', 'rolloff', 'flatness', 'pitch'],
    sequenceStride: 3,
  },
  /**
   * Everything plus F0 and periodicity (152 dims, 1,065 functionals). For the pooled MLP it
   * measured worse than `prosody` (47.1% against 48.1% over 5 speaker folds, one network).
   */
  'full-pitch': { ...DEFAULT_FEATURE_CONFIG, features: [...DEFAULT_FEATURE_CONFIG.features, 'pitch'] },
} satisfies Record<FeaturePreset, FeatureConfig>;

