import { seededRandom } from '../datasets/seeded-random.js';

/**
 * A speech-like test signal: a harmonic voice with a wandering pitch, syllable-rate
 * amplitude bursts and pauses, over a low noise floor. It is not speech, but it exercises
 * everything a voice does to the pipeline (VAD onsets, pitch, spectral tilt, loudness),
 * so the demo, the benchmark and the tests need no recordings.
 */
export interface VoiceStyle {
  /** Mean pitch in Hz. */
  f0: number;
  /** Pitch excursion as a fraction of f0. */
  f0Range: number;
  /** Level of the voiced bursts in dBFS (RMS). */
  levelDb: number;
  /** Harmonic k has amplitude k^-tilt: low tilt is a bright, tense voice. */
  tilt: number;
  /** Syllables per second. */
  syllableRate: number;
}

export const VOICE_STYLES = {
  calm: { f0: 120, f0Range: 0.08, levelDb: -28, tilt: 1.8, syllableRate: 3 },
  angry: { f0: 230, f0Range: 0.25, levelDb: -12, tilt: 0.7, syllableRate: 5.5 },
  sad: { f0: 95, f0Range: 0.04, levelDb: -34, tilt: 2.4, syllableRate: 2 },
} satisfies Record<string, VoiceStyle>;

const NOISE_FLOOR_DB = -60;

export function synthesiseVoice(style: VoiceStyle, seconds: number, sampleRate: number, seed = 1): Float32Array {
  const random = seededRandom(seed);
  const n = Math.round(seconds * sampleRate);
  const out = new Float32Array(n);
  const harmonics = Math.max(1, Math.min(30, Math.floor(3800 / style.f0)));
  const amps = Float64Array.from({ length: harmonics }, (_, k) => Math.pow(k + 1, -style.tilt));
  const norm = Math.sqrt(amps.reduce((s, a) => s + a * a, 0) / 2);
  const gain = Math.pow(10, style.levelDb / 20) / norm;
  const noise = Math.pow(10, NOISE_FLOOR_DB / 20) * Math.sqrt(3);
  let phase = 0;
  let pitchWalk = 0;
  let syllablePhase = random();
  for (let i = 0; i < n; i++) {
    if (i % 160 === 0) pitchWalk = 0.95 * pitchWalk + 0.05 * (random() * 2 - 1) * 4;
    const f0 = style.f0 * (1 + style.f0Range * Math.tanh(pitchWalk));
    phase += (2 * Math.PI * f0) / sampleRate;
    if (phase > 2 * Math.PI) phase -= 2 * Math.PI;
    syllablePhase += style.syllableRate / sampleRate;
    // Every fourth syllable is a pause, so the VAD sees utterance ends.
    const syllable = Math.floor(syllablePhase) % 4 === 3 ? 0 : Math.pow(Math.sin(Math.PI * (syllablePhase % 1)), 2);
    let voiced = 0;
    if (syllable > 0) for (let k = 0; k < harmonics; k++) voiced += amps[k]! * Math.sin((k + 1) * phase);
    out[i] = gain * syllable * voiced + noise * (random() * 2 - 1);
  }
  return out;
}
