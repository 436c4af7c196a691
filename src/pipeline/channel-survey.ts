import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelMeter, formatDb } from '../audio/level-meter.js';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../features/feature-config.js';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import { parseManifest } from '../model/model-bundle.js';
import { RealFft } from '../features/fft.js';
import { analysisWindow } from '../features/window.js';
import { SpeechFeatureStream } from './speech-feature-stream.js';

/**
 * What each channel of a capture carries, for mapping a headset's two directions: its
 * level, how much of it the daemon's own voice-activity detection calls speech (each
 * channel runs the SpeechFeatureStream the daemon runs, so "speech" here is speech there),
 * how many analysis windows the model would judge, and whether its speech is band-limited
 * like a telephone line. The caller reaches the agent through the headset's receive path,
 * and a caller on the public network arrives at 300–3400 Hz; the headset microphone
 * carries the agent at full bandwidth.
 */

/** Speech energy is summed from here (below it: hum and rumble)… */
const SPEECH_FROM_HZ = 80;
/** …and the part above what G.711 carries (3.4 kHz) is set against the whole: a narrowband caller has next to nothing there, a headset microphone has its fricatives. */
const HIGH_BAND_FROM_HZ = 3800;
/** At most this share of the speech energy above HIGH_BAND_FROM_HZ (−30 dB): telephone band. */
export const TELEPHONE_HIGH_BAND_MAX = 0.001;
/** At least this share (−25 dB): full band, as a headset microphone picks up speech. */
export const WIDEBAND_HIGH_BAND_MIN = 0.003;
/** A channel "hears speech" with at least this share of the listening time and this many seconds of it. */
export const SPEECH_SHARE_MIN = 0.05;
export const SPEECH_SECONDS_MIN = 1;
/** Two channels whose difference holds less than this share of their energy carry one signal. */
const IDENTICAL_ENERGY_SHARE = 1e-4;
/** Quieter than this (RMS), a channel is too silent for the identical-channels test to mean anything. */
const IDENTICAL_MIN_RMS_DB = -70;

export type Band = 'telephone' | 'wideband' | 'unclear';

/**
 * The features a survey runs at: the model bundle's (its rate, frame and hop), so that its
 * VAD decides as the daemon's does. Only the manifest is read; a bundle that cannot be
 * read falls back to the default every shipped model uses.
 */
export async function surveyFeatures(modelDir: string): Promise<FeatureConfig> {
  try {
    return parseManifest(await readFile(join(modelDir, MANIFEST_FILE), 'utf8'), modelDir).features;
  } catch {
    return DEFAULT_FEATURE_CONFIG;
  }
}

export interface ChannelSummary {
  index: number;
  seconds: number;
  speechSeconds: number;
  /** Share of the frames the VAD called speech. */
  speechShare: number;
  /** Analysis windows the model would have judged. */
  windows: number;
  rmsDb: number;
  peakDb: number;
  /** Share of samples at full scale (clipping). */
  clippedShare: number;
  /** Share of the speech's energy above 3.8 kHz; null without speech or at a rate too low to tell. */
  highBandShare: number | null;
  band: Band | null;
}

export interface BlockReading {
  rmsDb: number;
  /** Loudest peak since the previous reading was taken. */
  peakDb: number;
  /** Whether the VAD heard speech in this block. */
  speaking: boolean;
  speechShare: number;
}

/** One channel of the survey. */
class SurveyedChannel {
  readonly meter = new LevelMeter();
  readonly stream: SpeechFeatureStream;
  windows = 0;
  samples = 0;
  speaking = false;
  speechEnergy = 0;
  highEnergy = 0;
  private readonly onWindow = () => void this.windows++;

  constructor(features: FeatureConfig) {
    this.stream = new SpeechFeatureStream({ features });
  }

  push(samples: Float32Array): boolean {
    this.meter.push(samples);
    this.samples += samples.length;
    const before = this.stream.speechFrames;
    this.stream.push(samples, this.onWindow);
    this.speaking = this.stream.speechFrames > before;
    return this.speaking;
  }

  end(): void {
    this.stream.end(this.onWindow);
  }
}

export class ChannelSurvey {
  readonly sampleRate: number;
  private readonly channels: SurveyedChannel[];
  private readonly hopSeconds: number;
  private readonly fft: RealFft;
  private readonly window: Float64Array;
  private readonly windowed: Float64Array;
  private readonly power: Float64Array;
  /** Bins from SPEECH_FROM_HZ, from HIGH_BAND_FROM_HZ, and the last one summed (below Nyquist); null at a rate too low for the test. */
  private readonly bins: { speech: number; high: number; last: number } | null;
  /** Per channel pair (a < b): energy of the difference and of both, for the identical-channels test. */
  private readonly pairs: { a: number; b: number; difference: number; energy: number }[] = [];

