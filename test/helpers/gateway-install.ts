import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir } from './audio-fixtures.js';

/** The checkout these tests run from (they run as dist/test/…). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const installerSource = join(repoRoot, 'scripts', 'install-gateway.sh');
export const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const realBundle = join(repoRoot, 'dist', 'bundle');

/**
 * A fresh copy of the bundle the installer installs, which a test may change (a new
 * release) without touching anyone else's. The real one when `npm run bundle` has made
 * dist/bundle/; otherwise a stand-in with the same layout, whose ser-edge.mjs only
 * imports this checkout's dist/src/cli.js. The stand-in is enough for what the installer
 * sees (files, modes, `--version`, a daemon that runs); the bundle itself, copied alone to
 * a machine with only Node.js, is tested by test/bundle.test.ts.
 */
export function bundleCopy(): string {
  const dir = join(tempDir('ser-edge-bundle-'), 'bundle');
  if (existsSync(join(realBundle, 'ser-edge.mjs'))) {
    if (!existsSync(join(realBundle, 'install-gateway.sh'))) {
      throw new Error(`${realBundle} has no install-gateway.sh: npm run bundle must copy scripts/install-gateway.sh into the bundle (docs/installing.md runs it from there)`);
    }
    cpSync(realBundle, dir, { recursive: true });
    return dir;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'ser-edge.mjs'),
    `// Stand-in for the esbuild bundle (see test/helpers/gateway-install.ts).\nawait import(${JSON.stringify(pathToFileURL(join(repoRoot, 'dist', 'src', 'cli.js')).href)});\n`,
  );
  cpSync(join(repoRoot, 'models', 'default'), join(dir, 'models', 'default'), { recursive: true });
  cpSync(join(repoRoot, 'schemas'), join(dir, 'schemas'), { recursive: true });
  cpSync(join(repoRoot, 'firmware-config'), join(dir, 'firmware-config'), { recursive: true });
  cpSync(installerSource, join(dir, 'install-gateway.sh'));
  chmodSync(join(dir, 'install-gateway.sh'), 0o755);
  return dir;
}

export interface InstallerRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The `would run: …` lines, without the prefix: what a real install would have done to the host. */
  wouldRun: string[];
}

/** Runs an installer script (the bundle's copy unless `script` says otherwise) with bash. */
export function runInstaller(args: string[], options: { script?: string; bundle?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): InstallerRun {
  const script = options.script ?? join(options.bundle ?? '', 'install-gateway.sh');
  const result = spawnSync('bash', [script, ...args], {
    cwd: options.cwd,
    encoding: 'utf8',
    // The Node.js running the tests is the one the installer finds first.
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...options.env },
    timeout: 120_000,
  });
  if (result.error) throw result.error;
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    wouldRun: result.stdout.split('\n').filter((l) => l.startsWith('would run: ')).map((l) => l.slice('would run: '.length)),
  };
}

export function assertInstalled(run: InstallerRun): void {
  if (run.status !== 0) throw new Error(`the installer exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
}

export type TreeEntry = { type: 'dir'; mode: number } | { type: 'file'; mode: number } | { type: 'link'; target: string };

/** Every path under `root` (relative, '/'-separated), with its type and permission bits or link target. */
export function listTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const stat = lstatSync(join(root, path));
      if (stat.isSymbolicLink()) out.set(path, { type: 'link', target: readlinkSync(join(root, path)) });
      else if (stat.isDirectory()) {
        out.set(path, { type: 'dir', mode: stat.mode & 0o7777 });
        walk(path);
      } else out.set(path, { type: 'file', mode: stat.mode & 0o7777 });
    }
  };
  walk('');
  return out;
}

/** The credential files the central team hands out, as a technician copies them to the gateway. */
export function writeCredentialFiles(dir: string): Record<'ca' | 'cert' | 'key' | 'username' | 'password', string> {
  const files = {
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'gateway.pem'),
    key: join(dir, 'gateway.key'),
    username: join(dir, 'mqtt-username'),
    password: join(dir, 'mqtt-password'),
  };
  writeFileSync(files.ca, '-----BEGIN CERTIFICATE-----\nCA of the call centre (test)\n-----END CERTIFICATE-----\n');
  writeFileSync(files.cert, '-----BEGIN CERTIFICATE-----\ndesk-row-a (test)\n-----END CERTIFICATE-----\n');
  writeFileSync(files.key, '-----BEGIN PRIVATE KEY-----\nnot a real key\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
  writeFileSync(files.username, 'desk-row-a\n');
  writeFileSync(files.password, 'not-a-real-password\n', { mode: 0o600 });
  return files;
}

/** systemd-analyze, systemd-sysusers: Debian's systemd package (.ci/run installs it). */
export const SYSTEMD_TOOLS_MISSING: string | false =
  spawnSync('systemd-analyze', ['--version']).status === 0 && spawnSync('systemd-sysusers', ['--help']).status === 0
    ? false
    : 'systemd-analyze or systemd-sysusers is missing: apt-get install -y systemd (CI does) to check the unit and the account';
