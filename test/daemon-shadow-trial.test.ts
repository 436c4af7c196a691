import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HeadsetRole } from '../src/audio/channel-map.js';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { defaultModelDir } from '../src/config/package-paths.js';
import { DaemonBus, type UrgencyChangeEvent } from '../src/daemon/daemon-events.js';
import { HeadsetChannel } from '../src/daemon/headset-channel.js';
import { ModelSlot, type LiveModel } from '../src/daemon/model-slot.js';
import { ShadowTrialReport } from '../src/mqtt/payload-schemas.js';
import { PipelineMetrics } from '../src/telemetry/pipeline-metrics.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { BLOCK, countedModel, RATE, voiceBlocks, writeKnnBundles } from './helpers/live-models.js';

/**
 * A shadow trial (ShadowTrial, run by HeadsetChannel through ModelSlot): the staged model
 * judges the live windows beside the active one and publishes nothing. Real classifiers
 * from bundles written here; the trial's clock is the audio's, 100 ms per block.
 */

const dir = tempDir('ser-edge-shadow-trial-');
let bundles: { synthetic: string; contrary: string };

before(async () => {
  bundles = await writeKnnBundles(dir);
});

const START = Date.parse('2025-03-01T09:00:00.000Z');
const BLOCK_MS = (BLOCK * 1000) / RATE;
/** Calm, angry, calm, angry: the synthetic model raises twice. */
const CALL: Parameters<typeof voiceBlocks>[0] = [['calm', 10], ['angry', 15], ['calm', 15], ['angry', 10]];

/** A channel on a slot of its own, the slot's clock advanced by each block fed. */
function rig(active: LiveModel, role: HeadsetRole = 'customer', callSilenceSeconds = 30) {
  let clock = START;
  const slot = new ModelSlot({ initial: active, now: () => clock });
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  const urgency: UrgencyChangeEvent[] = [];
  bus.on('urgency', (e) => urgency.push(e));
  const headset = new HeadsetChannel({ id: 'desk-1', role, model: slot, windowing: DEFAULT_WINDOWING, callSilenceSeconds, bus, metrics });
  const feed = (blocks: Float32Array[]) => {
    for (const block of blocks) {
      headset.push(block);
      clock += BLOCK_MS;
    }
  };
  return { slot, headset, metrics, urgency, feed, now: () => clock };
}

const raises = (events: UrgencyChangeEvent[]) => events.filter((e) => e.kind === 'raise').length;
const perHour = (flags: number, ms: number) => Number((flags / (ms / 3_600_000)).toFixed(2));

test('a shadow trial of the same bundle agrees on every window and counts the same flags, per hour of trial time', async () => {
  const active = await countedModel(bundles.synthetic, 'active');
  const staged = await countedModel(bundles.synthetic, 'staged');
  const r = rig(active);
  const trial = r.slot.startShadow(staged, 60);
  const blocks = voiceBlocks(CALL);
  r.feed(blocks);

  const report = trial.report();
  assert.deepEqual(ShadowTrialReport.parse(report), report, "the report is the contract's");
  const flags = raises(r.urgency);
  assert.ok(flags >= 2, `the active model raised ${flags} flags`);
  assert.equal(report.windows, r.metrics.windows);
  assert.equal(report.windows, staged.classifier.predicts, 'every window the active model judged, the staged one judged too');
  assert.deepEqual(report.agreement, { emotion: 1, level: 1 });
  assert.deepEqual(report.flags, { active: flags, shadow: flags });
  const trialMs = blocks.length * BLOCK_MS;
  assert.deepEqual(report.flagsPerHour, { active: perHour(flags, trialMs), shadow: perHour(flags, trialMs) });
  assert.equal(report.startedAt, new Date(START).toISOString());
  assert.equal(report.endsAt, new Date(START + 60 * 60_000).toISOString());
  assert.equal(report.done, false);
  // Had the shadow's changes reached the bus too, each would come twice: a raise from a level already left.
  r.urgency.forEach((e, i) => assert.equal(e.previous, i === 0 ? 'low' : r.urgency[i - 1]!.level, `event ${i} follows the one before`));
});

test("against a different model, agreement falls below 1, each model's flags are its own, and the bus carries exactly what it would without the trial", async () => {
  const active = await countedModel(bundles.synthetic, 'active');
  const twin = await countedModel(bundles.synthetic, 'twin');
  const contrary = await countedModel(bundles.contrary, 'contrary');
  const withTrial = rig(active);
  const without = rig(twin);
  const trial = withTrial.slot.startShadow(contrary, 60);
  const blocks = voiceBlocks(CALL);
  withTrial.feed(blocks);
  without.feed(blocks);

  const report = trial.report();
  ShadowTrialReport.parse(report);
  assert.ok(report.windows > 30 && report.windows === contrary.classifier.predicts, `${report.windows} windows compared`);
  assert.ok(report.agreement.emotion! < 0.8, `emotion agreement ${report.agreement.emotion}`);
  assert.ok(report.agreement.level! < 1, `level agreement ${report.agreement.level}`);
  assert.equal(report.flags.active, raises(withTrial.urgency));
  assert.ok(report.flags.shadow >= 1, 'the contrary model would have flagged the calm caller');
  const trialMs = blocks.length * BLOCK_MS;
  assert.deepEqual(report.flagsPerHour, { active: perHour(report.flags.active, trialMs), shadow: perHour(report.flags.shadow, trialMs) });

  const published = (events: UrgencyChangeEvent[]) => events.map(({ kind, level, previous, score, emotion, probabilities, cause }) => ({ kind, level, previous, score, emotion, probabilities, cause }));
  assert.deepEqual(published(withTrial.urgency), published(without.urgency), 'the trial changes nothing the channel announces');
  assert.equal(withTrial.metrics.flagsRaised, without.metrics.flagsRaised);
});

