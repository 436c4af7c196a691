/**
 * Assembles every hand-written kernel `src/{model,features}/kernels/*.wat` into the TypeScript
 * module next to it (`<name>.wasm.ts`, the bytes as base64), which is what ships: the
 * runtime needs no assembler, and a test re-assembles each .wat to prove the committed
 * bytes are its source's.
 *
 *   npm run build && node dist/scripts/build-wasm.js
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { packageRoot } from '../src/config/package-paths.js';

/** Kernels live with the stage that runs them (`src/<stage>/kernels/`); paths below are relative to src/. */
export const kernelSourceDir = (): string => join(packageRoot(), 'src');
const KERNEL_FOLDERS = ['model/kernels', 'features/kernels'];

/** The .wat kernels, as paths relative to src/ (e.g. `model/kernels/gru.wat`). */
export async function kernelSources(): Promise<string[]> {
  const found: string[] = [];
  for (const folder of KERNEL_FOLDERS) {
    for (const file of await readdir(join(kernelSourceDir(), folder))) if (file.endsWith('.wat')) found.push(`${folder}/${file}`);
  }
  return found.sort();
}

/** Assembles WAT text with the SIMD feature on; throws wabt's message (file:line) on an error. */
export async function assembleWat(fileName: string, text: string): Promise<Uint8Array> {
  const wabt = (await import('wabt')).default;
  const module = (await wabt()).parseWat(fileName, text, { simd: true });
  try {
    module.validate();
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}

export function generatedModulePath(watFile: string): string {
  return join(kernelSourceDir(), watFile.replace(/\.wat$/, '.wasm.ts'));
}

export function generatedModuleText(watFile: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines = b64.match(/.{1,100}/g) ?? [''];
  return (
    `// Generated from ${basename(watFile)} by scripts/build-wasm.ts: edit the .wat, then run\n` +
    `// \`npm run build && node dist/scripts/build-wasm.js\`.\n` +
    `export const wasmBase64 =\n` +
    lines.map((l) => `  '${l}'`).join(' +\n') +
    ';\n'
  );
}

async function main(): Promise<void> {
  for (const wat of await kernelSources()) {
    const bytes = await assembleWat(wat, await readFile(join(kernelSourceDir(), wat), 'utf8'));
    const target = generatedModulePath(wat);
    await writeFile(target, generatedModuleText(wat, bytes));
    process.stderr.write(`${wat} → ${target} (${bytes.length} bytes)\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await exitTwoOnUsageError(new Command())
    .name('build-wasm')
    .description('Assemble every src/{model,features}/kernels/*.wat into the <name>.wasm.ts module beside it (the bytes as base64), which is what ships')
    .action(main)
    .parseAsync();
}
