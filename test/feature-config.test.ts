import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_FEATURE_CONFIG, frameVectorSize, parseFeatureConfig } from '../src/features/feature-config.js';

test('the default feature config describes a 150-wide frame vector', () => {
  assert.equal(frameVectorSize(DEFAULT_FEATURE_CONFIG), 40 + 40 + 40 + 12 + 7 + 6 + 5);
});

test('a feature config with a non power-of-two FFT is refused, naming the key', () => {
  assert.throws(() => parseFeatureConfig({ ...DEFAULT_FEATURE_CONFIG, fftSize: 500 }, 'manifest.json'), /manifest\.json: feature config fftSize must be a power of two/);
});
