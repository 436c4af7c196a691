import { featureLayout, frameVectorSize, parseFeatureConfig, type FeatureConfig, type FeatureName } from './feature-config.js';
import { RealFft } from './fft.js';
import { chromaFilterBank, melFilterBank, type SparseFilterBank } from './filter-bank.js';
import { analysisWindow } from './window.js';
import { chroma } from './extractors/chroma.js';
import { htkDeltas } from './extractors/deltas.js';
import { logMelBands } from './extractors/log-mel.js';
import { dctTable, mfcc, type DctTable } from './extractors/mfcc.js';
import { rms } from './extractors/rms.js';
import { spectralCentroid } from './extractors/spectral-centroid.js';
import { contrastBands, spectralContrast, type ContrastBands } from './extractors/spectral-contrast.js';
import { spectralFlatness } from './extractors/spectral-flatness.js';
import { spectralRolloff } from './extractors/spectral-rolloff.js';
import { tonnetz } from './extractors/tonnetz.js';
import { zcr } from './extractors/zcr.js';
import { pitch, pitchScratch, type PitchScratch } from './extractors/pitch.js';

/**
 * Called once per completed hop with the raw (unwindowed) frame, which the analyser reuses:
 * read it, or call `frameEnergyDb()` / `extract()`, before the next `push`, never keep it.
 */
export type FrameCallback = (frame: Float32Array, index: number) => void;

/** Mean-square level of the floor of `frameEnergyDb`: −100 dBFS. */
const ENERGY_FLOOR = 1e-10;

/**
 * Streaming per-frame feature extraction for one channel.
 *
 * Frames are `frameSize` samples starting every `hopSize` samples from the first sample
 * pushed (no centring or padding: frame i covers samples [i·hop, i·hop + frameSize)).
 * Each completed frame is handed to the caller's callback, which decides what to pay for:
 * `frameEnergyDb()` costs one pass over the samples (for a voice-activity gate),
 * `extract()` the full feature set. Everything is allocated in the constructor.
 *
 * `extract` fills every column except `mfcc_delta`, which it sets to 0: deltas need the
 * frames after this one, so they are computed over a finished window of frame vectors by
 * `fillDeltas` (no added latency per frame; a window's last `deltaWidth` frames see its
 * last frame repeated, exactly as the first ones see its first frame).
 */
export class FrameAnalyser {
  readonly config: FeatureConfig;
  /** Frame vector length, `frameVectorSize(config)`. */
  readonly dim: number;
  readonly layout: readonly { name: FeatureName; offset: number; width: number }[];

  private readonly frameSize: number;
  private readonly hopSize: number;
  private readonly buffer: Float32Array;
  private fill = 0;
  private completed = 0;

  private readonly window: Float64Array;
  /** The windowed frame, zero-padded to fftSize. */
  private readonly windowed: Float64Array;
  private readonly fft: RealFft | null;
  private readonly power: Float64Array;
  private readonly amplitude: Float64Array;
  /** meyda's spectra drop the Nyquist bin: its features see fftSize/2 bins. */
  private readonly meydaBins: number;

  private readonly melBank: SparseFilterBank | null;
  private readonly logMel: Float64Array;
  private readonly dct: DctTable | null;
  private readonly chromaBank: SparseFilterBank | null;
  private readonly chroma: Float64Array;
  private readonly contrast: ContrastBands | null;
  private readonly contrastTop: Float64Array;
  private readonly contrastBottom: Float64Array;
  /** Always built: the voice-activity detector asks for pitch whatever the features are. */
  private readonly pitchScratch: PitchScratch;
  /** The current frame's pitch columns, computed once whoever asks first (detector or extract). */
  private readonly pitchValues = new Float64Array(2);
  /** `completed` when `pitchValues` were computed: they belong to that frame only. */
  private pitchOfFrame = -1;

  /** Column offset of each feature, −1 when not configured. */
  private readonly at: Record<FeatureName, number>;
  private readonly needsAmplitude: boolean;
  /** Where `fillDeltas` reads mfcc and writes mfcc_delta; null without mfcc_delta. */
  private readonly deltaColumns: DeltaColumns | null;

