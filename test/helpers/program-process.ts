import { fileURLToPath } from 'node:url';
import { writeFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';

/** Programs still running: killed when the test process exits (one listener for all, however many a file starts). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A ser-edge process started from a bundle or an installed package, with its JSON log lines. */
export interface ProgramProcess {
  child: ChildProcess;
  logs(): Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * The environment of a machine that has Node.js and nothing else of this project: no
 * NODE_PATH or NODE_OPTIONS, no npm_* variables of the test runner, no SER_EDGE_*
 * overrides, a HOME of its own, and on PATH only this Node and the system's binaries.
 */
export function bareMachineEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, LANG: 'C.UTF-8', ...extra };
}

/** Starts `command args…` and collects its stdout and its stderr, parsing the JSON log lines. */
export function spawnProgram(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): ProgramProcess {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let partial = '';
  const parsed: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a plain line (a usage or start-up error is printed as text)
      }
    }
    for (const l of listeners) l();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  running.add(child);
  child.once('exit', () => running.delete(child));
  return {
    child,
    logs: () => parsed,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLog(match, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = parsed.find(match);
          if (found) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${err.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void exited.then(() =>
          setTimeout(() => {
            check();
            if (listeners.has(check)) {
              listeners.delete(check);
              clearTimeout(timer);
              reject(new Error(`the process exited before ${what}; stderr:\n${err.slice(-3000)}`));
            }
          }, 50),
        );
      });
    },
  };
}

export /** A module hook that fails the process as soon as anything but commander or a Node built-in is imported by name. */
async function onlyCommanderHook(dir: string): Promise<string> {
  const hooks = join(dir, 'only-commander.mjs');
  const resolve =
    'import { isBuiltin } from "node:module";\n' +
    'export async function resolve(s, c, next) {\n' +
    '  if (!isBuiltin(s) && !/^(\\.|\\/|file:)/.test(s) && s !== "commander") throw new Error("--help loaded " + s);\n' +
    '  return next(s, c);\n' +
    '}\n';
  await writeFile(hooks, `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(resolve)}));\n`);
  return hooks;
}

const serEdgeCli = fileURLToPath(new URL('../../../bin/ser-edge.js', import.meta.url));

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `ser-edge ARGS…` as a field tech types it, as a child process: its exit code and what it printed (killed after `timeoutMs`). */
export function runSerEdge(args: string[], timeoutMs = 60_000): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [serEdgeCli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ser-edge ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
