import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_VAD_CONFIG, VoiceActivityDetector, frameEnergyDb, type FramePitch } from '../src/audio/voice-activity-detector.js';
import { SpeechWindower } from '../src/audio/speech-windower.js';

/** One frame as the detector sees it: its energy (dBFS) and its pitch (log2 F0/50 Hz, 0 unvoiced). */
interface Frame {
  db: number;
  pitch: number;
}

/**
 * Frames (62.5 a second, the shipped hop) for a pattern of stretches: a level with ±1.5 dB
 * of seeded jitter, and a voice whose pitch glides smoothly (as in a vowel), or none.
 */
function frames(pattern: [seconds: number, db: number, voice?: 'voiced'][]): Frame[] {
  const out: Frame[] = [];
  let seed = 1;
  for (const [seconds, db, voice] of pattern) {
    for (let i = 0; i < Math.round(seconds * 62.5); i++) {
      seed = (seed * 16807) % 2147483647;
      out.push({ db: db + ((seed / 2147483647) * 2 - 1) * 1.5, pitch: voice ? 1.3 + 0.2 * Math.sin(i / 10) : 0 });
    }
  }
  return out;
}

/** A frame of samples at `db` dBFS (a constant: only its energy matters to the detector). */
function samplesAt(db: number): Float32Array {
  return new Float32Array(512).fill(10 ** (db / 20));
}

/** Runs the detector over frames; counts how often it asked for a pitch. */
function detect(input: Frame[], vad = new VoiceActivityDetector()): { speech: boolean[]; pitchAsked: number; backdated: number[] } {
  let current = 0;
  let pitchAsked = 0;
  const pitch: FramePitch = {
    currentPitch: () => {
      pitchAsked++;
      return input[current]!.pitch;
    },
  };
  const speech: boolean[] = [];
  const backdated: number[] = [];
  for (current = 0; current < input.length; current++) {
    speech.push(vad.update(samplesAt(input[current]!.db), pitch));
    backdated.push(vad.backdatedFrames);
  }
  return { speech, pitchAsked, backdated };
}

const count = (xs: boolean[]) => xs.filter(Boolean).length;

test('a voice well above a steady noise floor is speech, and it ends after the hangover', () => {
  const { speech } = detect(frames([[2, -50], [1, -25, 'voiced'], [2, -50]]));
  const speechFrames = count(speech);
  assert.ok(speechFrames >= 60 && speechFrames <= 62 + 20, `speech frames ${speechFrames}`);
  assert.equal(speech[speech.length - 1], false);
});

test('a loud stretch with no voice in it is not speech', () => {
  // A door, a keyboard, a burst of noise: as loud as the voice above, but never voiced.
  const { speech } = detect(frames([[2, -50], [1, -25], [2, -50]]));
  assert.equal(count(speech), 0);
});

test('voiced frames that come alone or in pairs, as noise makes them, are not a voice', () => {
  const input = frames([[2, -50], [3, -30], [1, -50]]);
  // Every third frame "voiced" at a random pitch: what white, pink and brown noise give the tracker.
  let seed = 3;
  input.forEach((f, i) => {
    seed = (seed * 16807) % 2147483647;
    if (i % 3 === 0 && f.db > -40) f.pitch = 0.3 + 2.7 * (seed / 2147483647);
  });
  assert.equal(count(detect(input).speech), 0);
});

test('an octave jump of the pitch tracker does not break a voiced run', () => {
  const input = frames([[2, -50], [1, -25, 'voiced'], [2, -50]]);
  // Every other frame read an octave low, as a quiet voice's period counted twice gives.
  input.forEach((f, i) => {
    if (f.pitch > 0 && i % 2 === 0) f.pitch -= 1;
  });
  assert.ok(count(detect(input).speech) >= 60);
});

