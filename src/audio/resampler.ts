/**
 * Band-limited sample-rate conversion by windowed-sinc interpolation (Kaiser window).
 *
 * The ratio is reduced to outputRate/inputRate = L/M. Output sample n sits at input time
 * n·M/L, so only L distinct fractional phases ever occur: for L up to MAX_EXACT_PHASES
 * each phase has its own precomputed row of taps (polyphase). For awkward rates (e.g.
 * 44 101 Hz) L can be huge, so instead a table of TABLE_PHASES rows is interpolated
 * linearly, which keeps the table small at a cost far below the filter's stopband.
 */

export interface ResamplerOptions {
  /** Zero crossings of the sinc on each side of the centre; more = sharper transition. Default 16. */
  zeroCrossings?: number;
  /** Cutoff as a fraction of the lower Nyquist frequency. Default 0.9, the middle of the transition band. */
  rolloff?: number;
  /** Kaiser window β: 8 gives about 80 dB of stopband attenuation. Default 8. */
  kaiserBeta?: number;
}

interface FilterTable {
  /** Rows of `taps` coefficients, one per phase, each row summing to 1 (unity DC gain). */
  coefficients: Float32Array;
  phases: number;
  taps: number;
  /** Taps on each side of the centre: output at input time t reads x[floor(t)-half+1 .. floor(t)+half]. */
  half: number;
}

const MAX_EXACT_PHASES = 1024;
const TABLE_PHASES = 512;

/** One table per conversion, shared by every channel's resampler (and every source). */
const tableCache = new Map<string, FilterTable>();

export class StreamingResampler {
  readonly inputRate: number;
  readonly outputRate: number;
  private readonly passThrough: boolean;
  /** L and M of outputRate/inputRate = L/M in lowest terms. */
  private readonly up: number;
  private readonly down: number;
  private readonly table: FilterTable;
  private readonly exactPhases: boolean;
  /** Whole input samples the output time advances per output sample, and the remainder in 1/L. */
  private readonly stepWhole: number;
  private readonly stepFraction: number;

  /** Input not yet fully used: history for the filter's left half plus new samples. */
  private pending: Float32Array;
  private pendingLength = 0;
  /** Index in `pending` of floor(time of the next output), and that time's fraction in 1/L. */
  private base = 0;
  private phase = 0;
  /** Absolute input index of pending[0]; negative while the start-up zeros are still held. */
  private pendingStart = 0;
  private inputSeen = 0;

  constructor(inputRate: number, outputRate: number, options: ResamplerOptions = {}) {
    checkRate(inputRate, 'input');
    checkRate(outputRate, 'output');
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    this.passThrough = inputRate === outputRate;
    const divisor = gcd(inputRate, outputRate);
    this.up = outputRate / divisor;
    this.down = inputRate / divisor;
    this.stepWhole = Math.floor(this.down / this.up);
    this.stepFraction = this.down % this.up;
    this.exactPhases = this.up <= MAX_EXACT_PHASES;
    this.table = this.passThrough
      ? { coefficients: new Float32Array(0), phases: 0, taps: 0, half: 0 }
      : filterTable(inputRate, outputRate, this.exactPhases ? this.up : TABLE_PHASES, this.exactPhases, options);
    this.pending = new Float32Array(Math.max(4096, 4 * this.table.taps));
    this.reset();
  }

  /** Output for this chunk of input; state carries over, so chunked output equals whole-signal output. */
  process(input: Float32Array): Float32Array {
    if (this.passThrough) return input.slice();
    this.append(input);
    this.inputSeen += input.length;
    return this.produce(Number.POSITIVE_INFINITY);
  }

  /** The tail still held back by the filter's look-ahead; the resampler is then ready for a new signal. */
  flush(): Float32Array {
    if (this.passThrough) return new Float32Array(0);
    this.append(new Float32Array(this.table.half));
    // Outputs up to the last input sample's time, no further: ceil(inputs·L/M) in all.
    const output = this.produce(this.inputSeen);
    this.reset();
    return output;
  }

  /** Back to the state of a new resampler, dropping any held input. */
  reset(): void {
    const half = this.table.half;
    // Start-up zeros stand in for the signal before its first sample, so output 0 is centred on input 0.
    this.pending.fill(0, 0, Math.max(half - 1, 0));
    this.pendingLength = Math.max(half - 1, 0);
    this.pendingStart = -this.pendingLength;
    this.base = this.pendingLength;
    this.phase = 0;
    this.inputSeen = 0;
  }

  private append(input: Float32Array): void {
    const needed = this.pendingLength + input.length;
    if (needed > this.pending.length) {
      const grown = new Float32Array(Math.max(needed, 2 * this.pending.length));
      grown.set(this.pending.subarray(0, this.pendingLength));
      this.pending = grown;
    }
    this.pending.set(input, this.pendingLength);
    this.pendingLength = needed;
  }

