/**
 * Voice activity detection, decided once per analysis hop: an adaptive noise floor says
 * when something louder than the room is going on, and the voice in it says whether it is
 * speech. Energy alone takes stationary noise for speech whenever the floor lags behind
 * it (noise that fades in, a file that starts in silence) or the noise's own level swings
 * (brown noise), and it loses the quiet parts of speech in a noisy room. So an utterance
 * only counts once a voice is heard in it: a run of voiced frames whose pitch moves
 * smoothly, which white, pink and brown noise do not produce (their voiced frames come
 * alone or in pairs). In a noisy room, where the voice stands only a little above the
 * floor, speech then continues down close to the floor; and it ends when no voice has
 * been heard for a while.
 *
 * The decisions depend only on the sequence of frames, never on how the audio was cut
 * into blocks, so a live stream and a file replay of the same audio get identical ones.
 */
export interface VadConfig {
  /** Speech starts when the frame is this far above the noise floor. */
  onsetDb: number;
  /** Speech continues while the frame stays this far above the floor (hysteresis). */
  offsetDb: number;
  /** Frames below this level are never speech, whatever the floor (digital silence, hum). */
  absoluteFloorDb: number;
  /**
   * Frames below this level are no signal at all (digital silence: a muted or padded
   * stream, a gap in a recording). They say nothing about the room, so they leave the floor
   * where it is: otherwise the room's own noise after a gap would rise above the floor and
   * count as loud. A stream that starts with them starts its floor at `absoluteFloorDb`.
   */
  noSignalDb: number;
  /** Consecutive loud frames needed to start speech, so a click is not an utterance. */
  onsetFrames: number;
  /** Frames kept after the energy drops, so word endings and short pauses stay in. */
  hangoverFrames: number;
  /** How fast the floor rises toward louder frames (per frame, 0..1): slow, so an utterance barely lifts it. */
  floorRise: number;
  /** How fast the floor follows quieter frames: fast, so it finds the new noise level at once. */
  floorFall: number;
  /**
   * Consecutive voiced frames (at least `voicedOnsetDb` above the floor), each within
   * `maxPitchStepOctaves` of the one before, that prove a voice. White, pink and brown
   * noise made runs of at most 3 in 10 minutes at the shipped 16 ms hop; vowels make longer.
   */
  voicedRunFrames: number;
  /**
   * Largest pitch change between neighbouring frames of one voiced run, in octaves. A jump
   * of an octave (± this) also continues the run: the tracker sometimes takes a quiet
   * voice's second harmonic or its period twice over.
   */
  maxPitchStepOctaves: number;
  /**
   * Level above the floor from which a frame's pitch is looked at, and from which a voiced
   * run starts speech though the frames are not `onsetDb` loud (in noise, vowels stand
   * only a few dB above the floor). Quieter frames cost no pitch estimate.
   */
  voicedOnsetDb: number;
  /**
   * While a voice is heard, speech continues down to `voiceRangeDb` below the loudest
   * voiced frame of the utterance, but never below `voicedOffsetDb` above the floor, and
   * never needing more than `offsetDb`. In a quiet room nothing changes; in a noisy one,
   * where the voice peaks less than `voiceRangeDb + offsetDb` above the floor, the soft
   * syllables the noise nearly covers stay in the utterance.
   */
  voiceRangeDb: number;
  /** The least level above the floor that continues speech while a voice is heard (see `voiceRangeDb`). */
  voicedOffsetDb: number;
  /**
   * A voice counts as heard for this many frames after its last voiced run: speech that
   * starts again within them is confirmed at once, and speech in which no voice has been
   * heard for longer ends, however loud.
   */
  voiceHoldFrames: number;
  /**
   * The most frames before the voice is proven that still join the utterance (from its
   * energy onset, or the voiced run itself if that came first): its first syllable is not
   * lost. The stream keeps a copy of that many raw frames.
   */
  lookbackFrames: number;
}

/** Frame counts assume the shipped 16 ms hop (16 kHz, hop 256). */
export const DEFAULT_VAD_CONFIG: VadConfig = {
  onsetDb: 9,
  offsetDb: 6,
  absoluteFloorDb: -55,
  noSignalDb: -90,
  onsetFrames: 3,
  hangoverFrames: 15,
  floorRise: 0.003,
  floorFall: 0.2,
  voicedRunFrames: 4,
  maxPitchStepOctaves: 0.1,
  voicedOnsetDb: 4.5,
  voiceRangeDb: 17,
  voicedOffsetDb: 1,
  voiceHoldFrames: 90,
  lookbackFrames: 30,
};

/**
 * The pitch of the frame being decided, asked for only when the decision needs it (it
 * costs an autocorrelation). `FrameAnalyser` is one: when the features include pitch, the
 * estimate is shared with them and the detector costs nothing more.
 */
export interface FramePitch {
  /** log2(F0 / 50 Hz) of the current frame when it is voiced, 0 when it is not. */
  currentPitch(): number;
}

export class VoiceActivityDetector {
  private floorDb = NaN;
  private loudRun = 0;
  private hangover = 0;
  /** The energy says something is going on (onset, hysteresis, hangover). */
  private active = false;
  /** A voice was heard in the current active stretch, and not too long ago. */
  private voiced = false;
  private voicedRun = 0;
  private lastPitch = 0;
  private sinceVoice = Infinity;
  private peakDb = -Infinity;
  /** Frames of the active stretch not yet known to be speech. */
  private pending = 0;
  private backdated = 0;

