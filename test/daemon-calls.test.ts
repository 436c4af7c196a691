import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_WINDOWING } from '../src/audio/speech-windower.js';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { CommandRouter } from '../src/daemon/command-router.js';
import { DaemonBus, type CallBoundaryEvent, type ChannelLevelEvent, type UrgencyChangeEvent } from '../src/daemon/daemon-events.js';
import { HeadsetChannel } from '../src/daemon/headset-channel.js';
import { liveModel, ModelSlot } from '../src/daemon/model-slot.js';
import { CommandError } from '../src/mqtt/mqtt-link.js';
import type { CommandRequest } from '../src/mqtt/payload-schemas.js';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import type { BundleManifest } from '../src/model/bundle-manifest.js';
import type { CallContext, Classifier } from '../src/model/classifier.js';
import { PipelineMetrics } from '../src/telemetry/pipeline-metrics.js';

/** A per-call context that counts the windows it was passed with. */
interface ScriptedCall extends CallContext {
  windows: number;
}

/**
 * A model that says whatever the test sets: the call logic is under test, not the
 * classifier. It records the call context each window came with.
 */
function scriptedClassifier(): Classifier & { angry: number; contexts: (CallContext | null | undefined)[] } {
  const labels = ['neutral', 'angry'] as const;
  return {
    angry: 0,
    contexts: [],
    labels,
    backend: 'scripted',
    manifest: { name: 'scripted', version: '1', features: DEFAULT_FEATURE_CONFIG } as unknown as BundleManifest,
    newCallContext: (): ScriptedCall => ({ model: 'scripted', windows: 0 }),
    predict(_rows, _frames, out, call) {
      this.contexts.push(call);
      if (call) (call as ScriptedCall).windows++;
      out[0] = 1 - this.angry;
      out[1] = this.angry;
      return out;
    },
    predictModelInput: (_input, out) => out,
    modelInput: () => new Float32Array(0),
    dispose() {},
  };
}

function channel(role: 'customer' | 'agent' = 'customer', callSilenceSeconds = 5, callId?: string, id = 'desk-1') {
  const classifier = scriptedClassifier();
  const bus = new DaemonBus();
  const metrics = new PipelineMetrics();
  const urgency: UrgencyChangeEvent[] = [];
  const calls: CallBoundaryEvent[] = [];
  const levels: ChannelLevelEvent[] = [];
  bus.on('urgency', (e) => urgency.push(e));
  bus.on('call', (e) => calls.push(e));
  bus.on('channel-level', (e) => levels.push(e));
  const headset = new HeadsetChannel({
    id,
    role,
    model: new ModelSlot({ initial: liveModel(classifier, undefined, 'f'.repeat(64)) }),

    windowing: DEFAULT_WINDOWING,
    callSilenceSeconds,
    ...(callId ? { callId } : {}),
    bus,
    metrics,
  });
  const feed = (samples: Float32Array) => {
    for (let at = 0; at < samples.length; at += 1600) headset.push(samples.subarray(at, at + 1600));
  };
  const speech = (seconds: number) => feed(synthesiseVoice(VOICE_STYLES.angry, seconds, 16000, 5));
  const silence = (seconds: number) => feed(new Float32Array(seconds * 16000));
  return { headset, classifier, metrics, urgency, calls, levels, speech, silence };
}

