import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

test('the helpers the benchmark borrows from the tests print nothing outside the test runner, so `npm run bench -- --json` stays one JSON object', () => {
  const helper = fileURLToPath(new URL('./helpers/mosquitto.js', import.meta.url));
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(helper)}); console.log('{}');`], { env, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, '{}\n');
});
