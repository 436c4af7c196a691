import { accessSync, constants, realpathSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join, relative } from 'node:path';
import { isBundle } from '../config/package-paths.js';

/** How this process was started, for telling the user how to start another command of it. */
export interface Invocation {
  /** process.argv[1]: the launcher (bin/ser-edge.js), the bundle (ser-edge.mjs), or the path a user typed. */
  script: string | undefined;
  cwd: string;
  /** The PATH to look `ser-edge` up in. */
  path: string | undefined;
  /** Running from the esbuild bundle (package-paths `isBundle`): an installed package or a copied dist/bundle. */
  bundle: boolean;
}

export const currentInvocation = (): Invocation => ({ script: process.argv[1], cwd: process.cwd(), path: process.env.PATH, bundle: isBundle });

/**
 * The command a user types to run another ser-edge command, as this one was run:
 * - `ser-edge` when the `ser-edge` on PATH is this very program (`npm install -g`, or
 *   install-gateway.sh's /usr/local/bin/ser-edge → /opt/ser-edge/bin/ser-edge, which runs
 *   /opt/ser-edge/current/ser-edge.mjs);
 * - `node <path>/ser-edge.mjs` for a bundle run from its folder (relative to the current
 *   directory when it is below it);
 * - `npx ser-edge` in a checkout (and for a package installed into a project).
 */
export function commandToRun(invocation: Invocation = currentInvocation()): string {
  const script = invocation.script === undefined ? undefined : realOrSelf(invocation.script);
  const onPath = findOnPath('ser-edge', invocation.path);
  if (script !== undefined && onPath !== undefined && runsScript(onPath, script)) return 'ser-edge';
  if (invocation.bundle && invocation.script !== undefined && /\.mjs$/.test(invocation.script)) {
    const shown = relative(invocation.cwd, invocation.script);
    const path = shown !== '' && !shown.startsWith('..') && !isAbsolute(shown) ? shown : invocation.script;
    return `node ${/^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`}`;
  }
  return 'npx ser-edge';
}

/** Whether the program `onPath` runs is `script`: the same file, or install-gateway.sh's wrapper beside the release it runs. */
function runsScript(onPath: string, script: string): boolean {
  const target = realOrSelf(onPath);
  if (target === script) return true;
  // /opt/ser-edge/bin/ser-edge is a shell wrapper that runs ../current/ser-edge.mjs.
  return basename(dirname(target)) === 'bin' && realOrSelf(join(dirname(target), '..', 'current', basename(script))) === script;
}

function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    // npx and npm scripts put node_modules/.bin on the PATH they run us with; the user's shell does not have it.
    if (dir === '' || /[\\/]node_modules[\\/]\.bin[\\/]?$/.test(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