  constructor(options: { features: FeatureConfig; channelCount: number }) {
    const f = options.features;
    this.sampleRate = f.sampleRate;
    this.hopSeconds = f.hopSize / f.sampleRate;
    this.channels = Array.from({ length: options.channelCount }, () => new SurveyedChannel(f));
    for (let a = 0; a < options.channelCount; a++) for (let b = a + 1; b < options.channelCount; b++) this.pairs.push({ a, b, difference: 0, energy: 0 });
    this.fft = new RealFft(f.fftSize);
    this.window = analysisWindow('hann', f.fftSize);
    this.windowed = new Float64Array(f.fftSize);
    this.power = new Float64Array(f.fftSize / 2 + 1);
    const bin = (hz: number) => Math.round((hz * f.fftSize) / f.sampleRate);
    const nyquist = f.sampleRate / 2;
    // Needs room above 3.8 kHz: at 8 kHz there is none, and every channel would look like a phone line.
    this.bins = nyquist >= 6000 ? { speech: bin(SPEECH_FROM_HZ), high: bin(HIGH_BAND_FROM_HZ), last: bin(nyquist * 0.95) } : null;
  }

  get channelCount(): number {
    return this.channels.length;
  }

  /** Seconds of audio surveyed (per channel). */
  get seconds(): number {
    return (this.channels[0]?.samples ?? 0) / this.sampleRate;
  }

  /** One block, one array per channel at the feature config's rate. */
  push(block: Float32Array[]): void {
    for (const [i, channel] of this.channels.entries()) {
      const samples = block[i];
      if (samples === undefined) continue;
      if (channel.push(samples)) this.addSpectrum(channel, samples);
    }
    for (const pair of this.pairs) {
      const a = block[pair.a];
      const b = block[pair.b];
      if (a === undefined || b === undefined) continue;
      for (let i = 0; i < a.length; i++) {
        const d = a[i]! - b[i]!;
        pair.difference += d * d;
        pair.energy += a[i]! * a[i]! + b[i]! * b[i]!;
      }
    }
  }

  /** The meter's view of each channel since the previous reading. */
  readings(): BlockReading[] {
    return this.channels.map((c) => ({
      rmsDb: c.meter.current.rmsDb,
      peakDb: c.meter.takePeak(),
      speaking: c.speaking,
      speechShare: c.stream.frames === 0 ? 0 : c.stream.speechFrames / c.stream.frames,
    }));
  }

  /** End of listening: pending speech is closed into its window. */
  end(): void {
    for (const c of this.channels) c.end();
  }

  summary(): ChannelSummary[] {
    return this.channels.map((c, index) => {
      const frames = c.stream.frames;
      const highBandShare = this.bins === null || c.speechEnergy === 0 ? null : c.highEnergy / c.speechEnergy;
      const speechSeconds = c.stream.speechFrames * this.hopSeconds;
      return {
        index,
        seconds: c.samples / this.sampleRate,
        speechSeconds,
        speechShare: frames === 0 ? 0 : c.stream.speechFrames / frames,
        windows: c.windows,
        rmsDb: c.meter.overallRmsDb,
        peakDb: c.meter.overallPeakDb,
        clippedShare: c.meter.clippedShare,
        highBandShare,
        band: highBandShare === null ? null : highBandShare <= TELEPHONE_HIGH_BAND_MAX ? 'telephone' : highBandShare >= WIDEBAND_HIGH_BAND_MIN ? 'wideband' : 'unclear',
      };
    });
  }

  /**
   * Channel pairs that carry one signal: a mono device opened with more channels than it
   * has (the plug layer copies it), or a tap wired to both inputs.
   */
  identicalPairs(): [number, number][] {
    const loud = this.channels.map((c) => c.meter.overallRmsDb > IDENTICAL_MIN_RMS_DB);
    return this.pairs.filter((p) => loud[p.a] && loud[p.b] && p.energy > 0 && p.difference / p.energy < IDENTICAL_ENERGY_SHARE).map((p) => [p.a, p.b]);
  }

  /** Speech-block spectra, frame by frame (non-overlapping): all of the speech band, and the part above the phone band. */
  private addSpectrum(channel: SurveyedChannel, samples: Float32Array): void {
    const bins = this.bins;
    if (bins === null) return;
    const size = this.fft.size;
    for (let at = 0; at + size <= samples.length; at += size) {
      for (let i = 0; i < size; i++) this.windowed[i] = samples[at + i]! * this.window[i]!;
      this.fft.forwardPower(this.windowed, this.power);
      for (let k = bins.speech; k < bins.high; k++) channel.speechEnergy += this.power[k]!;
      for (let k = bins.high; k <= bins.last; k++) {
        channel.speechEnergy += this.power[k]!;
        channel.highEnergy += this.power[k]!;
      }
    }
  }
}

export interface CallerSideVerdict {
  /** The channel to map as `customer`, or null when the survey cannot tell. */
  customer: number | null;
  /** The channel to map as `agent` (the other of two), or null. */
  agent: number | null;
  /** `clear`: speech and spectrum agree; `likely`: one of them says so; `none`: no verdict. */
  confidence: 'clear' | 'likely' | 'none';
  /** Why, in the installer's terms, one line each. */
  reasons: string[];
}

const percent = (share: number) => `${Math.round(share * 100)}%`;
const speaks = (c: ChannelSummary) => c.speechShare >= SPEECH_SHARE_MIN && c.speechSeconds >= SPEECH_SECONDS_MIN;

