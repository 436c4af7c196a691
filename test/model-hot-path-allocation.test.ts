import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const url = (path: string) => new URL(path, import.meta.url).href;

/**
 * Bytes allocated per call of `predict` (and, as a control, of the allocating
 * `modelInput`) on the shipped model, in a child with a young generation large enough that
 * no scavenge runs while it counts: the used size of new space grows by exactly what was
 * allocated. Counts bytes, not time, so a busy machine cannot make it flaky.
 */
const child = `
import v8 from 'node:v8';
const { loadClassifier } = await import(${JSON.stringify(url('../src/model/load-classifier.js'))});
const { defaultModelDir } = await import(${JSON.stringify(url('../src/config/package-paths.js'))});
const { frameVectorSize } = await import(${JSON.stringify(url('../src/features/feature-config.js'))});
const { UrgencyStage } = await import(${JSON.stringify(url('../src/urgency/call-urgency.js'))});
const c = await loadClassifier(defaultModelDir());
const dim = frameVectorSize(c.manifest.features);
const frames = 188;
const rows = Float32Array.from({ length: frames * dim }, (_, i) => ((i * 7919) % 1000) / 250 - 2);
const out = new Float32Array(c.labels.length);
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_used_size;
const perCall = (fn, n) => { for (let i = 0; i < 200; i++) fn(); gc(); const before = newSpace(); for (let i = 0; i < n; i++) fn(); return (newSpace() - before) / n; };
const predict = perCall(() => c.predict(rows, frames, out), 500);
// Within a call, as a headset channel runs it: the context's baseline fills, then holds.
const call = c.newCallContext();
const inCall = perCall(() => c.predict(rows, frames, out, call), 500);
// The first windows of calls, while their baselines fill (contexts made beforehand: making one allocates).
const fresh = Array.from({ length: 1200 }, () => c.newCallContext());
let next = 0;
const filling = perCall(() => c.predict(rows, frames, out, fresh[next++]), 500);
// The urgency stage on the window's probabilities, as the call's head baseline fills and then holds.
const urgency = UrgencyStage.of(c).newCall();
// Several small functions that pass doubles between them: they allocate until the optimiser
// has inlined them, which on a busy machine takes thousands of windows (a daemon is past
// that within minutes of its first call). Warmed well past it, then counted.
for (let i = 0; i < 30000; i++) urgency.update(out);
const stage = perCall(() => urgency.update(out), 500);
const control = perCall(() => c.modelInput(rows, frames), 20);
process.stdout.write(JSON.stringify({ backend: c.backend, predict, inCall, filling, stage, control }));
`;

test('the shipped model classifies a window, and its urgency stage follows it, without allocating (window rows to probabilities to the call\'s level), alone or within a call', async () => {
  const { stdout } = await run(process.execPath, ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--input-type=module', '-e', child]);
  const { backend, predict, inCall, filling, stage, control } = JSON.parse(stdout) as { backend: string; predict: number; inCall: number; filling: number; stage: number; control: number };
  // The control proves the count sees allocation: modelInput makes a new array (its
  // wrapper is on the heap, a large backing store outside it), well over 100 bytes.
  assert.ok(control > 100, `${backend}: modelInput measured ${control} bytes per call; the count is not working`);
  assert.ok(predict < 64, `${backend}: predict allocates ${predict.toFixed(0)} bytes per window`);
  assert.ok(inCall < 64, `${backend}: predict within a call allocates ${inCall.toFixed(0)} bytes per window`);
  assert.ok(filling < 64, `${backend}: predict on a call's first window allocates ${filling.toFixed(0)} bytes`);
  assert.ok(stage < 64, `${backend}: the urgency stage allocates ${stage.toFixed(0)} bytes per window`);
});
