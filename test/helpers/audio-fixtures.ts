import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wavefile from 'wavefile';
import { seededRandom } from '../../src/datasets/seeded-random.js';

const { WaveFile } = wavefile;

export type WavBitDepth = '8' | '16' | '24' | '32' | '32f' | '64';

/** A sine of `freq` Hz lasting `seconds`, peak `amp`. */
export function sine(freq: number, seconds: number, rate: number, amp = 0.5, phase = 0): Float32Array {
  const length = Math.round(seconds * rate);
  const signal = new Float32Array(length);
  for (let i = 0; i < length; i++) signal[i] = amp * Math.sin(phase + (2 * Math.PI * freq * i) / rate);
  return signal;
}

/** Peak-to-peak / 2 over the middle of a signal, away from start-up and end effects. */
export function amplitude(signal: Float32Array, margin = 0.1): number {
  const from = Math.floor(signal.length * margin);
  const to = Math.ceil(signal.length * (1 - margin));
  let max = -Infinity;
  let min = Infinity;
  for (let i = from; i < to; i++) {
    max = Math.max(max, signal[i]);
    min = Math.min(min, signal[i]);
  }
  return (max - min) / 2;
}

export function rms(signal: Float32Array, margin = 0.1): number {
  const from = Math.floor(signal.length * margin);
  const to = Math.ceil(signal.length * (1 - margin));
  let sum = 0;
  for (let i = from; i < to; i++) sum += signal[i] * signal[i];
  return Math.sqrt(sum / Math.max(1, to - from));
}

/**
 * Dominant frequency from zero crossings of the middle of a signal; good enough for a
 * clean tone and independent of the code under test.
 */
export function zeroCrossingFrequency(signal: Float32Array, rate: number, margin = 0.1): number {
  const from = Math.floor(signal.length * margin);
  const to = Math.ceil(signal.length * (1 - margin));
  let first = -1;
  let last = -1;
  let crossings = 0;
  for (let i = from + 1; i < to; i++) {
    if (signal[i - 1] < 0 && signal[i] >= 0) {
      // Linear interpolation of where the rising crossing happened.
      const at = i - 1 + -signal[i - 1] / (signal[i] - signal[i - 1]);
      if (first < 0) first = at;
      else crossings++;
      last = at;
    }
  }
  return (crossings * rate) / (last - first);
}

/** Integer samples scaled from [-1, 1] floats for wavefile, which writes raw values. */
function toStoredValues(signal: Float32Array, bitDepth: WavBitDepth): Float64Array {
  const out = new Float64Array(signal.length);
  if (bitDepth === '32f' || bitDepth === '64') {
    out.set(signal);
    return out;
  }
  const bits = Number(bitDepth);
  const full = 2 ** (bits - 1);
  for (let i = 0; i < signal.length; i++) {
    const value = Math.round(signal[i] * full);
    const clipped = Math.max(-full, Math.min(full - 1, value));
    // 8-bit WAV is unsigned, centred on 128.
    out[i] = bits === 8 ? clipped + 128 : clipped;
  }
  return out;
}

/** Writes a real WAV file through wavefile: one array per channel, samples in [-1, 1]. */
export async function writeWav(path: string, channels: Float32Array[], rate: number, bitDepth: WavBitDepth = '16'): Promise<string> {
  const wav = new WaveFile();
  wav.fromScratch(channels.length, rate, bitDepth, channels.map((channel) => toStoredValues(channel, bitDepth)));
  await writeFile(path, wav.toBuffer());
  return path;
}

/**
 * Builds WAV bytes by hand, for headers wavefile will not write: WAVE_FORMAT_EXTENSIBLE,
 * mu-law or ADPCM format codes, a data chunk declared longer than it is.
 */
