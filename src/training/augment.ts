import { createHash } from 'node:crypto';
import { resample } from '../audio/resampler.js';
import { seededRandom } from '../datasets/seeded-random.js';

/**
 * Training-side audio augmentation. Every copy of a clip is a pure function of the clip's
 * samples, the augmentation's name and a seed derived from the clip's path, so a cached
 * copy is the copy a fresh run would make, and runs are reproducible.
 */
export const AUGMENTATIONS = ['noise', 'shift', 'speed', 'telephone'] as const;
export type AugmentationName = (typeof AUGMENTATIONS)[number];

/** One concrete transform with its drawn parameters; `key` names it in the feature cache. */
export interface Augmentation {
  key: string;
  apply(samples: Float32Array, sampleRate: number): Float32Array;
}

/** SNRs (dB) of the additive-noise copies: from a noisy call-centre floor to a quiet room. */
const NOISE_SNRS = [5, 10, 15, 20];
const SPEEDS = [0.9, 0.95, 1.05, 1.1];

export function seedFor(...parts: string[]): number {
  return createHash('sha256').update(parts.join('\0')).digest().readUInt32LE(0);
}

function rmsOf(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, x.length));
}

/** Adds white-ish noise (a first-order low-passed white noise, closer to room noise) at `snrDb` below the clip's RMS. */
export function addNoise(samples: Float32Array, snrDb: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const target = rmsOf(samples) * Math.pow(10, -snrDb / 20);
  const noise = new Float32Array(samples.length);
  let prev = 0;
  for (let i = 0; i < noise.length; i++) {
    prev = 0.5 * prev + (random() * 2 - 1);
    noise[i] = prev;
  }
  const gain = target / (rmsOf(noise) || 1);
  const out = new Float32Array(samples.length);
  for (let i = 0; i < out.length; i++) out[i] = samples[i]! + gain * noise[i]!;
  return out;
}

/** Moves the clip later (positive) or earlier (negative) by `seconds`, padding with silence. */
export function timeShift(samples: Float32Array, seconds: number, sampleRate: number): Float32Array {
  const n = Math.round(Math.abs(seconds) * sampleRate);
  if (seconds >= 0) {
    const out = new Float32Array(samples.length + n);
    out.set(samples, n);
    return out;
  }
  return samples.slice(Math.min(n, samples.length));
}

/** Plays the clip `factor` times faster (pitch moves with it, as in Kaldi's speed perturbation). */
export function changeSpeed(samples: Float32Array, factor: number, sampleRate: number): Float32Array {
  return resample(samples, Math.round(sampleRate * factor), sampleRate);
}

/** RBJ biquad, direct form I, in place. */
function biquad(x: Float32Array, b0: number, b1: number, b2: number, a1: number, a2: number): void {
  let x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    const y0 = b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
    x2 = x1;
    x1 = x0;
    y2 = y1;
    y1 = y0;
    x[i] = y0;
  }
}

function highPass(x: Float32Array, f: number, rate: number): void {
  const w = (2 * Math.PI * f) / rate, alpha = Math.sin(w) / (2 * Math.SQRT1_2), c = Math.cos(w), a0 = 1 + alpha;
  biquad(x, (1 + c) / 2 / a0, -(1 + c) / a0, (1 + c) / 2 / a0, (-2 * c) / a0, (1 - alpha) / a0);
}

function lowPass(x: Float32Array, f: number, rate: number): void {
  const w = (2 * Math.PI * f) / rate, alpha = Math.sin(w) / (2 * Math.SQRT1_2), c = Math.cos(w), a0 = 1 + alpha;
  biquad(x, (1 - c) / 2 / a0, (1 - c) / a0, (1 - c) / 2 / a0, (-2 * c) / a0, (1 - alpha) / a0);
}

const MU = 255;

/** G.711-style mu-law: compress, quantise to 8 bits, expand. */
export function muLawRoundTrip(x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = Math.max(-1, Math.min(1, x[i]!));
    const c = (Math.sign(v) * Math.log1p(MU * Math.abs(v))) / Math.log1p(MU);
    const q = Math.round(c * 127) / 127;
    x[i] = (Math.sign(q) * (Math.pow(1 + MU, Math.abs(q)) - 1)) / MU;
  }
}

/**
 * What a caller on the public network sounds like at the headset: band-pass 300–3400 Hz
 * (two 2nd-order sections each side), an 8 kHz round trip through the project's resampler,
 * and 8-bit mu-law companding. `eval --channel telephone` applies exactly this.
 */
export function telephoneBand(samples: Float32Array, sampleRate: number): Float32Array {
  const x = samples.slice();
  for (let i = 0; i < 2; i++) {
    highPass(x, 300, sampleRate);
    lowPass(x, 3400, sampleRate);
  }
  const narrow = sampleRate === 8000 ? x : resample(x, sampleRate, 8000);
  muLawRoundTrip(narrow);
  return sampleRate === 8000 ? narrow : resample(narrow, 8000, sampleRate);
}

/** The augmentation `name` with parameters drawn for one clip (`clipKey`, e.g. its path). */
export function drawAugmentation(name: AugmentationName, clipKey: string): Augmentation {
  const seed = seedFor(clipKey, name);
  const random = seededRandom(seed);
  switch (name) {
    case 'noise': {
      const snr = NOISE_SNRS[Math.floor(random() * NOISE_SNRS.length)]!;
      return { key: `noise:${snr}:${seed}`, apply: (s) => addNoise(s, snr, seed) };
    }
    case 'shift': {
      const seconds = Number(((random() * 2 - 1) * 0.5).toFixed(3));
      return { key: `shift:${seconds}`, apply: (s, rate) => timeShift(s, seconds, rate) };
    }
    case 'speed': {
      const factor = SPEEDS[Math.floor(random() * SPEEDS.length)]!;
      return { key: `speed:${factor}`, apply: (s, rate) => changeSpeed(s, factor, rate) };
    }
    case 'telephone': {
      // Real telephone calls also carry line noise; a mild one is added before the codec.
      const snr = 20 + Math.floor(random() * 3) * 5;
      return { key: `telephone:${snr}:${seed}`, apply: (s, rate) => telephoneBand(addNoise(s, snr, seed), rate) };
    }
  }
}

export function parseAugmentations(value: string): AugmentationName[] {
  if (value === 'none' || value === '') return [];
  const names = value.split(',').map((s) => s.trim());
  for (const n of names) if (!(AUGMENTATIONS as readonly string[]).includes(n)) throw new Error(`--augment: "${n}" is not one of ${AUGMENTATIONS.join(', ')} (or none)`);
  return names as AugmentationName[];
}
