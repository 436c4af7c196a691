import { before, test } from 'node:test';
import { UrgencyStage } from '../src/urgency/call-urgency.js';
import assert from 'node:assert/strict';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { defaultModelDir } from '../src/config/package-paths.js';
import { DaemonBus, type CallBoundaryEvent, type UrgencyChangeEvent } from '../src/daemon/daemon-events.js';
import { HeadsetChannel } from '../src/daemon/headset-channel.js';
import { ModelSlot, type LiveModel } from '../src/daemon/model-slot.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../src/features/feature-config.js';
import type { BundleManifest } from '../src/model/bundle-manifest.js';
import { SpeechFeatureStream } from '../src/pipeline/speech-feature-stream.js';
import { PipelineMetrics } from '../src/telemetry/pipeline-metrics.js';
import type { TrackerConfig } from '../src/urgency/urgency-tracker.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { BLOCK, countedModel, RATE, referenceWindows, voiceBlocks, writeKnnBundles, type Rewrite, type SeenWindow } from './helpers/live-models.js';

/**
 * The live side of a model switch (ModelSlot and HeadsetChannel): real classifiers from
 * bundles written here, wrapped only to count what they are asked, on synthetic speech
 * cut into 100 ms capture blocks as a live source delivers it.
 */

const dir = tempDir('ser-edge-model-switch-');
let bundles: { synthetic: string; contrary: string };

before(async () => {
  bundles = await writeKnnBundles(dir);
});

function channelOn(slot: ModelSlot) {
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  const urgency: UrgencyChangeEvent[] = [];
  const calls: CallBoundaryEvent[] = [];
  bus.on('urgency', (e) => urgency.push(e));
  bus.on('call', (e) => calls.push(e));
  const headset = new HeadsetChannel({ id: 'desk-1', role: 'customer', model: slot, windowing: DEFAULT_WINDOWING, callSilenceSeconds: 30, bus, metrics });
  return { headset, metrics, urgency, calls };
}

/** Speech frames the VAD finds in each block (a stream of its own), to tell where utterances run. */
function speechPerBlock(features: FeatureConfig, blocks: Float32Array[]): number[] {
  const stream = new SpeechFeatureStream({ features });
  return blocks.map((block) => {
    const before = stream.speechFrames;
    stream.push(block, () => {});
    return stream.speechFrames - before;
  });
}

const sameWindow = ({ frames, dim, checksum }: SeenWindow) => ({ frames, dim, checksum });

test('switching models between capture blocks, many times and mid-utterance, classifies every window exactly once, by the model current at that moment', async () => {
  const judged: (SeenWindow & { tag: string })[] = [];
  const a = await countedModel(bundles.synthetic, 'synthetic', judged);
  const b = await countedModel(bundles.contrary, 'contrary', judged);
  const slot = new ModelSlot({ initial: a });
  const c = channelOn(slot);
  const blocks = voiceBlocks([['calm', 15], ['angry', 15], ['calm', 10], ['sad', 10]]);
  const expected = referenceWindows(DEFAULT_FEATURE_CONFIG, blocks);
  const speech = speechPerBlock(DEFAULT_FEATURE_CONFIG, blocks);
  const random = seededRandom(7);
  let switches = 0;
  let midUtterance = 0;
  let rightBeforeAWindow = 0;
  for (const [i, block] of blocks.entries()) {
    let switched = false;
    if (i > 0 && random() < 0.3) {
      const next = slot.current === a ? b : a;
      const old = slot.activate(next);
      assert.equal(old, next === a ? b : a, 'activate hands back the model it replaced');
      assert.equal(slot.current, next, 'the new model is current at once');
      switched = true;
      switches++;
      if (speech[i - 1]! > 0 && speech[i]! > 0) midUtterance++;
    }
    const from = judged.length;
    const current = slot.current === a ? a.classifier.tag : b.classifier.tag;
    c.headset.push(block);
    const here = judged.slice(from);
    if (switched && here.length > 0) rightBeforeAWindow++;
    for (const w of here) assert.equal(w.tag, current, `block ${i}: a window was judged by ${w.tag} while ${current} was current`);
  }
  assert.ok(expected.length >= 30, `the call has ${expected.length} windows`);
  assert.deepEqual(judged.map(sameWindow), expected.map(sameWindow), 'the windows the models judged are the stream\'s windows, each once, in order');
  assert.equal(c.metrics.windows, expected.length);
  assert.equal(a.classifier.predicts + b.classifier.predicts, expected.length);
  assert.ok(a.classifier.predicts >= 10 && b.classifier.predicts >= 10, `both models judged windows: ${a.classifier.predicts} and ${b.classifier.predicts}`);
  assert.ok(switches >= 100, `${switches} switches`);
  assert.ok(midUtterance >= 50, `${midUtterance} switches fell inside an utterance`);
  assert.ok(rightBeforeAWindow >= 5, `${rightBeforeAWindow} switches came right before the block that completed a window`);
  assert.equal(c.calls.length, 1, 'one call throughout: a switch neither ends nor starts one');
});

