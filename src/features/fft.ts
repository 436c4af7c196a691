/**
 * Real-input FFT for the feature hot path.
 *
 * An n-point real transform is done as an n/2-point complex transform of the even/odd
 * samples packed as re/im, followed by the standard split step. That halves the work of a
 * complex FFT of the zero-imaginary signal. Everything (bit-reversal table, twiddles,
 * work arrays) is allocated once in the constructor, so a transform allocates nothing.
 * Float64 throughout: V8 computes in doubles, so Float32 storage would only add a
 * conversion per load and store. Radix-2 passes are fused in pairs (radix 2²) because on
 * this hardware memory passes, not multiplications, dominate.
 *
 * scripts/bench-features.ts compares it with meyda's own `fftjs` (which allocates per
 * call): ≈4 µs against ≈30 µs for a 512-point power + amplitude spectrum on the 2-core
 * x86 development machine, so this one is kept.
 */
export class RealFft {
  /** Transform length n (a power of two, ≥ 4). */
  readonly size: number;
  /** Number of spectrum bins n/2 + 1 (DC to Nyquist, both included). */
  readonly bins: number;
  /** Real and imaginary parts of bins 0..n/2 after `forward`. */
  readonly re: Float64Array;
  readonly im: Float64Array;

  private readonly half: number;
  private readonly bitReverse: Int32Array;
  /**
   * Complex-stage twiddles in the order the passes read them: per pass and per j,
   * (w1r, w1i, w2r, w2i) with w1 = e^(−2πij/L), w2 = e^(−2πij/2L).
   */
  private readonly twiddles: Float64Array;
  /** cos/sin of 2πk/n, k ≤ n/2: the real-split twiddles. */
  private readonly splitCos: Float64Array;
  private readonly splitSin: Float64Array;
  private readonly zr: Float64Array;
  private readonly zi: Float64Array;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 4 || (size & (size - 1)) !== 0) {
      throw new RangeError(`RealFft: size ${size} must be a power of two ≥ 4`);
    }
    this.size = size;
    const half = size >> 1;
    this.half = half;
    this.bins = half + 1;
    this.re = new Float64Array(half + 1);
    this.im = new Float64Array(half + 1);
    this.zr = new Float64Array(half);
    this.zi = new Float64Array(half);

    const bits = Math.log2(half);
    this.bitReverse = new Int32Array(half);
    for (let i = 0; i < half; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.bitReverse[i] = r;
    }
    const tw: number[] = [];
    let len = half >= 4 ? 8 : 4;
    for (; 2 * len <= half; len <<= 2) {
      for (let j = 0; j < len >> 1; j++) {
        tw.push(Math.cos((2 * Math.PI * j) / len), -Math.sin((2 * Math.PI * j) / len));
        tw.push(Math.cos((Math.PI * j) / len), -Math.sin((Math.PI * j) / len));
      }
    }
    if (len <= half) {
      for (let j = 0; j < len >> 1; j++) tw.push(Math.cos((2 * Math.PI * j) / len), -Math.sin((2 * Math.PI * j) / len), 0, 0);
    }
    this.twiddles = Float64Array.from(tw);
    this.splitCos = new Float64Array(half + 1);
    this.splitSin = new Float64Array(half + 1);
    for (let k = 0; k <= half; k++) {
      this.splitCos[k] = Math.cos((2 * Math.PI * k) / size);
      this.splitSin[k] = Math.sin((2 * Math.PI * k) / size);
    }
  }

  /**
   * Forward DFT X[k] = Σ x[t]·e^(−2πikt/n) of `input` (length ≥ n; only the first n
   * samples are read) into `re`/`im`, bins 0..n/2.
   */
  forward(input: Float64Array): void {
    this.complexTransform(input);
    const half = this.half;
    const zr = this.zr;
    const zi = this.zi;
    const re = this.re;
    const im = this.im;
    const splitCos = this.splitCos;
    const splitSin = this.splitSin;
    re[0] = zr[0]! + zi[0]!;
    im[0] = 0;
    re[half] = zr[0]! - zi[0]!;
    im[half] = 0;
    // Split step: X[k] = E[k] − i·W^k·O[k] with E, O the spectra of the even and odd samples.
    for (let k = 1; k < half; k++) {
      const a = zr[k]!, b = zi[k]!, c = zr[half - k]!, d = zi[half - k]!;
      const er = 0.5 * (a + c), ei = 0.5 * (b - d);
      const or = 0.5 * (a - c), oi = 0.5 * (b + d);
      const cs = splitCos[k]!, sn = splitSin[k]!;
      re[k] = er + oi * cs - or * sn;
      im[k] = ei - (or * cs + oi * sn);
    }
  }

  /**
   * The power spectrum |X[k]|², k = 0..n/2, of `input` straight into `power` (length ≥
   * n/2 + 1), and its square root |X[k]| into `amplitude` when given, without storing X:
   * the hot-path form of `forward` + `powerSpectrum`. `re`/`im` are left stale.
   */
  forwardPower(input: Float64Array, power: Float64Array, amplitude: Float64Array | null = null): void {
    this.complexTransform(input);
    const half = this.half;
    const zr = this.zr;
    const zi = this.zi;
    const splitCos = this.splitCos;
    const splitSin = this.splitSin;
    const dc = zr[0]! + zi[0]!;
    const nyquist = zr[0]! - zi[0]!;
    power[0] = dc * dc;
    power[half] = nyquist * nyquist;
    for (let k = 1; k < half; k++) {
      const a = zr[k]!, b = zi[k]!, c = zr[half - k]!, d = zi[half - k]!;
      const er = a + c, ei = b - d;
      const or = a - c, oi = b + d;
      const cs = splitCos[k]!, sn = splitSin[k]!;
      // Twice X[k]; the 0.25 restores the halves dropped above.
      const xr = er + oi * cs - or * sn;
      const xi = ei - (or * cs + oi * sn);
      power[k] = 0.25 * (xr * xr + xi * xi);
    }
    if (amplitude !== null) {
      amplitude[0] = Math.abs(dc);
      amplitude[half] = Math.abs(nyquist);
      for (let k = 1; k < half; k++) amplitude[k] = Math.sqrt(power[k]!);
    }
  }

  /** The n/2-point complex FFT of the even/odd-packed input into zr/zi, natural order. */
  private complexTransform(input: Float64Array): void {
    const half = this.half;
    const zr = this.zr;
    const zi = this.zi;
    const rev = this.bitReverse;

    // Pack even samples as real, odd as imaginary, straight into bit-reversed order.
    for (let i = 0; i < half; i++) {
      const j = rev[i]!;
      zr[j] = input[2 * i]!;
      zi[j] = input[2 * i + 1]!;
    }

    let len = 2;
    if (half >= 4) {
      // Stages of length 2 and 4 fused: twiddles 1 and −i only, no multiplications.
      for (let i = 0; i < half; i += 4) {
        const r0 = zr[i]!, i0 = zi[i]!, r1 = zr[i + 1]!, i1 = zi[i + 1]!;
        const r2 = zr[i + 2]!, i2 = zi[i + 2]!, r3 = zr[i + 3]!, i3 = zi[i + 3]!;
        const ar = r0 + r1, ai = i0 + i1, br = r0 - r1, bi = i0 - i1;
        const cr = r2 + r3, ci = i2 + i3, dr = r2 - r3, di = i2 - i3;
        zr[i] = ar + cr;
        zi[i] = ai + ci;
        zr[i + 2] = ar - cr;
        zi[i + 2] = ai - ci;
        // (−i)·d = (di, −dr)
        zr[i + 1] = br + di;
        zi[i + 1] = bi - dr;
        zr[i + 3] = br - di;
        zi[i + 3] = bi + dr;
      }
      len = 8;
    } else {
      for (let i = 0; i < half; i += 2) {
        const ar = zr[i]!, ai = zi[i]!, br = zr[i + 1]!, bi = zi[i + 1]!;
        zr[i] = ar + br;
        zi[i] = ai + bi;
        zr[i + 1] = ar - br;
        zi[i + 1] = ai - bi;
      }
      len = 4;
    }

    // Remaining stages two at a time (radix 2²): the stages of length L and 2L over the
    // four points j, j+L/2, j+L, j+3L/2 of each 2L block, halving the passes over memory.
    const tw = this.twiddles;
    let t = 0;
    for (; 2 * len <= half; len <<= 2) {
      const h = len >> 1;
      const span = len << 1;
      for (let j = 0; j < h; j++, t += 4) {
        const w1r = tw[t]!, w1i = tw[t + 1]!, w2r = tw[t + 2]!, w2i = tw[t + 3]!;
        for (let i = j; i < half; i += span) {
          const i1 = i + h, i2 = i + len, i3 = i2 + h;
          const r0 = zr[i]!, q0 = zi[i]!;
          let r1 = zr[i1]!, q1 = zi[i1]!;
          const r2 = zr[i2]!, q2 = zi[i2]!;
          let r3 = zr[i3]!, q3 = zi[i3]!;
          // Stage L: w1 = e^(−2πij/L) on the odd points of both pairs.
          let tr = r1 * w1r - q1 * w1i, ti = r1 * w1i + q1 * w1r;
          r1 = r0 - tr;
          q1 = q0 - ti;
          const a0r = r0 + tr, a0i = q0 + ti;
          tr = r3 * w1r - q3 * w1i;
          ti = r3 * w1i + q3 * w1r;
          r3 = r2 - tr;
          q3 = q2 - ti;
          const a2r = r2 + tr, a2i = q2 + ti;
          // Stage 2L: w2 = e^(−2πij/2L) for (0, 2), −i·w2 for (1, 3).
          tr = a2r * w2r - a2i * w2i;
          ti = a2r * w2i + a2i * w2r;
          zr[i] = a0r + tr;
          zi[i] = a0i + ti;
          zr[i2] = a0r - tr;
          zi[i2] = a0i - ti;
          const ur = r3 * w2r - q3 * w2i, ui = r3 * w2i + q3 * w2r;
          // −i·u = (ui, −ur)
          zr[i1] = r1 + ui;
          zi[i1] = q1 - ur;
          zr[i3] = r1 - ui;
          zi[i3] = q1 + ur;
        }
      }
    }
    // An odd number of stages leaves one plain radix-2 stage.
    if (len <= half) {
      const h = len >> 1;
      for (let j = 0; j < h; j++, t += 4) {
        const wr = tw[t]!, wi = tw[t + 1]!;
        for (let i = j; i < half; i += len) {
          const k = i + h;
          const xr = zr[k]!, xi = zi[k]!;
          const tr = xr * wr - xi * wi;
          const ti = xr * wi + xi * wr;
          const ur = zr[i]!, ui = zi[i]!;
          zr[i] = ur + tr;
          zi[i] = ui + ti;
          zr[k] = ur - tr;
          zi[k] = ui - ti;
        }
      }
    }
  }

  /** |X[k]|² for k = 0..n/2 into `out` (length ≥ n/2 + 1), after `forward`. */
  powerSpectrum(out: Float64Array): void {
    const re = this.re;
    const im = this.im;
    for (let k = 0; k <= this.half; k++) {
      const r = re[k]!, i = im[k]!;
      out[k] = r * r + i * i;
    }
  }
}
