/**
 * Real-time factor of the feature stage per CPU core: seconds of audio analysed per second
 * of CPU time (user + system, process.cpuUsage) for one feature configuration (the shipped
 * model's, or the analyser's full set), every frame extracted, deltas included. Compared
 * with meyda's `extract()` on the same frames and with meyda's FFT (fftjs) on the same
 * transform.
 *
 *   npm run build && node dist/scripts/bench/bench-features.js [--seconds 60] [--real-speech DIR] [--preset full|prosody|…]
 */
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import meydaModule from 'meyda';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../../src/features/feature-config.js';
import { FrameAnalyser, fillDeltas, frameCount } from '../../src/features/frame-analyser.js';
import { RealFft } from '../../src/features/fft.js';
import { loadMono } from '../../src/pipeline/file-features.js';
import { seededRandom } from '../../src/datasets/seeded-random.js';

export interface FeatureBenchResult {
  /** Audio seconds per CPU second, generated speech-like signal (median of the runs). */
  features_rtf: number;
  features_rtf_runs: number[];
  /** The same on real speech read from `realSpeechDir` (16 kHz FLAC), when given. */
  features_rtf_real?: number;
  real_speech_seconds?: number;
  /** CPU microseconds per frame, everything included (median run). */
  us_per_frame: number;
  /** Only the per-hop energy check a VAD would run on every frame. */
  energy_check_us_per_frame: number;
  /** meyda `extract()` for its share of the features (no contrast, tonnetz or deltas). */
  meyda_extract_rtf: number;
  /** CPU µs per power + amplitude spectrum of one frame: ours, and meyda's fftjs. */
  fft_us: number;
  fftjs_us: number;
  audio_seconds: number;
  frame_vector_size: number;
  config: FeatureConfig;
}

// meyda's typings describe its ESM build; under Node the package is its CommonJS build,
// whose module.exports is the Meyda object itself.
const Meyda = meydaModule as unknown as (typeof meydaModule)['default'];

const random = seededRandom;

/**
 * Speech-like audio: syllables of ~200 ms voiced by a 110–220 Hz glottal source with
 * vibrato and formant-like harmonic weights, fricative noise bursts, pauses and a low
 * noise floor. The content only has to exercise every code path with realistic levels.
 */
export function speechLikeSignal(seconds: number, sampleRate: number, seed = 1): Float32Array {
  const next = random(seed);
  const x = new Float32Array(Math.round(seconds * sampleRate));
  let phase = 0;
  let i = 0;
  while (i < x.length) {
    const kind = next();
    const length = Math.min(x.length - i, Math.round(sampleRate * (0.08 + 0.25 * next())));
    const f0 = 110 + 110 * next();
    const formant1 = 300 + 600 * next();
    const formant2 = 900 + 1600 * next();
    const level = 0.05 + 0.4 * next();
    for (let n = 0; n < length; n++, i++) {
      const envelope = Math.sin((Math.PI * n) / length);
      let v = 0.001 * (next() * 2 - 1);
      if (kind < 0.6) {
        phase += (2 * Math.PI * f0 * (1 + 0.02 * Math.sin((2 * Math.PI * 5.5 * i) / sampleRate))) / sampleRate;
        for (let h = 1; h * f0 < 4000; h++) {
          const f = h * f0;
          const weight = 1 / h + 2 * Math.exp(-(((f - formant1) / 150) ** 2)) + Math.exp(-(((f - formant2) / 200) ** 2));
          v += 0.1 * weight * Math.sin(h * phase);
        }
        v *= level * envelope;
      } else if (kind < 0.8) {
        v += level * 0.5 * envelope * (next() * 2 - 1);
      }
      x[i] = v;
    }
  }
  return x;
}

function cpuSeconds(run: () => void): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Streams `signal` through one analyser in 100 ms blocks, extracting every frame. */
function analyseAll(analyser: FrameAnalyser, signal: Float32Array, rows: Float32Array, blockSize: number): number {
  analyser.reset();
  const dim = analyser.dim;
  const onFrame = (_frame: Float32Array, index: number) => analyser.extract(rows, index * dim);
  for (let at = 0; at < signal.length; at += blockSize) analyser.push(signal.subarray(at, Math.min(signal.length, at + blockSize)), onFrame);
  fillDeltas(rows, analyser.framesSeen, analyser.config);
  return analyser.framesSeen;
}

function measureRtf(signal: Float32Array, config: FeatureConfig, runs: number): { rtfs: number[]; usPerFrame: number } {
  const analyser = new FrameAnalyser(config);
  const frames = frameCount(signal.length, config);
  const rows = new Float32Array(frames * analyser.dim);
  const block = Math.round(config.sampleRate / 10);
  // Warm-up: let the JIT optimise the hot loops before timing.
  analyseAll(analyser, signal.subarray(0, Math.min(signal.length, config.sampleRate * 10)), rows, block);
  const seconds = signal.length / config.sampleRate;
  const cpu: number[] = [];
  for (let r = 0; r < runs; r++) cpu.push(cpuSeconds(() => analyseAll(analyser, signal, rows, block)));
  const rtfs = cpu.map((c) => seconds / c);
  return { rtfs, usPerFrame: (median(cpu) / frames) * 1e6 };
}

function measureEnergyCheck(signal: Float32Array, config: FeatureConfig): number {
  const analyser = new FrameAnalyser(config);
  let sink = 0;
  const onFrame = () => {
    sink += analyser.frameEnergyDb();
  };
  analyser.push(signal, onFrame);
  analyser.reset();
  const cpu = cpuSeconds(() => analyser.push(signal, onFrame));
  if (Number.isNaN(sink)) throw new Error('energy check produced NaN');
  return (cpu / analyser.framesSeen) * 1e6;
}

