/**
 * Energy-based voice activity detection with an adaptive noise floor, decided once per
 * analysis hop. It only sees frame energies, so a live stream and a file replay of the
 * same audio get identical decisions.
 */
export interface VadConfig {
  /** Speech starts when the frame is this far above the noise floor. */
  onsetDb: number;
  /** Speech continues while the frame stays this far above the floor (hysteresis). */
  offsetDb: number;
  /** Frames below this level are never speech, whatever the floor (digital silence, hum). */
  absoluteFloorDb: number;
  /** Consecutive loud frames needed to start speech, so a click is not an utterance. */
  onsetFrames: number;
  /** Frames kept after the energy drops, so word endings and short pauses stay in. */
  hangoverFrames: number;
  /** How fast the floor rises toward louder frames (per frame, 0..1): slow, so an utterance barely lifts it. */
  floorRise: number;
  /** How fast the floor follows quieter frames: fast, so it finds the new noise level at once. */
  floorFall: number;
}

export const DEFAULT_VAD_CONFIG: VadConfig = {
  onsetDb: 9,
  offsetDb: 6,
  absoluteFloorDb: -55,
  onsetFrames: 3,
  hangoverFrames: 15,
  floorRise: 0.003,
  floorFall: 0.2,
};

export class VoiceActivityDetector {
  private floorDb = NaN;
  private loudRun = 0;
  private hangover = 0;
  private speaking = false;

  constructor(private readonly config: VadConfig = DEFAULT_VAD_CONFIG) {}

  /** Feeds one frame's energy (dBFS) and says whether the frame belongs to speech. */
  update(energyDb: number): boolean {
    const level = Number.isFinite(energyDb) ? energyDb : -120;
    const c = this.config;
    // The first frame is the best guess of the room; speech there is corrected by the fast fall later.
    if (Number.isNaN(this.floorDb)) this.floorDb = level;
    const threshold = this.floorDb + (this.speaking ? c.offsetDb : c.onsetDb);
    const loud = level > threshold && level > c.absoluteFloorDb;

    // Minimum tracking: the floor drops at once to quieter frames (the pauses between
    // words) and creeps up slowly otherwise, so a steady louder room becomes the new floor
    // within seconds while an utterance lifts it by a dB or two.
    this.floorDb += (level < this.floorDb ? c.floorFall : c.floorRise) * (level - this.floorDb);

    if (loud) {
      this.loudRun++;
      if (this.speaking || this.loudRun >= c.onsetFrames) {
        this.speaking = true;
        this.hangover = c.hangoverFrames;
      }
    } else {
      this.loudRun = 0;
      if (this.speaking && --this.hangover <= 0) this.speaking = false;
    }
    return this.speaking;
  }

  get noiseFloorDb(): number {
    return this.floorDb;
  }

  get inSpeech(): boolean {
    return this.speaking;
  }

  reset(): void {
    this.floorDb = NaN;
    this.loudRun = 0;
    this.hangover = 0;
    this.speaking = false;
  }
}

/** Energy of a frame in dBFS (0 dB = full-scale square wave). */
export function frameEnergyDb(frame: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < frame.length; i++) sum += frame[i]! * frame[i]!;
  return 10 * Math.log10(sum / frame.length + 1e-12);
}