  constructor(private readonly config: VadConfig = DEFAULT_VAD_CONFIG) {}

  /**
   * Feeds one frame (its raw samples: read, not kept) and says whether it belongs to
   * speech. The frame, not its energy, is passed so that no number crosses a call on the
   * hot path: V8 boxes a double passed to a function it does not inline.
   */
  update(frame: Float32Array, pitch: FramePitch): boolean {
    const energyDb = frameEnergyDb(frame);
    const level = Number.isFinite(energyDb) ? energyDb : -120;
    const c = this.config;
    const signal = level >= c.noSignalDb;
    // The first frame is the best guess of the room; speech there is corrected by the fast fall later.
    if (Number.isNaN(this.floorDb)) this.floorDb = signal ? level : c.absoluteFloorDb;
    const audible = level > c.absoluteFloorDb;
    const voicedOnsetDb = Math.min(c.voicedOnsetDb, c.onsetDb);

    const f0 = audible && level > this.floorDb + voicedOnsetDb ? pitch.currentPitch() : 0;
    if (f0 > 0) this.voicedRun = this.voicedRun > 0 && pitchContinues(this.lastPitch, f0, c.maxPitchStepOctaves) ? this.voicedRun + 1 : 1;
    else this.voicedRun = 0;
    this.lastPitch = f0;
    const voiceNow = this.voicedRun >= c.voicedRunFrames;
    this.sinceVoice = voiceNow ? 0 : this.sinceVoice + 1;
    const voiceHeard = this.sinceVoice <= c.voiceHoldFrames;
    if (f0 > 0 && level > this.peakDb) this.peakDb = level;

    let threshold = this.floorDb + (this.active ? c.offsetDb : c.onsetDb);
    if (this.active && voiceHeard) {
      // The voice's own peak says how noisy the room is: the threshold follows it down, clamped.
      const lowest = this.floorDb + Math.min(c.voicedOffsetDb, c.offsetDb);
      threshold = Math.max(lowest, Math.min(threshold, this.peakDb - c.voiceRangeDb));
    }
    const loud = audible && level > threshold;
    const voiceOnset = voiceNow && audible && level > this.floorDb + voicedOnsetDb;

    // Minimum tracking: the floor drops at once to quieter frames (the pauses between
    // words) and creeps up slowly otherwise, so a steady louder room becomes the new floor
    // within seconds while an utterance lifts it by a dB or two.
    if (signal) this.floorDb += (level < this.floorDb ? c.floorFall : c.floorRise) * (level - this.floorDb);

    if (loud || voiceOnset) {
      this.loudRun++;
      if (this.active || this.loudRun >= c.onsetFrames || voiceOnset) {
        this.active = true;
        this.hangover = c.hangoverFrames;
      }
    } else {
      this.loudRun = 0;
      if (this.active && --this.hangover <= 0) this.active = false;
    }

    this.backdated = 0;
    if (!this.active) {
      this.voiced = false;
      // Loud frames before the onset are not taken back: a click or a breath starts that way too.
      this.pending = 0;
      this.peakDb = -Infinity;
    } else if (!this.voiced) {
      // Speech that resumes while the voice is still heard (after a pause, a plosive) needs no new proof.
      if (voiceNow || voiceHeard) {
        this.voiced = true;
        this.backdated = Math.min(c.lookbackFrames, Math.max(this.pending, this.voicedRun - 1));
        this.pending = 0;
      } else {
        this.pending++;
      }
    } else if (!voiceHeard) {
      // Loud, but no voice for too long: whatever goes on now is not this utterance.
      this.voiced = false;
      this.pending = 0;
    }
    return this.active && this.voiced;
  }

  /**
   * On the frame where a voice turns the stretch into speech: how many frames just before
   * it belong to the utterance too (at most `lookbackFrames`); 0 on every other frame.
   */
  get backdatedFrames(): number {
    return this.backdated;
  }

  /** After a frame that was not speech: whether a later frame may still backdate it into an utterance. */
  get mayBackdate(): boolean {
    return !this.inSpeech && (this.pending > 0 || this.voicedRun > 0);
  }

  get noiseFloorDb(): number {
    return this.floorDb;
  }

  get inSpeech(): boolean {
    return this.active && this.voiced;
  }

  reset(): void {
    this.floorDb = NaN;
    this.loudRun = 0;
    this.hangover = 0;
    this.active = false;
    this.voiced = false;
    this.voicedRun = 0;
    this.lastPitch = 0;
    this.sinceVoice = Infinity;
    this.peakDb = -Infinity;
    this.pending = 0;
    this.backdated = 0;
  }
}

/** Whether two voiced frames' pitches (log2 F0) belong to one run: a small step, or an octave jump. */
function pitchContinues(previous: number, next: number, maxStep: number): boolean {
  const step = Math.abs(next - previous);
  return step <= maxStep || Math.abs(step - 1) <= maxStep;
}

/** Energy of a frame in dBFS (0 dB = full-scale square wave). */
export function frameEnergyDb(frame: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < frame.length; i++) sum += frame[i]! * frame[i]!;
  return 10 * Math.log10(sum / frame.length + 1e-12);
}