export function handmadeWav(options: {
  formatCode: number;
  channels: number;
  rate: number;
  bitsPerSample: number;
  data: Uint8Array;
  /** Wrap formatCode as the sub-format of a WAVE_FORMAT_EXTENSIBLE header. */
  extensible?: boolean;
  /** Value written as the data chunk size; defaults to data.length. */
  declaredDataBytes?: number;
}): Uint8Array {
  const blockAlign = (options.channels * options.bitsPerSample) / 8;
  const fmtSize = options.extensible ? 40 : 16;
  const buffer = Buffer.alloc(12 + 8 + fmtSize + 8 + options.data.length);
  let at = 0;
  const text = (s: string) => {
    buffer.write(s, at, 'ascii');
    at += 4;
  };
  const u32 = (v: number) => {
    buffer.writeUInt32LE(v, at);
    at += 4;
  };
  const u16 = (v: number) => {
    buffer.writeUInt16LE(v, at);
    at += 2;
  };
  text('RIFF');
  u32(buffer.length - 8);
  text('WAVE');
  text('fmt ');
  u32(fmtSize);
  u16(options.extensible ? 0xfffe : options.formatCode);
  u16(options.channels);
  u32(options.rate);
  u32(options.rate * blockAlign);
  u16(blockAlign);
  u16(options.bitsPerSample);
  if (options.extensible) {
    u16(22);
    u16(options.bitsPerSample);
    u32(options.channels === 2 ? 0x3 : 0x4);
    // KSDATAFORMAT_SUBTYPE GUID: {formatCode-0000-0010-8000-00AA00389B71}
    u32(options.formatCode);
    u16(0x0000);
    u16(0x0010);
    for (const byte of [0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]) buffer[at++] = byte;
  }
  text('data');
  u32(options.declaredDataBytes ?? options.data.length);
  buffer.set(options.data, at);
  return new Uint8Array(buffer);
}

/** Interleaved s16le bytes for channels in [-1, 1], as arecord or a gateway would send them. */
export function s16leBytes(channels: Float32Array[]): Buffer {
  const frames = channels[0].length;
  const bytes = Buffer.alloc(frames * channels.length * 2);
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channels.length; c++) {
      const value = Math.max(-32768, Math.min(32767, Math.round(channels[c][i] * 32768)));
      bytes.writeInt16LE(value, 2 * (i * channels.length + c));
    }
  }
  return bytes;
}

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix = 'ser-edge-audio-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

export function concat(arrays: readonly Float32Array[]): Float32Array {
  const total = arrays.reduce((sum, array) => sum + array.length, 0);
  const whole = new Float32Array(total);
  let at = 0;
  for (const array of arrays) {
    whole.set(array, at);
    at += array.length;
  }
  return whole;
}

export type NoiseColour = 'white' | 'pink' | 'brown';

/**
 * Seeded stationary noise at an RMS level in dBFS (0 dB: a full-scale square wave, as
 * `frameEnergyDb` counts): white (flat), pink (−3 dB per octave, Paul Kellet's filter) or
 * brown (−6 dB per octave above 5 Hz: leaky integrated white noise). Gaussian, clipped to
 * [-1, 1] (which only touches the loudest levels).
 */
export function colouredNoise(colour: NoiseColour, seconds: number, rate: number, levelDb: number, seed = 1): Float32Array {
  const random = seededRandom(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const out = new Float32Array(Math.round(seconds * rate));
  let b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0;
  let sum = 0;
  for (let i = 0; i < out.length; i++) {
    const w = gaussian();
    let v = w;
    if (colour === 'pink') {
      b0 = 0.99886 * b0 + w * 0.0555179;
      b1 = 0.99332 * b1 + w * 0.0750759;
      b2 = 0.969 * b2 + w * 0.153852;
      b3 = 0.8665 * b3 + w * 0.3104856;
      b4 = 0.55 * b4 + w * 0.5329522;
      b5 = -0.7616 * b5 - w * 0.016898;
      v = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362;
      b6 = w * 0.115926;
    } else if (colour === 'brown') {
      b0 = 0.998 * b0 + w;
      v = b0;
    }
    out[i] = v;
    sum += v * v;
  }
  const gain = 10 ** (levelDb / 20) / Math.sqrt(sum / out.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(-1, Math.min(1, out[i]! * gain));
  return out;
}

/** RMS level of a signal in dBFS, as `colouredNoise` sets it. */
export function levelDb(signal: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < signal.length; i++) sum += signal[i]! * signal[i]!;
  return 10 * Math.log10(sum / signal.length);
}

/** `signal` plus `noise` (as long or longer), clipped to [-1, 1]. */
export function mix(signal: Float32Array, noise: Float32Array): Float32Array {
  return signal.map((v, i) => Math.max(-1, Math.min(1, v + noise[i]!)));
}
