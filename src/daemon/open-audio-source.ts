import type { AudioSource } from '../audio/audio-source.js';
import { samplesPerBlock } from '../audio/block-assembler.js';
import { FileSource, openFileSource } from '../audio/file-source.js';
import { openMicrophoneSource } from '../audio/microphone-source.js';
import { openStdinSource } from '../audio/stdin-source.js';
import { DEMO_VOICE, synthesiseVoice } from '../audio/synthetic-voice.js';
import type { SourceConfig } from '../config/daemon-config.js';

/** Opens the capture a source config describes, yielding blocks at the model's rate. */
export async function openAudioSource(source: SourceConfig, sampleRate: number, blockMs: number): Promise<AudioSource> {
  switch (source.type) {
    case 'microphone':
      return openMicrophoneSource({
        recorder: source.recorder,
        channels: source.channelCount,
        sampleRate,
        blockMs,
        ...(source.device !== undefined ? { device: source.device } : {}),
        ...(source.inputRate !== undefined ? { inputRate: source.inputRate } : {}),
      });
    case 'file':
      return openFileSource(source.path, { sampleRate, blockMs, realtime: source.realtime, loop: source.loop });
    case 'stdin':
      return openStdinSource({ inputRate: source.inputRate, channels: source.channelCount, sampleRate, blockMs });
    case 'demo':
      return openDemoSource(source.calmSeconds, source.angrySeconds, sampleRate, blockMs);
  }
}

/**
 * The demo voice per length and rate, synthesised once: it takes half a second of CPU,
 * and a lab config with hundreds of demo sources must not spend minutes on it (nor hold
 * a copy per source). Sources only read it.
 */
const demoVoices = new Map<string, Float32Array>();

/** One cycle of the demo caller, `calmSeconds` calm then `angrySeconds` angry: the samples a demo source replays (shared, read only). */
export function demoVoice(calmSeconds: number, angrySeconds: number, sampleRate: number): Float32Array {
  const key = `${calmSeconds}:${angrySeconds}:${sampleRate}`;
  let voice = demoVoices.get(key);
  if (voice === undefined) {
    const calm = synthesiseVoice(DEMO_VOICE.calm, calmSeconds, sampleRate, 11);
    const angry = synthesiseVoice(DEMO_VOICE.angry, angrySeconds, sampleRate, 12);
    voice = new Float32Array(calm.length + angry.length);
    voice.set(calm);
    voice.set(angry, calm.length);
    demoVoices.set(key, voice);
  }
  return voice;
}

/**
 * A caller who starts calm and turns angry, looping in real time: the demo channel of
 * `npx ser-edge run`, where each cycle raises a flag and the calm part lets it clear.
 */
export function openDemoSource(calmSeconds: number, angrySeconds: number, sampleRate: number, blockMs: number): FileSource {
  return new FileSource({
    description: 'demo:calm-then-angry',
    channels: [demoVoice(calmSeconds, angrySeconds, sampleRate)],
    sampleRate,
    blockSize: samplesPerBlock(sampleRate, blockMs),
    realtime: true,
    loop: true,
  });
}

/** Sources that deliver at wall-clock pace, where falling behind means lag. */
export function isLive(source: SourceConfig): boolean {
  return source.type !== 'file' || source.realtime;
}

/** Sources that end by themselves (a file without loop, stdin at EOF) rather than fail. */
export function canEnd(source: SourceConfig): boolean {
  return (source.type === 'file' && !source.loop) || source.type === 'stdin';
}

export function describeSource(source: SourceConfig): string {
  switch (source.type) {
    case 'microphone':
      return `mic:${source.device ?? 'default'}`;
    case 'file':
      return source.path;
    case 'stdin':
      return 'stdin';
    case 'demo':
      return 'demo:calm-then-angry';
  }
}
