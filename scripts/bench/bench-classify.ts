import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { chooseScale, quantiseInto } from '../../src/model/int8.js';
import { Int8NeighbourSearch } from '../../src/model/int8-neighbour-search.js';
import type { Classifier } from '../../src/model/classifier.js';
import { streamWindows } from '../../src/pipeline/file-features.js';
import { judgeWindow } from '../../src/pipeline/window-verdict.js';
import { DEFAULT_URGENCY_WEIGHTS, weightsForLabels } from '../../src/urgency/urgency-score.js';
import { seededRandom } from '../../src/datasets/seeded-random.js';
import { cpuSeconds, cpuSecondsPerCall } from './cpu-time.js';

/** One query against `count` random int8 references of `dim` dimensions, in milliseconds. */
export function benchKnnQuery(count: number, dim: number, k: number, metric: 'l1' | 'l2'): number {
  const random = seededRandom(3);
  const values = Float32Array.from({ length: count * dim }, () => random() * 4 - 2);
  const refs = new Int8Array(values.length);
  quantiseInto(values, chooseScale(values), refs);
  const search = new Int8NeighbourSearch(refs, dim, k);
  const queries = Array.from({ length: 16 }, (_, q) => refs.slice(q * dim, (q + 1) * dim));
  let q = 0;
  const perCall = cpuSecondsPerCall(() => search.search(queries[q++ % queries.length]!, k, metric));
  return perCall * 1000;
}

/** A 60 s signal that is speech most of the time, alternating calm and angry voices. */
export function benchSignal(seconds: number, sampleRate: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * sampleRate));
  const piece = 10 * sampleRate;
  for (let at = 0, i = 0; at < out.length; at += piece, i++) {
    const style = i % 2 ? VOICE_STYLES.angry : VOICE_STYLES.calm;
    out.set(synthesiseVoice(style, 10, sampleRate, i + 1).subarray(0, out.length - at), at);
  }
  return out;
}

/**
 * Seconds of audio per CPU second through VAD → features → model → urgency score. The
 * daemon runs for months, so the figure is the steady state: one warm-up pass for the
 * JIT, then the median of five passes.
 */
export function benchClassifyPath(classifier: Classifier, signal: Float32Array): { rtf: number; windows: number } {
  const labelWeights = weightsForLabels(classifier.labels, DEFAULT_URGENCY_WEIGHTS);
  let windows = 0;
  const pass = () =>
    cpuSeconds(() => {
      windows = streamWindows(signal, { features: classifier.manifest.features }, (w) => {
        judgeWindow(classifier, w, labelWeights);
      });
    });
  pass();
  const times = Array.from({ length: 5 }, pass).sort((a, b) => a - b);
  return { rtf: signal.length / classifier.manifest.features.sampleRate / times[2]!, windows };
}