  constructor(config: FeatureConfig) {
    this.config = parseFeatureConfig(config, 'FrameAnalyser');
    const c = this.config;
    this.layout = featureLayout(c);
    this.dim = frameVectorSize(c);
    this.at = { mfcc: -1, mfcc_delta: -1, log_mel: -1, chroma: -1, contrast: -1, tonnetz: -1, rms: -1, zcr: -1, centroid: -1, rolloff: -1, flatness: -1, pitch: -1 };
    for (const f of this.layout) this.at[f.name] = f.offset;
    const has = (n: FeatureName) => this.at[n] >= 0;
    this.deltaColumns = deltaColumns(this.layout);

    this.frameSize = c.frameSize;
    this.hopSize = c.hopSize;
    this.buffer = new Float32Array(c.frameSize);
    this.window = analysisWindow(c.window, c.frameSize);
    this.windowed = new Float64Array(c.fftSize);

    const needsMel = has('mfcc') || has('log_mel');
    const needsChroma = has('chroma') || has('tonnetz');
    this.needsAmplitude = needsChroma || has('contrast') || has('centroid') || has('rolloff') || has('flatness');
    const needsSpectrum = needsMel || this.needsAmplitude;
    if (needsSpectrum && c.fftSize < 4) throw new RangeError(`FrameAnalyser: fftSize ${c.fftSize} is too small for spectral features (need ≥ 4)`);
    this.fft = needsSpectrum ? new RealFft(c.fftSize) : null;
    this.meydaBins = c.fftSize / 2;
    this.power = new Float64Array(c.fftSize / 2 + 1);
    this.amplitude = new Float64Array(c.fftSize / 2 + 1);

    this.melBank = needsMel ? melFilterBank(c.melBands, c.sampleRate, c.fftSize) : null;
    this.logMel = new Float64Array(c.melBands);
    this.dct = has('mfcc') ? dctTable(c.mfccCount, c.melBands) : null;
    this.chromaBank = needsChroma ? chromaFilterBank(c.sampleRate, c.fftSize) : null;
    this.chroma = new Float64Array(12);
    this.contrast = has('contrast') ? contrastBands(c.sampleRate, c.fftSize, c.contrastBands) : null;
    const q = this.contrast?.maxQuantileBins ?? 1;
    this.contrastTop = new Float64Array(q);
    this.contrastBottom = new Float64Array(q);
    this.pitchScratch = pitchScratch(c.frameSize);
  }

  /** Frames completed since construction or `reset()`; the last one had index `framesSeen − 1`. */
  get framesSeen(): number {
    return this.completed;
  }

  /** Forgets buffered samples and the frame count, e.g. at a call boundary. */
  reset(): void {
    this.fill = 0;
    this.completed = 0;
    this.pitchOfFrame = -1;
  }

  /**
   * Appends samples (any length, including 0) and calls `onFrame` for every frame they
   * complete, in order. `onFrame` must not call `push` itself.
   */
  push(samples: Float32Array, onFrame: FrameCallback): void {
    const buffer = this.buffer;
    const frameSize = this.frameSize;
    const n = samples.length;
    let i = 0;
    while (i < n) {
      // The last completed frame stays in place until new samples need the room, so
      // `extract()` keeps working on it after `push` returns.
      if (this.fill === frameSize) {
        buffer.copyWithin(0, this.hopSize, frameSize);
        this.fill = frameSize - this.hopSize;
      }
      let fill = this.fill;
      const take = Math.min(frameSize - fill, n - i);
      for (const end = i + take; i < end; ) buffer[fill++] = samples[i++]!;
      this.fill = fill;
      if (fill === frameSize) onFrame(buffer, this.completed++);
    }
  }

  /** True while the most recently completed frame is still available to `extract`. */
  get hasFrame(): boolean {
    return this.fill === this.frameSize;
  }

