import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The sources, from dist/test/ back to the checkout's src/. */
const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Folders of src/ that consume what audio and features produce. */
const LATER_STAGES = ['model', 'urgency', 'pipeline', 'mqtt', 'update', 'telemetry', 'training', 'commands', 'daemon'];

function sourcesUnder(folder: string): string[] {
  return readdirSync(join(srcDir, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(srcDir, folder, f));
}

/** The src/ folder each relative import of a file lands in. */
function importedFolders(file: string): { specifier: string; folder: string }[] {
  const text = readFileSync(file, 'utf8');
  const found: { specifier: string; folder: string }[] = [];
  for (const m of text.matchAll(/\bfrom\s+'(\.[^']+)'|\bimport\(\s*'(\.[^']+)'\s*\)/g)) {
    const specifier = (m[1] ?? m[2])!;
    const target = relative(srcDir, resolve(dirname(file), specifier));
    found.push({ specifier, folder: target.split(/[\\/]/)[0]! });
  }
  return found;
}

for (const stage of ['audio', 'features']) {
  test(`the ${stage} stage imports nothing from the stages downstream of it`, () => {
    const upward: string[] = [];
    for (const file of sourcesUnder(stage)) {
      for (const { specifier, folder } of importedFolders(file)) {
        if (LATER_STAGES.includes(folder)) upward.push(`${relative(srcDir, file)} imports ${specifier}`);
      }
    }
    assert.deepEqual(upward, [], 'code both need belongs below them (as src/wasm/ holds the kernel loader)');
  });
}

test('the check sees imports: the model stage imports the shared kernel loader', () => {
  const model = sourcesUnder('model').flatMap(importedFolders);
  assert.ok(model.some((i) => i.folder === 'wasm'), 'no model file imports src/wasm/');
});