  /** Computes every output whose taps are all available and whose time is below `endBefore` (absolute input index). */
  private produce(endBefore: number): Float32Array {
    const { half, taps, coefficients, phases } = this.table;
    const lastBaseExclusive = Math.min(this.pendingLength - half, endBefore - this.pendingStart);

    let count = 0;
    for (let b = this.base, p = this.phase; b < lastBaseExclusive; count++) {
      b += this.stepWhole;
      p += this.stepFraction;
      if (p >= this.up) {
        p -= this.up;
        b++;
      }
    }

    const output = new Float32Array(count);
    const x = this.pending;
    let base = this.base;
    let phase = this.phase;
    const phaseScale = phases / this.up;
    for (let n = 0; n < count; n++) {
      const first = base - half + 1;
      let sum = 0;
      if (this.exactPhases) {
        const row = phase * taps;
        for (let j = 0; j < taps; j++) sum += x[first + j] * coefficients[row + j];
      } else {
        const position = phase * phaseScale;
        const lower = Math.floor(position);
        const weight = position - lower;
        const rowA = lower * taps;
        const rowB = rowA + taps;
        for (let j = 0; j < taps; j++) {
          const a = coefficients[rowA + j];
          sum += x[first + j] * (a + weight * (coefficients[rowB + j] - a));
        }
      }
      output[n] = sum;
      base += this.stepWhole;
      phase += this.stepFraction;
      if (phase >= this.up) {
        phase -= this.up;
        base++;
      }
    }

    // Drop input no future output can reach; the next output's first tap is base - half + 1.
    const drop = Math.min(Math.max(base - half + 1, 0), this.pendingLength);
    if (drop > 0) {
      this.pending.copyWithin(0, drop, this.pendingLength);
      this.pendingLength -= drop;
      this.pendingStart += drop;
      base -= drop;
    }
    this.base = base;
    this.phase = phase;
    return output;
  }
}

/** Resamples a whole signal; the output has ceil(length·outRate/inRate) samples, aligned with the input. */
export function resample(signal: Float32Array, inputRate: number, outputRate: number, options?: ResamplerOptions): Float32Array {
  const resampler = new StreamingResampler(inputRate, outputRate, options);
  const body = resampler.process(signal);
  const tail = resampler.flush();
  if (tail.length === 0) return body;
  const whole = new Float32Array(body.length + tail.length);
  whole.set(body);
  whole.set(tail, body.length);
  return whole;
}

function filterTable(inputRate: number, outputRate: number, phases: number, exact: boolean, options: ResamplerOptions): FilterTable {
  const zeroCrossings = options.zeroCrossings ?? 16;
  const rolloff = options.rolloff ?? 0.9;
  const beta = options.kaiserBeta ?? 8;
  if (!(zeroCrossings >= 2) || !(rolloff > 0 && rolloff <= 1) || !(beta >= 0)) {
    throw new RangeError(`resampler options out of range: zeroCrossings ${zeroCrossings} (≥ 2), rolloff ${rolloff} (0–1], kaiserBeta ${beta} (≥ 0)`);
  }
  const key = `${inputRate}:${outputRate}:${phases}:${zeroCrossings}:${rolloff}:${beta}`;
  const cached = tableCache.get(key);
  if (cached !== undefined) return cached;

  // Cutoff in cycles per input sample; when downsampling it must sit below the output's Nyquist.
  const cutoff = 0.5 * rolloff * Math.min(1, outputRate / inputRate);
  const half = Math.ceil(zeroCrossings / (2 * cutoff));
  const taps = 2 * half;
  // The interpolated table needs one extra row (fraction 1) to blend towards.
  const rows = exact ? phases : phases + 1;
  const coefficients = new Float32Array(rows * taps);
  const windowNorm = besselI0(beta);
  for (let p = 0; p < rows; p++) {
    const fraction = p / phases;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      // Distance from the output time to the input sample this tap reads.
      const distance = fraction + half - 1 - j;
      const ratio = distance / half;
      const window = Math.abs(ratio) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - ratio * ratio)) / windowNorm;
      const value = 2 * cutoff * sinc(2 * cutoff * distance) * window;
      coefficients[p * taps + j] = value;
      sum += value;
    }
    for (let j = 0; j < taps; j++) coefficients[p * taps + j] /= sum;
  }
  const table = { coefficients, phases, taps, half };
  tableCache.set(key, table);
  return table;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Modified Bessel function of the first kind, order 0, by its power series. */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const quarterSquare = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= quarterSquare / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function checkRate(rate: number, which: string): void {
  if (!Number.isInteger(rate) || rate <= 0) {
    throw new RangeError(`resampler ${which} rate must be a positive whole number of Hz, got ${rate}`);
  }
}
