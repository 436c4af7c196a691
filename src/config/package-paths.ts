import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's root (where package.json, models/ and firmware-config/ are),
 * found by walking up from this module: the same answer from dist/ and from a bundle.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'models'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export const defaultModelDir = (): string => join(packageRoot(), 'models', 'default');
export const firmwareConfigDir = (): string => join(packageRoot(), 'firmware-config');
