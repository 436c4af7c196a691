/**
 * What the voice-activity detector's voicing check costs the feature stage: the rate of
 * `SpeechFeatureStream` (VAD → features of the speech frames, the code the daemon runs)
 * with the detector asking the pitch tracker as it does live, against the same stream
 * with the detector's pitch answers replayed from a first pass. The replay makes exactly
 * the same decisions (checked: the same windows, the same speech frames) and computes no
 * pitch for the detector, so the difference is the voicing check alone. Features that
 * include pitch still compute it for speech frames in both passes, which is why the
 * shipped set, whose pitch the detector shares, pays almost nothing.
 */
import type { FeatureConfig } from '../../src/features/feature-config.js';
import { SpeechFeatureStream, type SpeechWindow } from '../../src/pipeline/speech-feature-stream.js';
import { cpuSeconds } from './cpu-time.js';

export interface VoicingCost {
  /** Audio seconds per CPU second through the stream, as the daemon runs it (median of 5). */
  stream_rtf: number;
  /** The same with the detector's pitch answers replayed: the stream without the voicing check's cost. */
  stream_rtf_without_voicing: number;
  /** 100 · (1 − stream_rtf / stream_rtf_without_voicing). */
  cost_percent: number;
  /** Pitch estimates the detector asked for, per second of audio. */
  pitch_asks_per_s: number;
  windows: number;
}

/** Stands in for the detector's pitch source: the live analyser's, recording or replaying its answers. */
type PitchHook = { currentPitch(): number };

export function benchVoicingCost(signal: Float32Array, features: FeatureConfig): VoicingCost {
  const seconds = signal.length / features.sampleRate;
  const block = Math.round(features.sampleRate / 10);
  const answers: number[] = [];

  const pass = (mode: 'live' | 'record' | 'replay') => {
    const stream = new SpeechFeatureStream({ features });
    // The analyser is the detector's pitch source (SpeechFeatureStream passes it to
    // vad.update); extract() reads its pitch through another path, so replacing
    // currentPitch changes what the detector costs and nothing the features compute.
    const analyser = (stream as unknown as { analyser: PitchHook }).analyser;
    const live = analyser.currentPitch.bind(analyser);
    let asked = 0;
    // Every mode puts its own function on the instance, so the analyser has the same shape in all three.
    if (mode === 'live') {
      analyser.currentPitch = () => live();
    } else if (mode === 'record') {
      analyser.currentPitch = () => {
        const f0 = live();
        answers.push(f0);
        return f0;
      };
    } else if (mode === 'replay') {
      analyser.currentPitch = () => answers[asked++]!;
    }
    let windows = 0;
    const sink = (_: SpeechWindow) => {
      windows++;
    };
    const cpu = cpuSeconds(() => {
      for (let i = 0; i < signal.length; i += block) stream.push(signal.subarray(i, i + block), sink);
      stream.end(sink);
    });
    return { cpu, windows, speechFrames: stream.speechFrames };
  };

  const recorded = pass('record');
  // Warm-up of both variants, then alternate so that a change in the machine's load hits both.
  pass('live');
  pass('replay');
  const live: number[] = [];
  const replayed: number[] = [];
  for (let r = 0; r < 5; r++) {
    const a = pass('live');
    const b = pass('replay');
    if (a.windows !== recorded.windows || b.windows !== recorded.windows || b.speechFrames !== recorded.speechFrames) {
      throw new Error(`the replayed detector decided differently (${b.windows} windows, ${b.speechFrames} speech frames; live ${a.windows}, ${recorded.speechFrames})`);
    }
    live.push(a.cpu);
    replayed.push(b.cpu);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  const withVoicing = seconds / median(live);
  const without = seconds / median(replayed);
  return {
    stream_rtf: Math.round(withVoicing),
    stream_rtf_without_voicing: Math.round(without),
    cost_percent: Number((100 * (1 - withVoicing / without)).toFixed(1)),
    pitch_asks_per_s: Math.round(answers.length / seconds),
    windows: recorded.windows,
  };
}
