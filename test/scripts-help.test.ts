import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './helpers/audio-fixtures.js';

const run = promisify(execFile);
const schemasDir = fileURLToPath(new URL('../../schemas/', import.meta.url));

/**
 * What users run (scripts/) and the probes whose findings are in the model card
 * (experiments/): both are held to the same command-line rules, the benchmark (`npm run
 * bench`) included. Not an entry point of its own: sequence-probe.js, the sequence probes'
 * shared code. Every other file is found by listing the sources (not dist/, which keeps
 * what a moved file compiled to), so a new one is held to the same rules without being
 * named here; each runs as compiled, from dist/.
 */
const FOLDERS = ['scripts', 'experiments'] as const;
const NOT_COMMANDS = new Set(['experiments/sequence-probe.js']);
const listed = (folder: string) =>
  readdirSync(fileURLToPath(new URL(`../../${folder}/`, import.meta.url)))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.replace(/\.ts$/, '.js'));
const scripts = FOLDERS.flatMap((folder) => listed(folder).map((f) => `${folder}/${f}`)).filter((f) => !NOT_COMMANDS.has(f));

async function runScript(script: string, args: string[], timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  // From an empty folder: a script that did its work anyway would write nothing where it is expected.
  const options = { cwd: tempDir('ser-edge-script-help-'), timeout };
  return run(process.execPath, [fileURLToPath(new URL(`../${script}`, import.meta.url)), ...args], options).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

const schemaTimes = () => Object.fromEntries(readdirSync(schemasDir).map((f) => [f, statSync(join(schemasDir, f)).mtimeMs]));

test('the scripts and the experiments are found', () => {
  const known = ['bench.js', 'export-schemas.js', 'build-wasm.js', 'bundle.js', 'cross-validate.js', 'simulate-calls.js', 'fit-urgency.js', 'cross-fit-urgency.js'].map((f) => `scripts/${f}`);
  for (const probe of ['probe-pooled-mlp.js', 'probe-gru-baseline.js', 'probe-sequence-heads.js', 'probe-conv2d.js', 'urgency-sweep.js']) known.push(`experiments/${probe}`);
  for (const file of known) assert.ok(scripts.includes(file), `${file} in ${scripts.join(', ')}`);
});

test('scripts/ holds what users run: no probe is left there', () => {
  assert.deepEqual(listed('scripts').filter((f) => /probe/.test(f)), []);
});

for (const script of scripts) {
  test(`${script} --help prints its usage and exits 0 without doing its work`, async () => {
    const before = schemaTimes();
    const { code, stdout, stderr } = await runScript(script, ['--help']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^Usage: /);
    assert.equal(stderr, '', 'no progress or result lines: nothing ran');
    assert.deepEqual(schemaTimes(), before, 'schemas/ untouched');
  });

  test(`${script} with an unknown option is a usage error: it says what is wrong and exits 2`, async () => {
    const before = schemaTimes();
    const { code, stderr } = await runScript(script, ['--no-such-option']);
    assert.equal(code, 2, stderr);
    // Commander names a missing required option first, when there is one; either is a usage error.
    assert.match(stderr, /(unknown (option|argument) '?--no-such-option|required option .* not specified)/);
    assert.deepEqual(schemaTimes(), before, 'schemas/ untouched');
  });
}

test('bench.js --help lists its options and measures nothing: no figure starts, and it answers in seconds, not the minutes a run takes', async () => {
  // A figure that starts prints `{figure}: …` on stderr (without --json); the whole run takes 4–5 minutes, the quickest figure several seconds.
  const { code, stdout, stderr } = await runScript('scripts/bench.js', ['--help'], 20_000);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^Usage: bench \[options\]/);
  for (const option of ['--json', '--only <figures>', '-h, --help']) assert.ok(stdout.includes(option), `--help names ${option}:\n${stdout}`);
  assert.equal(stderr, '', 'no figure was measured');
});
