#!/usr/bin/env node
// Launcher. In a source checkout it runs the TypeScript build in dist/src (`npm run build`,
// which npm ci runs through `prepare`). An installed package (`npm pack` → `npm install -g`)
// carries no sources, only the self-contained bundle that prepack built: it runs that.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const checkout = existsSync(fileURLToPath(new URL('src/cli.ts', root)));
const program = new URL(checkout ? 'dist/src/cli.js' : 'dist/bundle/ser-edge.mjs', root);
if (!existsSync(fileURLToPath(program))) {
  process.stderr.write(
    checkout
      ? 'ser-edge: dist/ is missing; run `npm run build` (npm ci does this through `prepare`).\n'
      : `ser-edge: ${fileURLToPath(program)} is missing, so this installation is incomplete: reinstall from a package made by \`npm pack\` (its prepack step builds the bundle).\n`,
  );
  process.exit(1);
}
await import(program.href);
