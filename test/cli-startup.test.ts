import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';

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
