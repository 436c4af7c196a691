import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VoiceActivityDetector, frameEnergyDb } from '../src/audio/voice-activity-detector.js';
import { SpeechWindower } from '../src/audio/speech-windower.js';

/** Frame energies for `seconds` of noise at `noiseDb` with speech bursts at `speechDb` (62.5 frames/s). */
function energies(pattern: [seconds: number, db: number][]): number[] {
  const out: number[] = [];
  let seed = 1;
  for (const [seconds, db] of pattern) {
    for (let i = 0; i < Math.round(seconds * 62.5); i++) {
      seed = (seed * 16807) % 2147483647;
      out.push(db + ((seed / 2147483647) * 2 - 1) * 1.5);
    }
  }
  return out;
}

test('the detector finds speech well above a steady noise floor and ends it after the hangover', () => {
  const vad = new VoiceActivityDetector();
  const decisions = energies([[2, -50], [1, -25], [2, -50]]).map((e) => vad.update(e));
  const speechFrames = decisions.filter(Boolean).length;
  assert.ok(speechFrames >= 60 && speechFrames <= 62 + 20, `speech frames ${speechFrames}`);
  assert.equal(decisions[decisions.length - 1], false);
});

test('the noise floor adapts to a louder room so constant noise is not speech', () => {
  const vad = new VoiceActivityDetector();
  const decisions = energies([[10, -35]]).map((e) => vad.update(e));
  assert.equal(decisions.slice(-300).filter(Boolean).length, 0);
  assert.ok(Math.abs(vad.noiseFloorDb - -35) < 3, `floor ${vad.noiseFloorDb}`);
});

test('digital silence is never speech and its energy is finite', () => {
  const vad = new VoiceActivityDetector();
  const silent = new Float32Array(512);
  const db = frameEnergyDb(silent);
  assert.ok(Number.isFinite(db));
  for (let i = 0; i < 100; i++) assert.equal(vad.update(db), false);
});

test('a single click does not start an utterance', () => {
  const vad = new VoiceActivityDetector();
  const decisions = energies([[2, -50], [0.016, -10], [1, -50]]).map((e) => vad.update(e));
  assert.equal(decisions.filter(Boolean).length, 0);
});

function fill(w: SpeechWindower, frames: number, start = 0) {
  const windows = [];
  for (let i = 0; i < frames; i++) {
    w.ring.fill(start + i, w.rowOffset, w.rowOffset + w.dim);
    const win = w.commit(start + i);
    if (win) windows.push({ ...win, rows: win.rows.slice() });
  }
  return windows;
}

test('windows are due every hop once a full window of speech is stored', () => {
  const w = new SpeechWindower(2, 10, { windowSeconds: 3, hopSeconds: 1, minSpeechSeconds: 0.5 });
  const windows = fill(w, 60);
  assert.deepEqual(windows.map((x) => x.lastFrame), [29, 39, 49, 59]);
  assert.ok(windows.every((x) => x.frames === 30));
});

test('a window holds its frames oldest first across the ring wrap', () => {
  const w = new SpeechWindower(1, 10, { windowSeconds: 1, hopSeconds: 0.3, minSpeechSeconds: 0.5 });
  const windows = fill(w, 25);
  const last = windows[windows.length - 1]!;
  assert.deepEqual(Array.from(last.rows), Array.from({ length: 10 }, (_, i) => last.firstFrame + i));
});

test('a short utterance still gets a window at its end when it has enough new speech', () => {
  const w = new SpeechWindower(1, 10, { windowSeconds: 3, hopSeconds: 1, minSpeechSeconds: 0.5 });
  assert.equal(fill(w, 12).length, 0);
  const win = w.endOfSpeech();
  assert.ok(win);
  assert.equal(win.frames, 12);
  assert.equal(w.endOfSpeech(), null, 'no new speech since: no second window');
});

test('too little speech at an utterance end gives no window', () => {
  const w = new SpeechWindower(1, 10, { windowSeconds: 3, hopSeconds: 1, minSpeechSeconds: 0.5 });
  fill(w, 3);
  assert.equal(w.endOfSpeech(), null);
});

test('a speech frame is written in place at the ring write offset, which steps one row per frame and wraps after a window', () => {
  const w = new SpeechWindower(2, 10, { windowSeconds: 1, hopSeconds: 0.5, minSpeechSeconds: 0.5 });
  const ring = w.ring;
  let last = null;
  for (let i = 0; i < 25; i++) {
    assert.equal(w.rowOffset, (i % 10) * 2);
    assert.equal(w.ring, ring, 'the same ring every frame: nothing allocated');
    w.ring.fill(i, w.rowOffset, w.rowOffset + w.dim);
    last = w.commit(i) ?? last;
  }
  assert.ok(last);
  assert.deepEqual(Array.from(last.rows), Array.from({ length: 20 }, (_, i) => last.firstFrame + Math.floor(i / 2)));
});
