import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultModelDir } from '../src/config/package-paths.js';
import { runSelfTest } from '../src/model/classifier.js';
import { loadClassifier } from '../src/model/load-classifier.js';

// The README's main command, classify and the bench all run on this bundle: a fresh
// clone must be able to load it, not just parse its manifest.
test('the shipped default model loads from a fresh checkout and passes its self-test on its int8 kernel', async () => {
  const classifier = await loadClassifier(defaultModelDir());
  try {
    const result = runSelfTest(classifier);
    assert.ok(result.passed && result.vectors >= 1, `self-test: ${JSON.stringify(result)}`);
    assert.match(classifier.backend, /^(gru-fused|knn-int8|mlp-int8|ensemble\()/);
    assert.ok(classifier.labels.includes('angry') && classifier.labels.includes('sad'), 'the urgent emotions are among its labels');
  } finally {
    classifier.dispose();
  }
});

test('the shipped default model fits the 1 MB bundle budget and its card has no unfilled figures', async () => {
  const dir = defaultModelDir();
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { files: Record<string, { bytes: number }> };
  const bytes = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
  assert.ok(bytes <= 1_000_000, `${bytes} bytes of weights`);
  const card = await readFile(join(dir, 'MODEL_CARD.md'), 'utf8');
  assert.doesNotMatch(card, /\b[A-Z]+_[A-Z_]*(ROWS|SUMMARY|ROW|ACC)\b/, 'a placeholder is left in MODEL_CARD.md');
});