test('the frames from the onset to the proof of a voice join the utterance', () => {
  // 0.2 s of unvoiced onset (a consonant) before the vowel.
  const input = frames([[2, -50], [0.2, -25], [0.8, -25, 'voiced'], [2, -50]]);
  const { speech, backdated } = detect(input);
  const onset = 125 + DEFAULT_VAD_CONFIG.onsetFrames - 1;
  const proof = speech.indexOf(true);
  assert.ok(proof > onset, 'speech is only known once the voice is heard');
  // Everything from the energy onset on is taken back, and nothing before it.
  assert.equal(backdated[proof], proof - onset);
  assert.equal(backdated.filter((b) => b > 0).length, 1, 'one backdating per utterance');
});

test('no pitch is estimated for frames at the noise floor', () => {
  const { pitchAsked } = detect(frames([[10, -50]]));
  assert.equal(pitchAsked, 0);
});

test('speech in which no voice has been heard for a while ends, though it stays loud', () => {
  // A voice, then a loud unvoiced stretch (an engine) that never stops.
  const { speech } = detect(frames([[2, -50], [1, -25, 'voiced'], [5, -25]]));
  assert.equal(speech[speech.length - 1], false);
  assert.ok(count(speech) <= 62 + DEFAULT_VAD_CONFIG.voiceHoldFrames + 1, `speech frames ${count(speech)}`);
});

test('in a noisy room soft syllables close to the floor stay in the utterance; in a quiet room they do not', () => {
  // Voiced syllables with soft unvoiced stretches between them, 4 dB above the floor.
  const syllables = (floor: number, peak: number) =>
    frames([[2, floor], ...Array.from({ length: 4 }, () => [[0.3, peak, 'voiced'], [0.4, floor + 4]] as [number, number, 'voiced'?][]).flat(), [2, floor]]);
  // Noisy: the voice peaks 14 dB above the floor; quiet: 45 dB.
  const noisy = count(detect(syllables(-40, -26)).speech);
  const quiet = count(detect(syllables(-71, -26)).speech);
  assert.ok(noisy >= 4 * (19 + 25) - 5, `noisy room: ${noisy} speech frames`);
  assert.ok(quiet < noisy, `quiet room: ${quiet} speech frames, noisy ${noisy}`);
});

test('the noise floor adapts to a louder room so constant noise is not speech', () => {
  const vad = new VoiceActivityDetector();
  const { speech } = detect(frames([[10, -35]]), vad);
  assert.equal(count(speech.slice(-300)), 0);
  assert.ok(Math.abs(vad.noiseFloorDb - -35) < 3, `floor ${vad.noiseFloorDb}`);
});

test('digital silence is never speech and its energy is finite', () => {
  const vad = new VoiceActivityDetector();
  const silent = new Float32Array(512);
  assert.ok(Number.isFinite(frameEnergyDb(silent)));
  for (let i = 0; i < 100; i++) assert.equal(vad.update(silent, { currentPitch: () => 1 }), false);
});

test('a gap of digital silence leaves the noise floor where it was, so the room after it is not loud', () => {
  const vad = new VoiceActivityDetector();
  // Room noise at -45 dBFS with a voiced hum in it, a muted second, then the room again.
  const room = (seconds: number) => frames([[seconds, -45, 'voiced']]);
  const silence = Array.from({ length: 62 }, () => ({ db: -200, pitch: 0 }));
  const { speech } = detect([...room(3), ...silence, ...room(3)], vad);
  assert.equal(count(speech), 0);
  assert.ok(Math.abs(vad.noiseFloorDb - -45) < 3, `floor ${vad.noiseFloorDb}`);
});

test('a stream that starts in digital silence hears the first voice at once', () => {
  const silence = Array.from({ length: 125 }, () => ({ db: -200, pitch: 0 }));
  const { speech } = detect([...silence, ...frames([[1, -30, 'voiced'], [1, -70]])]);
  assert.ok(count(speech) >= 60, `${count(speech)} speech frames`);
});

test('a single click does not start an utterance', () => {
  const input = frames([[2, -50], [0.016, -10, 'voiced'], [1, -50]]);
  assert.equal(count(detect(input).speech), 0);
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
