#!/usr/bin/env node
// Launcher: the TypeScript sources are compiled to dist/ by `npm run build` (run by `prepare` on npm ci).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('ser-edge: dist/ is missing; run `npm run build` (npm ci does this through `prepare`).\n');
  process.exit(1);
}
await import(cli.href);