  /**
   * Level of the current frame's raw samples in dBFS: 10·log10(mean square), where a
   * full-scale square wave is 0 dB and a full-scale sine −3 dB; floored at −100 dB.
   */
  frameEnergyDb(): number {
    const buffer = this.buffer;
    let sum = 0;
    for (let i = 0; i < this.frameSize; i++) sum += buffer[i]! * buffer[i]!;
    return 10 * Math.log10(Math.max(sum / this.frameSize, ENERGY_FLOOR));
  }

  /**
   * log2(F0 / 50 Hz) of the current frame when voiced, 0 when not: the pitch feature's
   * first column, for the voice-activity detector. Computed once per frame, and shared
   * with `extract` when the features include pitch.
   */
  currentPitch(): number {
    if (this.fill !== this.frameSize) throw new Error('FrameAnalyser.currentPitch: no completed frame (call it from the push callback)');
    return this.currentPitchValues()[0]!;
  }

  /**
   * Copies the current frame's pitch columns into `out[0..1]` when they have been
   * estimated for it already (the detector asked), else sets `out[0]` to NaN: a copy of
   * the frame kept for later then carries them, and `extract` from the copy reuses them.
   */
  copyEstimatedPitch(out: Float64Array): void {
    if (this.pitchOfFrame === this.completed && this.fill === this.frameSize) {
      out[0] = this.pitchValues[0]!;
      out[1] = this.pitchValues[1]!;
    } else {
      out[0] = NaN;
    }
  }

  private currentPitchValues(): Float64Array {
    if (this.pitchOfFrame !== this.completed) {
      pitch(this.buffer, this.frameSize, this.config.sampleRate, this.pitchScratch, this.pitchValues, 0);
      this.pitchOfFrame = this.completed;
    }
    return this.pitchValues;
  }

  /**
   * Writes a frame's vector (`dim` values, layout `featureLayout(config)`) to
   * `out[offset ..]`, with the `mfcc_delta` columns set to 0 (see fillDeltas). The frame
   * is the current one, or `frame`: a copy of an earlier one (`frameSize` raw samples),
   * with `framePitch` its pitch columns when they were estimated (see copyEstimatedPitch;
   * NaN or absent: estimated here).
   */
  extract(out: Float32Array, offset = 0, frame?: Float32Array, framePitch?: Float64Array): void {
    if (frame === undefined && this.fill !== this.frameSize) throw new Error('FrameAnalyser.extract: no completed frame (call it from the push callback)');
    if (frame !== undefined && frame.length < this.frameSize) throw new RangeError(`FrameAnalyser.extract: the frame has ${frame.length} samples, needs ${this.frameSize}`);
    if (offset < 0 || offset + this.dim > out.length) throw new RangeError(`FrameAnalyser.extract: out has ${out.length} values, needs ${offset + this.dim}`);
    const at = this.at;
    const frameSize = this.frameSize;
    const windowed = this.windowed;
    const buffer = frame ?? this.buffer;
    const window = this.window;
    for (let i = 0; i < frameSize; i++) windowed[i] = buffer[i]! * window[i]!;

    if (this.fft !== null) {
      this.fft.forwardPower(windowed, this.power, this.needsAmplitude ? this.amplitude : null);
    }
    const bins = this.meydaBins;

    if (this.melBank !== null) {
      logMelBands(this.power, this.melBank, this.logMel);
      if (this.dct !== null) mfcc(this.logMel, this.dct, out, offset + at.mfcc);
      if (at.log_mel >= 0) copy(this.logMel, out, offset + at.log_mel);
    }
    if (at.mfcc_delta >= 0) out.fill(0, offset + at.mfcc_delta, offset + at.mfcc_delta + this.config.mfccCount);
    if (this.chromaBank !== null) {
      chroma(this.amplitude, this.chromaBank, this.chroma);
      if (at.chroma >= 0) copy(this.chroma, out, offset + at.chroma);
      if (at.tonnetz >= 0) tonnetz(this.chroma, out, offset + at.tonnetz);
    }
    if (this.contrast !== null) spectralContrast(this.amplitude, this.contrast, this.contrastTop, this.contrastBottom, out, offset + at.contrast);
    if (at.rms >= 0) rms(windowed, frameSize, out, offset + at.rms);
    if (at.zcr >= 0) zcr(windowed, frameSize, out, offset + at.zcr);
    if (at.centroid >= 0) spectralCentroid(this.amplitude, bins, out, offset + at.centroid);
    if (at.rolloff >= 0) spectralRolloff(this.amplitude, bins, this.config.sampleRate, out, offset + at.rolloff);
    if (at.flatness >= 0) spectralFlatness(this.amplitude, bins, out, offset + at.flatness);
    if (at.pitch >= 0) {
      if (frame === undefined) {
        const values = this.currentPitchValues();
        out[offset + at.pitch] = values[0]!;
        out[offset + at.pitch + 1] = values[1]!;
      } else if (framePitch !== undefined && !Number.isNaN(framePitch[0]!)) {
        out[offset + at.pitch] = framePitch[0]!;
        out[offset + at.pitch + 1] = framePitch[1]!;
      } else {
        pitch(buffer, frameSize, this.config.sampleRate, this.pitchScratch, out, offset + at.pitch);
      }
    }
  }