test('the first speech on an idle channel opens a call with a fresh ULID', () => {
  const c = channel();
  c.headset.start();
  assert.equal(c.headset.callId, null);
  c.speech(4);
  assert.match(c.headset.callId ?? '', /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.deepEqual(c.calls.map((e) => [e.action, e.reason]), [['start', 'speech']]);
});

test('an angry call raises a flag whose window lies in the past of the wall clock', () => {
  const c = channel();
  c.classifier.angry = 1;
  c.speech(8);
  assert.equal(c.urgency[0]?.kind, 'raise');
  assert.equal(c.urgency[0]?.level, 'high');
  assert.equal(c.urgency[0]?.callId, c.headset.callId);
  const { startMs, endMs } = c.urgency[0]!.window;
  assert.ok(startMs < endMs && endMs <= Date.now());
});

test('callSilenceSeconds of silence ends the call, clearing its flag, and the next speech is a new call', () => {
  const c = channel('customer', 5);
  c.classifier.angry = 1;
  c.speech(8);
  const first = c.headset.callId;
  c.silence(6);
  assert.equal(c.headset.callId, null);
  assert.deepEqual(c.calls.map((e) => [e.action, e.reason]), [['start', 'speech'], ['end', 'silence']]);
  const clear = c.urgency.at(-1)!;
  assert.deepEqual([clear.kind, clear.level, clear.cause, clear.callId], ['clear', 'low', 'call-end', first]);
  assert.deepEqual(c.levels.at(-1), { channel: 'desk-1', role: 'customer', callId: null, level: 'low', score: 0 });

  c.classifier.angry = 0;
  c.speech(4);
  assert.ok(c.headset.callId !== null && c.headset.callId !== first);
});

test("a channel's configured call id names its first call, later ones get -2, -3, and a cmd/call id still wins", () => {
  const c = channel('customer', 5, 'rec-42');
  c.classifier.angry = 1;
  c.speech(8);
  assert.equal(c.headset.callId, 'rec-42');
  assert.equal(c.urgency[0]?.callId, 'rec-42');
  c.silence(6);
  c.speech(4);
  assert.equal(c.headset.callId, 'rec-42-2');
  c.headset.beginCall('pbx-7');
  assert.equal(c.headset.callId, 'pbx-7');
  c.headset.endCall('pbx-7');
  c.speech(4);
  assert.equal(c.headset.callId, 'rec-42-3');
  c.headset.beginCall('rec-42-4');
  c.headset.endCall('rec-42-4');
  c.speech(4);
  assert.equal(c.headset.callId, 'rec-42-5', 'not the id the call before had');
});

test("every window of a call reaches the model with that call's own context, and the next call gets a fresh one", () => {
  const c = channel('customer', 5);
  c.speech(8);
  c.silence(6);
  const first = c.classifier.contexts.splice(0);
  c.speech(8);
  const second = c.classifier.contexts;
  assert.ok(first.length >= 2 && second.length >= 2, `windows per call: ${first.length}, ${second.length}`);
  assert.ok(first.every((ctx) => ctx != null && ctx === first[0]), 'one context for all the windows of the first call');
  assert.ok(second.every((ctx) => ctx != null && ctx === second[0]), 'one context for all the windows of the second call');
  assert.notEqual(second[0], first[0]);
  assert.equal((second[0] as ScriptedCall).windows, second.length, 'the new caller starts from nothing');
});

test('pauses shorter than callSilenceSeconds stay within one call', () => {
  const c = channel('customer', 5);
  c.speech(4);
  const id = c.headset.callId;
  c.silence(3);
  c.speech(4);
  assert.equal(c.headset.callId, id);
});

test('a call started by command takes the given id and starts from low, whatever the previous caller said', () => {
  const c = channel();
  c.classifier.angry = 1;
  c.speech(8);
  assert.equal(c.headset.level, 'high');
  c.headset.beginCall('pbx-778');
  assert.equal(c.headset.callId, 'pbx-778');
  assert.equal(c.headset.level, 'low');
  assert.deepEqual(c.calls.slice(-2).map((e) => [e.action, e.reason]), [['end', 'superseded'], ['start', 'command']]);
  c.speech(8);
  assert.equal(c.urgency.at(-1)?.callId, 'pbx-778');
});

test('an end for another call id leaves the current call running', () => {
  const c = channel();
  c.headset.beginCall('pbx-1');
  assert.equal(c.headset.endCall('pbx-0'), false);
  assert.equal(c.headset.callId, 'pbx-1');
  assert.equal(c.headset.endCall('pbx-1'), true);
  assert.equal(c.headset.callId, null);
});

test('an agent channel never raises a flag; its strain goes to telemetry only', () => {
  const c = channel('agent');
  c.classifier.angry = 1;
  c.speech(8);
  assert.equal(c.urgency.length, 0);
  assert.ok((c.metrics.agentStrain.get('desk-1') ?? 0) > 0.6);
});

test('skipped audio is counted as one dropped window per hop, on the channel and in the total, and never classified', () => {
  const c = channel();
  c.metrics.channels.set('desk-1', { role: 'customer', state: 'running', source: 'test', failures: 0, droppedWindows: 0 });
  c.classifier.angry = 1;
  // 25 blocks of 100 ms: 2.5 hops of the default 1 s, so two whole windows so far.
  for (let i = 0; i < 25; i++) c.headset.skip(1600);
  assert.equal(c.metrics.windows, 0);
  assert.equal(c.metrics.channels.get('desk-1')!.droppedWindows, 2);
  assert.equal(c.metrics.droppedWindows, 2);
  for (let i = 0; i < 5; i++) c.headset.skip(1600);
  assert.equal(c.metrics.channels.get('desk-1')!.droppedWindows, 3);
  assert.equal(c.urgency.length, 0);
});

function callCommand(action: 'start' | 'end', callId: string, channel = 'desk-1'): CommandRequest {
  return { name: 'call', payload: { schema: 1, action, channel, callId } };
}

function router(channels: HeadsetChannel[], callRate = { ratePerMinute: 6, burst: 3 }) {
  let ms = 0;
  const route = new CommandRouter({ channels: new Map(channels.map((c) => [c.id, c])), logger: undefined as never, callRate, now: () => ms });
  return { handle: route.handle, advance: (by: number) => void (ms += by) };
}

test('cmd/call beyond the channel rate is refused with rate_limited and a retry time, and the call goes on being classified', () => {
  const c = channel();
  c.classifier.angry = 1;
  const r = router([c.headset]);
  for (let i = 1; i <= 3; i++) r.handle(callCommand('start', `flood-${i}`));
  assert.equal(c.headset.callId, 'flood-3');
  assert.throws(
    () => r.handle(callCommand('start', 'flood-4')),
    (error: unknown) => error instanceof CommandError && error.code === 'rate_limited' && error.subject === 'desk-1' && error.retryAfterSeconds === 10 && /commands\.call/.test(error.message),
  );
  assert.equal(c.headset.callId, 'flood-3', 'the refused start did not cut the call');
  c.speech(8);
  assert.equal(c.urgency.at(-1)?.level, 'high');
  assert.equal(c.urgency.at(-1)?.callId, 'flood-3');
  assert.throws(() => r.handle(callCommand('end', 'flood-3')), /rate_limited|too many/);
  assert.equal(c.headset.level, 'high', 'a refused end does not clear the flag');
  r.advance(10_000);
  assert.deepEqual(r.handle(callCommand('end', 'flood-3')), { channel: 'desk-1', callId: 'flood-3', ended: true });
});

test('a flood on one channel leaves the rate of the others alone', () => {
  const a = channel();
  const b = channel('customer', 5, undefined, 'desk-2');
  const r = router([a.headset, b.headset]);
  for (let i = 0; i < 3; i++) r.handle(callCommand('start', `a-${i}`));
  assert.throws(() => r.handle(callCommand('start', 'a-9')), /too many cmd\/call for channel "desk-1"/);
  assert.deepEqual(r.handle(callCommand('start', 'b-1', 'desk-2')), { channel: 'desk-2', callId: 'b-1' });
});

test('a start repeated for the call already in progress (a QoS 1 redelivery) keeps that call and its level', () => {
  const c = channel();
  c.classifier.angry = 1;
  const r = router([c.headset], { ratePerMinute: 60, burst: 10 });
  r.handle(callCommand('start', 'pbx-1'));
  c.speech(8);
  assert.equal(c.headset.level, 'high');
  assert.deepEqual(r.handle(callCommand('start', 'pbx-1')), { channel: 'desk-1', callId: 'pbx-1', alreadyInProgress: true });
  assert.equal(c.headset.level, 'high');
  assert.deepEqual(c.calls.map((e) => [e.action, e.callId]), [['start', 'pbx-1']]);
});

test('no window spans skipped audio: speech before a skip is forgotten and the next window needs a full window of new speech', () => {
  const c = channel();
  c.classifier.angry = 1;
  c.speech(2.5);
  assert.equal(c.metrics.windows, 0, '2.5 s of speech makes no 3 s window yet');
  c.headset.skip(16000 * 10);
  c.speech(2.5);
  assert.equal(c.metrics.windows, 0, 'the 2.5 s before the gap do not complete a window with the 2.5 s after it');
  c.speech(1);
  assert.equal(c.metrics.windows, 1);
});

test('windows after a skip keep their place on the wall clock, the gap included', () => {
  const c = channel();
  c.classifier.angry = 1;
  c.headset.skip(16000 * 20);
  c.speech(8);
  const { startMs, endMs } = c.urgency[0]!.window;
  // Fed at once, the 8 s of speech end "now"; a window from before the gap would lie 20 s earlier.
  assert.ok(Date.now() - endMs < 8000 && endMs - startMs > 2500 && endMs - startMs < 3500, `window ${startMs}..${endMs}, now ${Date.now()}`);
});

test('a skip never ends a call: the call-silence clock stands still over audio nobody listened to', () => {
  const c = channel('customer', 5);
  c.classifier.angry = 1;
  c.speech(8);
  const call = c.headset.callId;
  assert.ok(call !== null);
  c.silence(3);
  c.headset.skip(16000 * 60);
  c.silence(1);
  assert.equal(c.headset.callId, call, '3 s + 1 s of silence heard, around a minute skipped: the call goes on');
  c.silence(1.5);
  assert.equal(c.headset.callId, null, 'then 5 s of silence heard end it');
  assert.deepEqual(c.calls.map((e) => [e.action, e.reason]), [['start', 'speech'], ['end', 'silence']]);
});