test("a switch gives the call a fresh context from the new model, and switching back another fresh one; the call and its tracker carry on", async () => {
  // The shipped model keeps a caller baseline per call: a context worth renewing.
  const first = await countedModel(defaultModelDir(), 'shipped-1');
  const second = await countedModel(defaultModelDir(), 'shipped-2');
  const slot = new ModelSlot({ initial: first });
  const c = channelOn(slot);
  // The demo's caller: calm, then angry, which the shipped model flags high.
  const blocks = voiceBlocks([['calm', 20], ['angry', 20], ['calm', 20]]);
  let at = 0;
  const feedUntil = (done: () => boolean, what: string) => {
    while (!done()) {
      assert.ok(at < blocks.length, `the call ended before ${what}`);
      c.headset.push(blocks[at++]!);
    }
  };
  feedUntil(() => c.headset.level === 'high', 'the shipped model raised the angry caller to high');
  const callId = c.headset.callId;
  const eventsBefore = c.urgency.map((e) => e.kind);
  assert.equal(first.classifier.made.length, 1);
  assert.ok(first.classifier.made[0] !== null, 'the shipped model keeps a context per call');
  assert.ok(first.classifier.given.every((ctx) => ctx === first.classifier.made[0]), 'every window of the call came with its one context');

  slot.activate(second);
  feedUntil(() => second.classifier.predicts === 1, 'the new model judged a window');
  assert.equal(second.classifier.made.length, 1, 'the new model made a context for the call at its first window');
  assert.equal(second.classifier.given[0], second.classifier.made[0]);
  assert.equal(c.headset.level, 'high', 'the tracker carried on: one window of a new model cannot clear a high flag');
  assert.equal(c.headset.callId, callId);
  assert.deepEqual(c.urgency.map((e) => e.kind), eventsBefore, 'no clear at the switch');
  assert.equal(eventsBefore.at(-1), 'raise');
  feedUntil(() => second.classifier.predicts === 4, 'three more windows');
  assert.ok(second.classifier.given.every((ctx) => ctx === second.classifier.made[0]), 'the new model keeps its context for the rest of the call');

  const windowsOfFirst = first.classifier.predicts;
  slot.activate(first);
  feedUntil(() => first.classifier.predicts === windowsOfFirst + 2, 'the first model judged again');
  assert.equal(first.classifier.made.length, 2, 'switching back is a new context too: the old one missed the windows in between');
  assert.notEqual(first.classifier.made[1], first.classifier.made[0]);
  assert.ok(first.classifier.given.slice(windowsOfFirst).every((ctx) => ctx === first.classifier.made[1]));
  assert.equal(c.headset.callId, callId);
  assert.deepEqual(c.calls.map((e) => e.action), ['start'], 'one call throughout');
  assert.ok(c.urgency.every((e) => e.model.name === 'cremad-call'));
});

test('a switch to a model with other frame features at the same rate rebuilds the stream: the window in progress starts over, and later windows keep their place in time', async () => {
  // Every window toggles the level (an event each), so each window's place in time shows.
  let n = 0;
  const toggle: Rewrite = (out, labels) => {
    out.fill(0);
    out[labels.indexOf(n++ % 2 === 0 ? 'angry' : 'neutral')] = 1;
  };
  const judged: (SeenWindow & { tag: string })[] = [];
  // Every window moves the level: the weighted score of the toggled probabilities (1 or 0) on a
  // tracker that raises and clears in one window. A trained head (the shipped bundle's) would
  // read the toggling against the call's own baseline, which is another question.
  const everyWindow: TrackerConfig = { smoothing: 1, thresholds: { medium: 0.5, high: 0.7 }, hysteresis: 0, raiseWindows: 1, clearWindows: 1 };
  const a = await countedModel(bundles.synthetic, 'knn', judged, toggle, { tracker: everyWindow });
  const b = await countedModel(defaultModelDir(), 'shipped', judged, toggle);
  b.urgency = new UrgencyStage(b.classifier.labels, undefined, { angry: 1, neutral: 0 }, { tracker: everyWindow });
  assert.notEqual(b.classifier.manifest.features.mfccCount, a.classifier.manifest.features.mfccCount, 'the two bundles compute other frame features');

  const slot = new ModelSlot({ initial: a });
  const c = channelOn(slot);
  const blocks = voiceBlocks([['angry', 25]]);
  const speech = speechPerBlock(DEFAULT_FEATURE_CONFIG, blocks);
  let at = 120;
  while (!(speech[at - 1]! > 0 && speech[at]! > 0)) at++;
  const switchSeconds = (at * BLOCK) / RATE;
  const before = referenceWindows(a.classifier.manifest.features, blocks.slice(0, at));
  const after = referenceWindows(b.classifier.manifest.features, blocks.slice(at));

  // The channel places windows against the wall clock at each block's end: here, stream time.
  const wallClock = Date.now;
  let clock = 0;
  Date.now = () => clock;
  try {
    for (const [i, block] of blocks.entries()) {
      if (i === at) slot.activate(b);
      clock = ((i + 1) * BLOCK * 1000) / RATE;
      c.headset.push(block);
    }
  } finally {
    Date.now = wallClock;
  }
  assert.ok(before.length >= 5 && after.length >= 5, `windows before and after: ${before.length}, ${after.length}`);
  assert.deepEqual(judged.filter((w) => w.tag === 'knn').map(sameWindow), before.map(sameWindow), 'up to the switch, the old stream and model');
  assert.deepEqual(judged.filter((w) => w.tag === 'shipped').map(sameWindow), after.map(sameWindow), 'from the switch, a new stream with the new features, its first window filled from scratch');
  assert.ok(after[0]!.endSeconds >= DEFAULT_WINDOWING.windowSeconds, 'the first window after the switch holds only speech heard after it');
  const ends = c.urgency.map((e) => e.window.endMs);
  const expectedEnds = [...before.map((w) => w.endSeconds * 1000), ...after.map((w) => (switchSeconds + w.endSeconds) * 1000)];
  assert.equal(ends.length, expectedEnds.length, 'an event per window');
  ends.forEach((end, i) => assert.ok(Math.abs(end - expectedEnds[i]!) <= 1, `window ${i} ends at ${end} ms, expected ${expectedEnds[i]!.toFixed(1)}`));
  assert.deepEqual([...new Set(c.urgency.map((e) => e.model.name))], ['synthetic', 'cremad-call'], 'each event names the model that judged its window');
  assert.equal(c.calls.length, 1, 'the call carries on across the rebuild');
});

