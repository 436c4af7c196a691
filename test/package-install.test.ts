import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, realpath, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { packageRoot } from '../src/config/package-paths.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';
import { bareMachineEnv } from './helpers/program-process.js';

const run = promisify(execFile);
const root = packageRoot();
const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
const dir = tempDir('ser-edge-package-');
/** npm with none of the test runner's npm_* settings, and no look-up of npm's own latest version. */
const npmEnv = bareMachineEnv(join(dir, 'home'), { npm_config_update_notifier: 'false' });

/** Scripts that npm would run when the package is installed (prepare counts for a tarball). */
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'];

let tarball = '';
let packedFiles: string[] = [];
let packedManifest: Record<string, unknown> = {};

before(async () => {
  // `npm pack` runs prepack (tsc, then the bundle) in a copy of the checkout, so the build
  // never rewrites the dist/ that the other test files are running from.
  const checkout = join(dir, 'checkout');
  for (const entry of ['package.json', 'package-lock.json', 'README.md', 'tsconfig.json', 'bin', 'src', 'scripts', 'test', 'models', 'schemas', 'firmware-config']) {
    await cp(join(root, entry), join(checkout, entry), { recursive: true });
  }
  await symlink(await realpath(join(root, 'node_modules')), join(checkout, 'node_modules'), 'dir');
  await mkdir(join(dir, 'packed'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', join(dir, 'packed')], { cwd: checkout, env: npmEnv, maxBuffer: 16 * 1024 * 1024 });
  // prepack's own output precedes npm's JSON report on stdout.
  const report = JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1)) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, 'packed', report[0]!.filename);
  packedFiles = report[0]!.files.map((f) => f.path).sort();
  const { stdout: packedJson } = await run('tar', ['-xOzf', tarball, 'package/package.json']);
  packedManifest = JSON.parse(packedJson) as Record<string, unknown>;
});

test('npm pack ships the launcher and the bundle, and no sources', () => {
  for (const file of ['package.json', 'README.md', 'bin/ser-edge.js', 'dist/bundle/ser-edge.mjs', 'dist/bundle/package.json', 'dist/bundle/models/default/manifest.json', 'dist/bundle/wasm/tfjs-backend-wasm-simd.wasm', 'dist/bundle/firmware-config/ser-edge.service', 'dist/bundle/schemas/urgency-event.schema.json']) {
    assert.ok(packedFiles.includes(file), `${file} is in the package`);
  }
  assert.deepEqual(packedFiles.filter((f) => /^(src|scripts|test|dist\/(src|test|scripts))\//.test(f)), [], 'no sources or compiled sources');
});

test('the packed package needs nothing from the registry and runs no script when installed', () => {
  for (const field of ['dependencies', 'optionalDependencies', 'bundleDependencies', 'bundledDependencies']) {
    assert.equal(packedManifest[field], undefined, `${field}: the bundle carries every runtime package, so package.json lists them as devDependencies`);
  }
  const scripts = (packedManifest['scripts'] ?? {}) as Record<string, string>;
  assert.deepEqual(INSTALL_SCRIPTS.filter((s) => s in scripts), [], 'npm counts these as install scripts (and --strict-allow-scripts refuses them)');
});

test('npm install -g of the tarball into an empty prefix, offline and with an empty cache, puts a working ser-edge on the PATH', async () => {
  const prefix = join(dir, 'prefix');
  await mkdir(prefix);
  await run('npm', ['install', '--global', tarball, '--prefix', prefix, '--offline', '--cache', join(dir, 'empty-npm-cache'), '--no-audit', '--no-fund'], { cwd: dir, env: npmEnv });
  assert.deepEqual(await readdir(join(prefix, 'lib', 'node_modules')), [manifest.name], 'only ser-edge itself was installed');

  const home = join(dir, 'operator');
  await mkdir(home);
  const env = bareMachineEnv(home, { PATH: `${join(prefix, 'bin')}:${bareMachineEnv(home).PATH}` });
  const { stdout: version } = await run('ser-edge', ['--version'], { cwd: home, env });
  assert.equal(version.trim(), manifest.version);
  const wav = await writeWav(join(home, 'angry.wav'), [synthesiseVoice(VOICE_STYLES.angry, 5, 16000, 3)], 16000);
  const { stdout } = await run('ser-edge', ['classify', '--json', wav], { cwd: home, env });
  const result = JSON.parse(stdout) as { file: string; emotion: string | null; windows: unknown[] };
  assert.equal(result.file, wav);
  assert.ok(result.windows.length > 0 && result.emotion !== null, 'the shipped model classified the windows');
});
