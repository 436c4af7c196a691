import { RecentFrames } from '../audio/recent-frames.js';
import { DEFAULT_VAD_CONFIG, VoiceActivityDetector, type VadConfig } from '../audio/voice-activity-detector.js';
import { DEFAULT_WINDOWING, SpeechWindower, type WindowFrames, type WindowingConfig } from '../audio/speech-windower.js';
import type { FeatureConfig } from '../features/feature-config.js';
import { frameVectorSize } from '../features/feature-config.js';
import { FrameAnalyser } from '../features/frame-analyser.js';

/** A window of speech frames with its place in the stream. */
export interface SpeechWindow extends WindowFrames {
  /** Seconds from the start of the stream to the first frame's start and the last frame's end. */
  startSeconds: number;
  endSeconds: number;
}

export interface SpeechFeatureStreamOptions {
  features: FeatureConfig;
  windowing?: WindowingConfig;
  vad?: VadConfig;
}

/**
 * One channel's segmentation and feature stages: audio in, windows of speech frame
 * vectors out. The FFT and features are computed only for frames the VAD calls speech
 * (the detector itself looks at the pitch of frames above the noise floor, shared with
 * the features when they include pitch); every buffer is owned here and reused. Training,
 * `classify` and the daemon all run this same code, so a model always sees features made
 * the way it was trained.
 */
export class SpeechFeatureStream {
  readonly dim: number;
  private readonly analyser: FrameAnalyser;
  private readonly vad: VoiceActivityDetector;
  private readonly windower: SpeechWindower;
  /** Raw frames the VAD may still take into an utterance once it hears a voice in them. */
  private readonly recent: RecentFrames;
  private readonly hopSeconds: number;
  private readonly frameSeconds: number;
  private readonly sampleRate: number;
  /** Samples pushed or skipped since the start: the stream's clock. */
  private samplesSeen = 0;
  /** Seconds from the start of the stream to the analyser's frame 0 (moved by a skip). */
  private frameOriginSeconds = 0;
  private wasSpeech = false;
  private sink: ((w: SpeechWindow) => void) | null = null;
  private readonly onFrame = (frame: Float32Array, index: number) => this.frame(frame, index);
  /** Frames seen and frames analysed, for telemetry (the ratio is the speech share). */
  frames = 0;
  speechFrames = 0;

  constructor(options: SpeechFeatureStreamOptions) {
    const f = options.features;
    this.analyser = new FrameAnalyser(f);
    this.dim = frameVectorSize(f);
    const vad = options.vad ?? DEFAULT_VAD_CONFIG;
    this.vad = new VoiceActivityDetector(vad);
    this.recent = new RecentFrames(vad.lookbackFrames, f.frameSize);
    this.windower = new SpeechWindower(this.dim, f.sampleRate / f.hopSize, options.windowing ?? DEFAULT_WINDOWING);
    this.hopSeconds = f.hopSize / f.sampleRate;
    this.frameSeconds = f.frameSize / f.sampleRate;
    this.sampleRate = f.sampleRate;
  }

  /** Feeds samples at the feature config's rate; calls `onWindow` for every window that is due. */
  push(samples: Float32Array, onWindow: (w: SpeechWindow) => void): void {
    this.samplesSeen += samples.length;
    this.sink = onWindow;
    this.analyser.push(samples, this.onFrame);
    this.sink = null;
  }

  /** End of the stream or of a call: the pending speech gets its window. */
  end(onWindow: (w: SpeechWindow) => void): void {
    this.sink = onWindow;
    this.closeUtterance();
    this.sink = null;
  }

  /** Call boundary: forget the speech (the noise floor is the room's and is kept). */
  resetSpeech(): void {
    this.windower.reset();
    this.recent.clear();
    this.wasSpeech = false;
  }

  /**
   * A gap: `sampleCount` samples of the stream will never be pushed (the daemon fell
   * behind and skipped them). No frame and no window spans it: the speech so far is
   * forgotten, as at a call boundary, and frames start afresh after it. Later windows
   * keep their place on the stream's clock, which runs on across the gap.
   */
  skip(sampleCount: number): void {
    this.resetSpeech();
    this.analyser.reset();
    this.samplesSeen += sampleCount;
    this.frameOriginSeconds = this.samplesSeen / this.sampleRate;
  }

  private frame(frame: Float32Array, index: number): void {
    this.frames++;
    const speech = this.vad.update(frame, this.analyser);
    if (speech) {
      // The utterance began before the voice proved it: its first frames join it now.
      const back = Math.min(this.vad.backdatedFrames, this.recent.count);
      for (let k = 0; k < back; k++) this.speechFrame(this.recent.index(back, k), this.recent.frame(back, k), this.recent.pitch(back, k));
      if (back > 0) this.recent.clear();
      this.speechFrame(index);
    } else {
      if (this.wasSpeech) this.closeUtterance();
      if (this.vad.mayBackdate) {
        const pitch = this.recent.keep(frame, index);
        if (pitch !== null) this.analyser.copyEstimatedPitch(pitch);
      } else {
        this.recent.clear();
      }
    }
    this.wasSpeech = speech;
  }

  /** A speech frame's features, straight into the windower's ring: nothing is allocated. */
  private speechFrame(index: number, copy?: Float32Array, copyPitch?: Float64Array): void {
    this.speechFrames++;
    this.analyser.extract(this.windower.ring, this.windower.rowOffset, copy, copyPitch);
    const window = this.windower.commit(index);
    if (window) this.deliver(window);
  }

  private closeUtterance(): void {
    const window = this.windower.endOfSpeech();
    if (window) this.deliver(window);
  }

  private deliver(window: WindowFrames): void {
    // Deltas need neighbouring frames, so they are filled over the finished window.
    this.analyser.fillDeltas(window.rows, window.frames);
    this.sink?.({
      ...window,
      startSeconds: this.frameOriginSeconds + window.firstFrame * this.hopSeconds,
      endSeconds: this.frameOriginSeconds + window.lastFrame * this.hopSeconds + this.frameSeconds,
    });
  }
}
