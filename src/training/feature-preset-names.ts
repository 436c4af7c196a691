/**
 * The names of the feature presets (`FEATURE_PRESETS` in feature-presets.ts), apart from
 * the presets themselves: the command line offers them as choices, and its `--help` must
 * not load the feature code (and zod) behind them.
 */
export const FEATURE_PRESET_NAMES = ['full', 'compact', 'prosody', 'full-pitch'] as const;
export type FeaturePreset = (typeof FEATURE_PRESET_NAMES)[number];
