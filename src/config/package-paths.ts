import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Set to `true` by scripts/bundle.ts (esbuild `define`) in dist/bundle/ser-edge.mjs; never
 * defined when the compiled sources in dist/ run, so `typeof` reads "undefined" there.
 */
declare const SER_EDGE_BUNDLE: boolean | undefined;

/** Whether this code runs from the esbuild bundle (`npm run bundle`) rather than from dist/src. */
export const isBundle: boolean = typeof SER_EDGE_BUNDLE !== 'undefined' && SER_EDGE_BUNDLE;

/**
 * The installed program's root: where package.json, models/, schemas/ and firmware-config/ are.
 *
 * - From the bundle, the folder of ser-edge.mjs itself, and nothing above it: a bundle copied
 *   anywhere must use its own files, never those of a checkout it happens to sit inside.
 * - From dist/src (a checkout, `npm ci`), the nearest folder up from this module that has
 *   package.json and models/.
 */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (isBundle) return here;
  let dir = here;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export const defaultModelDir = (): string => join(packageRoot(), 'models', 'default');
/**
 * Whether `dir` is the shipped models/default of this program (through a symlink too), the
 * only bundle that may load unsigned without the config saying so.
 */
export function isShippedModelDir(dir: string): boolean {
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return resolve(path);
    }
  };
  return real(dir) === real(defaultModelDir());
}
export const firmwareConfigDir = (): string => join(packageRoot(), 'firmware-config');
/** The JSON Schemas of the MQTT payloads, the config and the model manifest. */
export const schemasDir = (): string => join(packageRoot(), 'schemas');

/**
 * Where @tensorflow/tfjs-backend-wasm should read its .wasm binaries, as the prefix its
 * `setWasmPaths` takes (ending in a separator); undefined from dist/src, where the package
 * finds them beside its own JavaScript in node_modules. The bundle carries them in wasm/.
 */
export function tfjsWasmDir(): string | undefined {
  return isBundle ? join(packageRoot(), 'wasm') + sep : undefined;
}
