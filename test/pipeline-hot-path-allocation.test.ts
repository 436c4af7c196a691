import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const url = (path: string) => new URL(path, import.meta.url).href;

/**
 * Bytes allocated per frame by a channel's segmentation and features (SpeechFeatureStream
 * with the shipped model's features, 20 ms blocks), counted as in the model's allocation
 * test: in a child whose young generation is large enough that no scavenge runs while it
 * counts. Noise exercises the detector's own work (pitch of frames above the floor, the
 * frames it keeps in case a voice follows); speech adds the windows, which allocate their
 * verdict objects (about a kilobyte per window, one window per second).
 */
const child = `
import v8 from 'node:v8';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
const { SpeechFeatureStream } = await import(${JSON.stringify(url('../src/pipeline/speech-feature-stream.js'))});
const { synthesiseVoice, VOICE_STYLES } = await import(${JSON.stringify(url('../src/audio/synthetic-voice.js'))});
const { defaultModelDir } = await import(${JSON.stringify(url('../src/config/package-paths.js'))});
const { colouredNoise, mix } = await import(${JSON.stringify(url('./helpers/audio-fixtures.js'))});
const features = JSON.parse(readFileSync(join(defaultModelDir(), 'manifest.json'), 'utf8')).features;
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_used_size;
const rate = features.sampleRate;
const signals = {
  brown: colouredNoise('brown', 20, rate, -30, 1),
  pink: colouredNoise('pink', 20, rate, -30, 2),
  speech: mix(synthesiseVoice(VOICE_STYLES.calm, 20, rate, 3), colouredNoise('pink', 20, rate, -45, 4)),
};
const perFrame = (signal, fresh) => {
  const blocks = [];
  for (let at = 0; at < signal.length; at += 320) blocks.push(signal.subarray(at, at + 320));
  let windows = 0;
  const sink = () => { windows++; };
  // Warm up (the JIT allocates while it compiles), then count over more passes of the same
  // stream: a running channel, not one being set up.
  // The least of three passes: a pass in which V8 recompiles a function after a rare branch
  // allocates while that code is not yet optimised, which a channel does not do for long.
  const stream = new SpeechFeatureStream({ features });
  for (let r = 0; r < 4; r++) for (let i = 0; i < blocks.length; i++) stream.push(blocks[i], sink);
  let least = Infinity;
  for (let pass = 0; pass < 3; pass++) {
    const frames = stream.frames;
    gc();
    const before = newSpace();
    // The control copies every block, as a careless source would: that must show.
    for (let i = 0; i < blocks.length; i++) stream.push(fresh ? blocks[i].slice() : blocks[i], sink);
    least = Math.min(least, (newSpace() - before) / (stream.frames - frames));
  }
  return least;
};
const out = {};
for (const [name, signal] of Object.entries(signals)) out[name] = perFrame(signal, false);
out.control = perFrame(signals.pink, true);
process.stdout.write(JSON.stringify(out));
`;

test('a channel segments and analyses audio without allocating per frame, in noise and in speech', async () => {
  // Optimised code is compiled on a background thread, which a busy machine delays: the
  // count would then see the unoptimised code's boxed numbers. Compiling in line keeps it exact.
  const flags = ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--no-concurrent-recompilation'];
  const { stdout } = await run(process.execPath, [...flags, '--input-type=module', '-e', child]);
  const bytes = JSON.parse(stdout) as { brown: number; pink: number; speech: number; control: number };
  assert.ok(bytes.control > 100, `copying each block measured ${bytes.control.toFixed(1)} bytes per frame; the count is not working`);
  assert.ok(bytes.brown < 8, `brown noise: ${bytes.brown.toFixed(1)} bytes per frame`);
  assert.ok(bytes.pink < 8, `pink noise: ${bytes.pink.toFixed(1)} bytes per frame`);
  assert.ok(bytes.speech < 48, `speech: ${bytes.speech.toFixed(1)} bytes per frame (windows included)`);
});