function measureMeyda(signal: Float32Array, config: FeatureConfig): number {
  Meyda.bufferSize = config.frameSize;
  Meyda.sampleRate = config.sampleRate;
  Meyda.melBands = config.melBands;
  Meyda.numberOfMFCCCoefficients = config.mfccCount;
  Meyda.windowingFunction = 'hanning';
  const features = ['mfcc', 'melBands', 'chroma', 'rms', 'zcr', 'spectralCentroid', 'spectralRolloff', 'spectralFlatness'] as const;
  const run = (s: Float32Array) => {
    for (let at = 0; at + config.frameSize <= s.length; at += config.hopSize) Meyda.extract([...features], s.subarray(at, at + config.frameSize));
  };
  run(signal.subarray(0, config.sampleRate));
  return signal.length / config.sampleRate / cpuSeconds(() => run(signal));
}

function measureFfts(size: number): { ours: number; fftjs: number } {
  const next = random(3);
  const input = new Float64Array(size).map(() => next() * 2 - 1);
  const fft = new RealFft(size);
  const power = new Float64Array(size / 2 + 1);
  const amplitude = new Float64Array(size / 2 + 1);
  const iterations = 20000;
  const ours = () => {
    for (let i = 0; i < iterations; i++) fft.forwardPower(input, power, amplitude);
  };
  ours();
  const oursUs = (cpuSeconds(ours) / iterations) * 1e6;
  // fftjs is meyda's own dependency: the FFT behind meyda's extract().
  const { fft: fftjs } = createRequire(import.meta.url)('fftjs') as { fft: (x: ArrayLike<number>) => { real: number[]; imag: number[] } };
  const theirs = () => {
    for (let i = 0; i < iterations / 4; i++) {
      const c = fftjs(input);
      for (let k = 0; k <= size / 2; k++) {
        power[k] = c.real[k]! * c.real[k]! + c.imag[k]! * c.imag[k]!;
        amplitude[k] = Math.sqrt(power[k]!);
      }
    }
  };
  theirs();
  const fftjsUs = (cpuSeconds(theirs) / (iterations / 4)) * 1e6;
  return { ours: oursUs, fftjs: fftjsUs };
}

async function flacFiles(dir: string, limit: number): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (found.length >= limit) return;
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.toLowerCase().endsWith('.flac')) found.push(path);
    }
  };
  await walk(dir);
  return found.sort();
}

/** Up to `seconds` of real speech: the directory's recordings, decoded by the daemon's own decoder, concatenated. */
export async function loadRealSpeech(dir: string, seconds: number, sampleRate: number): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  let total = 0;
  for (const file of await flacFiles(dir, 2000)) {
    if (total >= seconds * sampleRate) break;
    const audio = await loadMono(file, sampleRate);
    parts.push(audio.samples);
    total += audio.samples.length;
  }
  const signal = new Float32Array(Math.min(total, Math.round(seconds * sampleRate)));
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.length, signal.length - at);
    signal.set(p.subarray(0, take), at);
    at += take;
  }
  return signal;
}

export async function benchFeatures(opts: { config?: FeatureConfig; seconds?: number; realSpeechDir?: string } = {}): Promise<FeatureBenchResult> {
  const config = opts.config ?? DEFAULT_FEATURE_CONFIG;
  const seconds = opts.seconds ?? 60;
  const signal = speechLikeSignal(seconds, config.sampleRate);
  const synthetic = measureRtf(signal, config, 5);
  const ffts = measureFfts(config.fftSize);
  const result: FeatureBenchResult = {
    features_rtf: Math.round(median(synthetic.rtfs)),
    features_rtf_runs: synthetic.rtfs.map(Math.round),
    us_per_frame: Number(synthetic.usPerFrame.toFixed(2)),
    energy_check_us_per_frame: Number(measureEnergyCheck(signal, config).toFixed(3)),
    meyda_extract_rtf: Number(measureMeyda(signal.subarray(0, 5 * config.sampleRate), config).toFixed(1)),
    fft_us: Number(ffts.ours.toFixed(3)),
    fftjs_us: Number(ffts.fftjs.toFixed(3)),
    audio_seconds: seconds,
    frame_vector_size: new FrameAnalyser(config).dim,
    config,
  };
  if (opts.realSpeechDir !== undefined) {
    const speech = await loadRealSpeech(opts.realSpeechDir, seconds, config.sampleRate);
    if (speech.length >= config.sampleRate) {
      result.features_rtf_real = Math.round(median(measureRtf(speech, config, 3).rtfs));
      result.real_speech_seconds = Number((speech.length / config.sampleRate).toFixed(1));
    }
  }
  return result;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seconds = value('--seconds');
  const realSpeechDir = value('--real-speech');
  const preset = value('--preset');
  const { FEATURE_PRESETS } = await import('../../src/training/feature-presets.js');
  if (preset !== undefined && !(preset in FEATURE_PRESETS)) throw new Error(`--preset ${preset}: use one of ${Object.keys(FEATURE_PRESETS).join(', ')}`);
  const result = await benchFeatures({
    ...(preset !== undefined ? { config: FEATURE_PRESETS[preset as keyof typeof FEATURE_PRESETS] } : {}),
    ...(seconds !== undefined ? { seconds: Number(seconds) } : {}),
    ...(realSpeechDir !== undefined ? { realSpeechDir } : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}
