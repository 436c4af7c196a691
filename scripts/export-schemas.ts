/**
 * Regenerates `schemas/*.schema.json` from the zod schemas (MQTT payloads, the daemon config,
 * the model bundle manifest),
 * so central servers in any language validate against exactly what the gateway checks.
 * Run after changing a schema: `npm run build && node dist/scripts/export-schemas.js`
 * (a test fails while the committed files differ from what this writes).
 */
import { readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { EXPORTED_SCHEMAS, jsonSchemaText } from '../src/mqtt/payload-schemas.js';
import { packageRoot } from '../src/config/package-paths.js';
import { CONFIG_SCHEMA_FILE, configJsonSchemaText } from '../src/config/daemon-config.js';
import { MANIFEST_SCHEMA_FILE, manifestJsonSchemaText } from '../src/model/bundle-manifest.js';

async function exportSchemas(): Promise<void> {
  const dir = join(packageRoot(), 'schemas');
  await mkdir(dir, { recursive: true });
  for (const file of await readdir(dir)) {
    // Files of schemas that no longer exist must go, or consumers would keep validating against them.
    if (file.endsWith('.schema.json') && !(file in EXPORTED_SCHEMAS) && file !== CONFIG_SCHEMA_FILE && file !== MANIFEST_SCHEMA_FILE) await rm(join(dir, file));
  }
  for (const file of Object.keys(EXPORTED_SCHEMAS)) {
    await writeFile(join(dir, file), jsonSchemaText(file));
    console.log(`wrote schemas/${file}`);
  }
  // The daemon's config file (firmware-config/ profiles and site files), for editors and provisioning tools.
  await writeFile(join(dir, CONFIG_SCHEMA_FILE), configJsonSchemaText());
  console.log(`wrote schemas/${CONFIG_SCHEMA_FILE}`);
  // A model bundle's manifest.json, for tools that build or inspect bundles off the gateway.
  await writeFile(join(dir, MANIFEST_SCHEMA_FILE), manifestJsonSchemaText());
  console.log(`wrote schemas/${MANIFEST_SCHEMA_FILE}`);
}

await exitTwoOnUsageError(new Command())
  .name('export-schemas')
  .description('Regenerate schemas/*.schema.json (MQTT payloads, the daemon config, the model manifest) from the zod schemas; files of schemas that no longer exist are removed')
  .action(exportSchemas)
  .parseAsync();
