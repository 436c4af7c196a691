import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';
import { onlyCommanderHook } from './helpers/program-process.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));

// TensorFlow.js costs ~0.6 s and ~15 MB to load; the daemon and classify run the shipped
// model on their own kernels and must never pull it in (train and ensemble import it on demand).
test('classify with the shipped default model runs without loading TensorFlow.js', async () => {
  const dir = tempDir('ser-edge-startup-');
  const hooks = join(dir, 'no-tfjs.mjs');
  await writeFile(
    hooks,
    `import { register } from 'node:module';\n` +
      `register('data:text/javascript,' + encodeURIComponent('export async function resolve(s, c, next) { if (s.startsWith("@tensorflow/")) throw new Error("TensorFlow.js was loaded: " + s); return next(s, c); }'));\n`,
  );
  const wav = await writeWav(join(dir, 'angry.wav'), [synthesiseVoice(VOICE_STYLES.angry, 5, 16000, 3)], 16000);
  const { stdout } = await run(process.execPath, ['--import', hooks, cli, 'classify', '--json', wav]);
  const result = JSON.parse(stdout.trim().split('\n')[0]!) as { emotion: string | null; windows: unknown[] };
  assert.ok(result.windows.length > 0 && result.emotion, 'the shipped model classified the file');
  // The hook is live: a command that does need TensorFlow.js fails under it.
  await assert.rejects(run(process.execPath, ['--import', hooks, cli, 'ensemble', '--members', dir, dir, '--out', join(dir, 'x')]), /TensorFlow\.js was loaded/);
});


// The model, MQTT, the daemon and zod cost 0.3–0.5 s of CPU to load; a question about usage must not wait for them.
test('--help of the program and of each of its commands loads no package but commander', async () => {
  const hooks = await onlyCommanderHook(tempDir('ser-edge-help-'));
  const { stdout: help } = await run(process.execPath, ['--import', hooks, cli, '--help']);
  const commands = [...help.matchAll(/^ {2}([a-z][\w-]*)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.includes('classify') && commands.includes('run') && commands.includes('watch'), help);
  for (const command of commands) {
    const { stdout } = await run(process.execPath, ['--import', hooks, cli, command, '--help']);
    assert.match(stdout, new RegExp(`^Usage: ser-edge ${command} `), `${command} --help`);
  }
  // The hook is live: a command that runs loads what it needs, and fails under it.
  await assert.rejects(run(process.execPath, ['--import', hooks, cli, 'classify', join(tempDir('ser-edge-help-'), 'x.wav')]), /--help loaded/);
});

test('a usage error (unknown command or option, missing argument) exits 2 with commander\'s message, like an invalid config', async () => {
  for (const args of [['no-such-command'], ['classify'], ['run', '--no-such-option'], ['watch'], ['classify', '--window', 'soon', 'x.wav']]) {
    const result = await run(process.execPath, [cli, ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 2, `ser-edge ${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /^error: .*\n\(run with --help for usage\)\n$/, `ser-edge ${args.join(' ')}`);
  }
  const { stdout } = await run(process.execPath, [cli, '--version']);
  assert.match(stdout, /^\d+\.\d+\.\d+/);
});