test('canAdopt refuses another sample rate for a switch, and any other frame feature for a shadow; a switch takes other frame features', async () => {
  const a = await countedModel(bundles.synthetic, 'synthetic');
  const slot = new ModelSlot({ initial: a });
  const manifest = a.classifier.manifest;
  const other = (features: Partial<FeatureConfig>): BundleManifest => ({ ...manifest, name: 'other', version: '2.0.0', features: { ...manifest.features, ...features } });

  const rate = slot.canAdopt(other({ sampleRate: 8000 }), 'activate');
  assert.match(rate ?? '', /other 2\.0\.0 takes audio at 8000 Hz/);
  assert.match(rate ?? '', /opened at 16000 Hz/);
  assert.match(rate ?? '', /set model\.dir to this bundle and restart the daemon/);
  assert.match(slot.canAdopt(other({ sampleRate: 8000 }), 'shadow') ?? '', /8000 Hz.*restart/);

  assert.equal(slot.canAdopt(other({ mfccCount: 20 }), 'activate'), null, 'a switch rebuilds the streams for other frame features');
  const shadow = slot.canAdopt(other({ mfccCount: 20 }), 'shadow');
  assert.match(shadow ?? '', /mfccCount 40 → 20/);
  assert.match(shadow ?? '', /install it without shadow/);
  assert.match(slot.canAdopt(other({ features: ['mfcc', 'rms'] }), 'shadow') ?? '', /features \[.*\] → \[mfcc, rms\]/);
  assert.match(slot.canAdopt(other({ window: 'hamming' }), 'shadow') ?? '', /window hann → hamming/);

  assert.equal(slot.canAdopt(other({}), 'shadow'), null);
  assert.equal(slot.canAdopt(other({ features: [...manifest.features.features].reverse() }), 'shadow'), null, 'the feature list in another order makes the same frames');
  assert.equal(slot.canAdopt(other({ sequenceStride: manifest.features.sequenceStride + 1 }), 'shadow'), null, "sequenceStride only shapes a model's own input from the same frames");
});

test('activate refuses what canAdopt refuses, the active model itself and the model under trial, and leaves the current model in place', async () => {
  const a = await countedModel(bundles.synthetic, 'synthetic');
  const b = await countedModel(bundles.contrary, 'contrary');
  const slot = new ModelSlot({ initial: a });
  const eightKHz: LiveModel = { ...b, classifier: { ...b.classifier, manifest: { ...b.classifier.manifest, features: { ...b.classifier.manifest.features, sampleRate: 8000 } } } };
  assert.throws(() => slot.activate(eightKHz), /takes audio at 8000 Hz/);
  assert.equal(slot.current, a);
  assert.throws(() => slot.activate(a), /is the active model already/);

  slot.startShadow(b, 10);
  assert.throws(() => slot.activate(b), /under shadow trial: end the trial/);
  const shipped = await countedModel(defaultModelDir(), 'shipped');
  assert.match(slot.canAdopt(shipped.classifier.manifest, 'activate') ?? '', /under shadow trial.*promote or discard the staged model first/);
  assert.throws(() => slot.activate(shipped), /promote or discard/);
  assert.equal(slot.current, a);
  assert.equal(slot.endShadow(), b);
  assert.equal(slot.activate(b), a, 'promoted: the trial ended, its model activated');
  assert.equal(slot.activate(shipped), b, 'with no trial held, other frame features are fine');
  shipped.classifier.dispose();
});
