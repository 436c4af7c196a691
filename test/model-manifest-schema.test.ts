import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultModelDir, packageRoot } from '../src/config/package-paths.js';
import { MANIFEST_FILE, MANIFEST_SCHEMA_FILE, manifestJsonSchemaText } from '../src/model/bundle-manifest.js';
import { assertMatchesPublishedSchema } from './helpers/published-schemas.js';

test('the committed manifest JSON Schema is exactly what the zod schema generates', async () => {
  const committed = await readFile(join(packageRoot(), 'schemas', MANIFEST_SCHEMA_FILE), 'utf8');
  assert.equal(committed, manifestJsonSchemaText(), `schemas/${MANIFEST_SCHEMA_FILE} is stale: run node dist/scripts/export-schemas.js`);
});

test('the shipped default model manifest validates against the published manifest schema', async () => {
  const manifest = JSON.parse(await readFile(join(defaultModelDir(), MANIFEST_FILE), 'utf8')) as unknown;
  assertMatchesPublishedSchema(MANIFEST_SCHEMA_FILE, manifest);
});

test('the published manifest schema refuses an unknown key and a label outside the canonical set', async () => {
  const manifest = JSON.parse(await readFile(join(defaultModelDir(), MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
  assert.throws(() => assertMatchesPublishedSchema(MANIFEST_SCHEMA_FILE, { ...manifest, weights: 'x' }), /must NOT have additional properties/);
  assert.throws(() => assertMatchesPublishedSchema(MANIFEST_SCHEMA_FILE, { ...manifest, labels: ['angry', 'furious'] }), /must be equal to one of the allowed values/);
});