  /**
   * `fillDeltas` for this analyser's configuration, with the columns worked out once at
   * construction: it runs once per window, so it builds no layout and allocates nothing.
   */
  fillDeltas(rows: Float32Array, frames: number): void {
    fillDeltaColumns(rows, frames, this.dim, this.deltaColumns, this.config.deltaWidth);
  }
}

interface DeltaColumns {
  base: number;
  delta: number;
  width: number;
}

function deltaColumns(layout: readonly { name: FeatureName; offset: number; width: number }[]): DeltaColumns | null {
  const delta = layout.find((f) => f.name === 'mfcc_delta');
  const base = layout.find((f) => f.name === 'mfcc');
  return delta === undefined || base === undefined ? null : { base: base.offset, delta: delta.offset, width: delta.width };
}

function fillDeltaColumns(rows: Float32Array, frames: number, dim: number, columns: DeltaColumns | null, deltaWidth: number): void {
  if (columns === null || frames === 0) return;
  if (rows.length < frames * dim) throw new RangeError(`fillDeltas: ${frames} frames of ${dim} need ${frames * dim} values, rows has ${rows.length}`);
  htkDeltas(rows, frames, dim, columns.base, columns.delta, columns.width, deltaWidth);
}

function copy(from: Float64Array, to: Float32Array, offset: number): void {
  for (let i = 0; i < from.length; i++) to[offset + i] = from[i]!;
}

/**
 * Computes the `mfcc_delta` columns of `frames` consecutive frame vectors (row-major,
 * `frameVectorSize(config)` wide) from their `mfcc` columns, in place. Call it once a
 * window of frames is complete; a no-op when `mfcc_delta` is not configured. Works the
 * layout out on every call: a running stream uses `FrameAnalyser.fillDeltas`.
 */
export function fillDeltas(rows: Float32Array, frames: number, config: FeatureConfig): void {
  fillDeltaColumns(rows, frames, frameVectorSize(config), deltaColumns(featureLayout(config)), config.deltaWidth);
}

/** Number of frames `FrameAnalyser` completes for `samples` samples. */
export function frameCount(samples: number, config: FeatureConfig): number {
  return samples < config.frameSize ? 0 : 1 + Math.floor((samples - config.frameSize) / config.hopSize);
}

/**
 * Whole-signal features (training, evaluation): every frame of `signal` through the same
 * streaming analyser, deltas included. Samples after the last full frame are not used.
 */
export function analyseSignal(signal: Float32Array, config: FeatureConfig): { frames: number; dim: number; data: Float32Array } {
  const analyser = new FrameAnalyser(config);
  const frames = frameCount(signal.length, analyser.config);
  const dim = analyser.dim;
  const data = new Float32Array(frames * dim);
  analyser.push(signal, (_frame, index) => analyser.extract(data, index * dim));
  analyser.fillDeltas(data, frames);
  return { frames, dim, data };
}
