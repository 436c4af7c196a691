/**
 * The speech the daemon benchmarks replay: per channel, one caller who opens calmly (the
 * model's caller baseline is the call's first windows) and then swings between angry and
 * neutral, so the urgency level moves often and flags reach the broker all through a run.
 * Real CREMA-D clips when the corpus is beside the clone, else the synthetic voices.
 */
import { readdir } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { loadMono } from '../../src/pipeline/file-features.js';

export interface SpeechClips {
  /** What the clips are, for the report. */
  description: string;
  /** Per speaker: neutral and angry utterances at the model's rate. */
  speakers: { neutral: Float32Array[]; angry: Float32Array[] }[];
}

/** Calm openings before the swings begin: the baseline the shipped model compares against. */
const OPENING_UTTERANCES = 3;

/**
 * Up to `speakers` CREMA-D actors with `perEmotion` neutral and angry sentences each, decoded
 * once; `null` when the folder has too few.
 */
export async function loadCremadClips(dir: string, sampleRate: number, speakers = 8, perEmotion = 4): Promise<SpeechClips | null> {
  const byActor = new Map<string, { neutral: string[]; angry: string[] }>();
  for (const name of (await readdir(dir)).sort()) {
    const match = /^(\d+)_[A-Z]+_(NEU|ANG)_[A-Z]+\.flac$/i.exec(name);
    if (!match) continue;
    const actor = byActor.get(match[1]!) ?? { neutral: [], angry: [] };
    (match[2]!.toUpperCase() === 'NEU' ? actor.neutral : actor.angry).push(join(dir, name));
    byActor.set(match[1]!, actor);
  }
  const chosen = [...byActor.values()].filter((a) => a.neutral.length >= perEmotion && a.angry.length >= perEmotion).slice(0, speakers);
  if (chosen.length === 0) return null;
  const decode = async (paths: string[]) => Promise.all(paths.slice(0, perEmotion).map(async (p) => (await loadMono(p, sampleRate)).samples));
  const loaded = [];
  for (const actor of chosen) loaded.push({ neutral: await decode(actor.neutral), angry: await decode(actor.angry) });
  return { description: `CREMA-D, ${loaded.length} actors, neutral and angry sentences`, speakers: loaded };
}

/** The synthetic calm and angry voices (src/audio/synthetic-voice.ts), 3 s utterances with short pauses. */
export function syntheticClips(sampleRate: number, speakers = 4, perEmotion = 4): SpeechClips {
  const utterance = (style: typeof VOICE_STYLES.calm, seed: number) => {
    const voice = synthesiseVoice(style, 3, sampleRate, seed);
    // A pause after each utterance, as between a caller's sentences.
    const out = new Float32Array(voice.length + Math.round(0.4 * sampleRate));
    out.set(voice);
    return out;
  };
  return {
    description: 'synthetic calm and angry voices (../shared/data/cremad absent)',
    speakers: Array.from({ length: speakers }, (_, s) => ({
      neutral: Array.from({ length: perEmotion }, (_, i) => utterance(VOICE_STYLES.calm, 1000 + 100 * s + i)),
      angry: Array.from({ length: perEmotion }, (_, i) => utterance(VOICE_STYLES.angry, 2000 + 100 * s + i)),
    })),
  };
}

export async function loadSpeechClips(cremadDir: string | undefined, sampleRate: number): Promise<SpeechClips> {
  return (cremadDir !== undefined ? await loadCremadClips(cremadDir, sampleRate) : null) ?? syntheticClips(sampleRate);
}

/**
 * `seconds` of one caller for channel `channel`: its speaker's calm openings, then angry and
 * neutral utterances in turn. Channels sharing a speaker take the utterances in another
 * order and start at another point, so no two channels are in lockstep.
 */
export function callerSignal(clips: SpeechClips, channel: number, seconds: number, sampleRate: number): Float32Array {
  const speaker = clips.speakers[channel % clips.speakers.length]!;
  const turn = Math.floor(channel / clips.speakers.length);
  const out = new Float32Array(Math.round(seconds * sampleRate));
  const pick = (list: Float32Array[], i: number) => list[(i + turn) % list.length]!;
  let at = 0;
  const put = (clip: Float32Array) => {
    const take = Math.min(clip.length, out.length - at);
    out.set(clip.subarray(0, take), at);
    at += take;
  };
  // A lead-in of a few tenths of a second of quiet, different per channel, puts windows at different block offsets.
  at = Math.round(((channel * 37) % 50) * 0.01 * sampleRate);
  for (let i = 0; i < OPENING_UTTERANCES && at < out.length; i++) put(pick(speaker.neutral, i));
  for (let i = 0; at < out.length; i++) {
    put(pick(speaker.angry, i));
    put(pick(speaker.neutral, i + OPENING_UTTERANCES));
  }
  // The lead-in and any unfilled tail hold the same low room noise a headset line carries.
  addRoomNoise(out, channel);
  return out;
}

/** −66 dBFS of noise everywhere: digital silence would make the VAD's noise floor meaningless. */
function addRoomNoise(signal: Float32Array, seed: number): void {
  let state = (seed * 2654435761 + 1) >>> 0;
  const level = 0.0005;
  for (let i = 0; i < signal.length; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    signal[i]! += level * (state / 2 ** 31 - 1);
  }
}

/** Interleaved signed 16-bit little-endian PCM of `channels`, as a capture device or recorder delivers it. */
export function interleaveS16le(channels: Float32Array[]): Buffer {
  const frames = channels[0]?.length ?? 0;
  const n = channels.length;
  const samples = new Int16Array(frames * n);
  for (let c = 0; c < n; c++) {
    const x = channels[c]!;
    for (let i = 0; i < frames; i++) samples[i * n + c] = Math.round(Math.max(-1, Math.min(1, x[i]!)) * 32767);
  }
  // Int16Array is in the machine's byte order; the format is little-endian.
  if (endianness() === 'BE') for (let i = 0; i < samples.length; i++) samples[i] = ((samples[i]! & 0xff) << 8) | ((samples[i]! >> 8) & 0xff);
  return Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength);
}

/** A 16-bit PCM WAV of `channels` (a multichannel capture's recording), as the file source reads it. */
export function wavS16le(channels: Float32Array[], sampleRate: number): Buffer {
  const data = interleaveS16le(channels);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(channels.length, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * channels.length * 2, 28);
  header.writeUInt16LE(channels.length * 2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