function describeBand(c: ChannelSummary): string {
  if (c.highBandShare === null) return '';
  const db = c.highBandShare > 0 ? `${(10 * Math.log10(c.highBandShare)).toFixed(0)} dB` : 'nothing';
  if (c.band === 'telephone') return `its speech stops at the phone band (${db} above 3.8 kHz), as a caller's voice does`;
  if (c.band === 'wideband') return `its speech reaches above the phone band (${db} above 3.8 kHz), as a headset microphone's does`;
  return `its speech has a little energy above the phone band (${db} above 3.8 kHz), which fits either side`;
}

/**
 * Which channel carries the caller, from a survey taken while a test caller talked and the
 * headset wearer kept quiet: the channel that hears speech, confirmed (or doubted) by its
 * spectrum. With speech on both, the band-limited one is the caller's.
 */
export function callerSide(channels: ChannelSummary[], identical: [number, number][] = []): CallerSideVerdict {
  const reasons: string[] = [];
  const none = (why: string[]): CallerSideVerdict => ({ customer: null, agent: null, confidence: 'none', reasons: why });
  const otherOf = (i: number) => (channels.length === 2 ? 1 - i : null);
  if (channels.length === 0) return none(['no channels were captured']);
  for (const [a, b] of identical) {
    reasons.push(`channels ${a} and ${b} carry the same signal: the device is probably mono and ALSA's plug layer copies it to every channel asked for; a headset tap needs a device with one input per direction`);
  }
  if (identical.length > 0) return none(reasons);
  const speaking = channels.filter(speaks);
  const shares = channels.map((c) => `channel ${c.index} ${percent(c.speechShare)}`).join(', ');
  if (speaking.length === 0) {
    return none([
      `no channel heard enough speech (${shares}; at least ${percent(SPEECH_SHARE_MIN)} and ${SPEECH_SECONDS_MIN} s are needed)`,
      'listen again during a test call while the caller talks; a channel that stays near its floor level is muted or not connected',
    ]);
  }
  if (channels.length === 1) {
    const c = channels[0]!;
    const band = describeBand(c);
    return {
      customer: c.band === 'wideband' ? null : 0,
      agent: null,
      confidence: c.band === 'telephone' ? 'clear' : c.band === 'wideband' ? 'none' : 'likely',
      reasons: [
        `this device captures one channel, so it carries one direction (speech ${percent(c.speechShare)}); map it as customer only if that is the caller's`,
        ...(band ? [band] : []),
        ...(c.band === 'wideband' ? ['that is not what a phone line carries: unless the call is wideband (HD voice), this is the headset microphone, the agent side'] : []),
      ],
    };
  }
  if (speaking.length === 1) {
    const c = speaking[0]!;
    const band = describeBand(c);
    reasons.push(`only channel ${c.index} heard speech (${shares}): with the caller talking and the headset wearer quiet, that is the receive path`);
    if (band) reasons.push(band);
    if (c.band === 'wideband') {
      reasons.push('a phone line does not carry that band: if the headset wearer was the one talking, this is the agent side; listen again while only the caller talks');
      return { customer: c.index, agent: otherOf(c.index), confidence: 'likely', reasons };
    }
    return { customer: c.index, agent: otherOf(c.index), confidence: c.band === 'telephone' ? 'clear' : 'likely', reasons };
  }
  // Both (or several) heard speech: the spectrum decides.
  reasons.push(`more than one channel heard speech (${shares})`);
  const narrow = speaking.filter((c) => c.band === 'telephone');
  const wide = speaking.filter((c) => c.band === 'wideband');
  for (const c of speaking) {
    const band = describeBand(c);
    if (band) reasons.push(`channel ${c.index}: ${band}`);
  }
  if (narrow.length === 1 && wide.length >= 1) {
    const c = narrow[0]!;
    return { customer: c.index, agent: otherOf(c.index), confidence: 'clear', reasons };
  }
  const most = [...speaking].sort((a, b) => b.speechShare - a.speechShare)[0]!;
  reasons.push(`the spectra do not tell the sides apart; channel ${most.index} heard the most speech. Listen again while only the caller talks to be sure`);
  return { customer: most.index, agent: otherOf(most.index), confidence: 'likely', reasons };
}

/** One line per channel, for the listen summary and the doctor's capture row. */
export function describeChannel(c: ChannelSummary): string {
  const parts = [
    `level ${formatDb(c.rmsDb)} RMS, peak ${formatDb(c.peakDb)}`,
    `speech ${percent(c.speechShare)} (${c.speechSeconds.toFixed(1)} s, ${c.windows} window${c.windows === 1 ? '' : 's'})`,
  ];
  if (c.band !== null && c.highBandShare !== null) parts.push(c.band === 'telephone' ? 'phone band' : c.band === 'wideband' ? 'full band' : 'band unclear');
  if (c.clippedShare > 0.001) parts.push(`clipping ${(c.clippedShare * 100).toFixed(1)}% of samples: turn the capture gain down`);
  return `channel ${c.index}: ${parts.join(', ')}`;
}