test('the trial stops judging when its minutes are over, and keeps its report; the active model goes on', async () => {
  const active = await countedModel(bundles.synthetic, 'active');
  const staged = await countedModel(bundles.contrary, 'staged');
  const r = rig(active);
  const trial = r.slot.startShadow(staged, 0.5);
  const blocks = voiceBlocks(CALL);
  r.feed(blocks.slice(0, 200));
  assert.equal(trial.done, false, '20 s into a 30 s trial');
  const judgedInTime = staged.classifier.predicts;
  assert.ok(judgedInTime > 5);

  r.feed(blocks.slice(200, 400));
  assert.equal(trial.done, true);
  const atEnd = trial.report();
  assert.equal(atEnd.done, true);
  assert.ok(staged.classifier.predicts > judgedInTime && staged.classifier.predicts === atEnd.windows, 'it judged until its end');
  const activeWindows = r.metrics.windows;
  assert.ok(activeWindows > atEnd.windows + 5, `the active model judged ${activeWindows} windows, the staged one ${atEnd.windows}`);

  r.feed(blocks.slice(400));
  assert.equal(staged.classifier.predicts, atEnd.windows, 'no window judged by the staged model after the end');
  assert.ok(r.metrics.windows > activeWindows, 'the active model still judges every window');
  assert.deepEqual(trial.report(), atEnd, 'the report stays as it was at the end');
  assert.deepEqual(atEnd.flagsPerHour, { active: perHour(atEnd.flags.active, 30_000), shadow: perHour(atEnd.flags.shadow, 30_000) }, 'per hour of the trial\'s 30 s');
  assert.equal(r.slot.shadow, trial, 'a finished trial waits for promote or discard');
});

test('an agent channel counts towards agreement, never towards flags', async () => {
  const active = await countedModel(bundles.synthetic, 'active');
  const staged = await countedModel(bundles.contrary, 'staged');
  const r = rig(active, 'agent');
  const trial = r.slot.startShadow(staged, 60);
  r.feed(voiceBlocks(CALL));
  const report = trial.report();
  assert.ok(report.windows > 30);
  assert.ok(report.agreement.emotion !== null && report.agreement.level !== null);
  assert.deepEqual(report.flags, { active: 0, shadow: 0 });
  assert.deepEqual(report.flagsPerHour, { active: 0, shadow: 0 });
  assert.equal(r.urgency.length, 0);
});

test("the staged model follows each call with its own context, a new one per call, and ending the trial lets go of the model", async () => {
  // The shipped model keeps a caller baseline per call, so contexts can be told apart.
  const active = await countedModel(defaultModelDir(), 'active');
  const staged = await countedModel(defaultModelDir(), 'staged');
  const r = rig(active, 'customer', 5);
  const trial = r.slot.startShadow(staged, 60);
  const speech = voiceBlocks([['calm', 8]]);
  const silence = Array.from({ length: 60 }, () => new Float32Array(BLOCK));
  r.feed(speech);
  r.feed(silence);
  assert.equal(r.headset.callId, null, 'the first call ended in silence');
  const firstCall = staged.classifier.predicts;
  r.feed(speech);
  assert.equal(staged.classifier.made.length, 2, 'a context per call');
  assert.ok(staged.classifier.made.every((c) => c !== null && !active.classifier.made.includes(c)), "the staged model's contexts are its own");
  assert.ok(staged.classifier.given.slice(0, firstCall).every((c) => c === staged.classifier.made[0]));
  assert.ok(staged.classifier.given.slice(firstCall).every((c) => c === staged.classifier.made[1]));
  assert.equal(trial.report().windows, staged.classifier.predicts);

  assert.equal(r.slot.endShadow(), staged, 'discard or promote takes the model back');
  assert.equal(r.slot.shadow, null);
  const judged = staged.classifier.predicts;
  r.feed(speech);
  assert.equal(staged.classifier.predicts, judged, 'an ended trial judges nothing');
  active.classifier.dispose();
  staged.classifier.dispose();
});

test('startShadow refuses a second trial, the active model itself, other frame features and a trial without time', async () => {
  const active = await countedModel(bundles.synthetic, 'active');
  const staged = await countedModel(bundles.contrary, 'staged');
  const shipped = await countedModel(defaultModelDir(), 'shipped');
  const slot = new ModelSlot({ initial: active });
  assert.throws(() => slot.startShadow(active, 10), /is the active model: a shadow trial needs a model of its own/);
  assert.throws(() => slot.startShadow(shipped, 10), /computes other frame features.*install it without shadow/);
  assert.throws(() => slot.startShadow(staged, 0), /minutes must be a positive number, got 0/);
  assert.equal(slot.shadow, null, 'nothing refused is held');
  slot.startShadow(staged, 10);
  const another = await countedModel(bundles.contrary, 'another');
  assert.throws(() => slot.startShadow(another, 10), /a shadow trial of contrary 1\.0\.0 is held already: promote or discard it/);
  shipped.classifier.dispose();
});
