import type { FeatureOutput } from './output.js';
import { instantiateKernel, kernelModule } from '../../wasm/kernel-loader.js';
import { wasmBase64 as autocorrelationWasm } from '../kernels/autocorrelation.wasm.js';

/** Lowest and highest F0 searched (Hz): covers low male to high, tense female voices. */
export const PITCH_MIN_HZ = 60;
export const PITCH_MAX_HZ = 400;
/** Normalised autocorrelation above which a frame counts as voiced. */
export const VOICING_THRESHOLD = 0.5;
const F0_REFERENCE_HZ = 50;

/** The autocorrelation kernel's instance: the half frame goes in at `x`, the cross terms come out at `out`. */
interface XcorrKernel {
  xcorr: (x: number, n: number, from: number, to: number, out: number) => void;
  heap: Float64Array;
  /** Float64 indices of the input and output areas in `heap`. */
  x: number;
  out: number;
}

/** Scratch the pitch extractor reuses: the frame decimated by two. */
export interface PitchScratch {
  half: Float64Array;
  /** Normalised autocorrelation per lag. */
  nccf: Float64Array;
  /** energy[k] = Σ half[i]² for i < k: both energies of every lag in O(1). */
  energy: Float64Array;
  /** The wasm-simd cross-term kernel, or null for the same sums in JS. */
  kernel: XcorrKernel | null;
}

export type PitchKernelName = 'wasm-simd' | 'js';

/** `auto` takes the wasm-simd kernel where the runtime has WebAssembly SIMD. */
export function pitchScratch(frameSize: number, kernel: 'auto' | PitchKernelName = 'auto'): PitchScratch {
  const n = frameSize >> 1;
  const module = kernel === 'js' ? null : kernelModule(autocorrelationWasm);
  if (kernel === 'wasm-simd' && !module) throw new Error('the wasm-simd autocorrelation kernel needs WebAssembly SIMD, which this runtime lacks');
  let xcorr: XcorrKernel | null = null;
  let half = new Float64Array(n);
  if (module) {
    const { exports, memory } = instantiateKernel(module, 16 * n);
    xcorr = { xcorr: exports['xcorr'] as XcorrKernel['xcorr'], heap: new Float64Array(memory.buffer), x: 0, out: n };
    // The decimated frame is written straight into the kernel's memory: no copy per frame.
    half = new Float64Array(memory.buffer, 0, n);
  }
  return { half, nccf: new Float64Array(n), energy: new Float64Array(n + 1), kernel: xcorr };
}

/** Σ half[i]·half[i + lag] for i < n − lag, into nccf[lag], for lag in [from, to]. */
function crossTerms(scratch: PitchScratch, n: number, from: number, to: number): void {
  const { half, nccf, kernel } = scratch;
  if (kernel) {
    // `half` is already the kernel's input (a view of its memory at `x`).
    kernel.xcorr(kernel.x * 8, n, from, to, kernel.out * 8);
    for (let lag = from; lag <= to; lag++) nccf[lag] = kernel.heap[kernel.out + lag - from]!;
    return;
  }
  for (let lag = from; lag <= to; lag++) {
    const m = n - lag;
    let xy0 = 0, xy1 = 0, xy2 = 0, xy3 = 0;
    let i = 0;
    for (; i + 3 < m; i += 4) {
      xy0 += half[i]! * half[i + lag]!;
      xy1 += half[i + 1]! * half[i + 1 + lag]!;
      xy2 += half[i + 2]! * half[i + 2 + lag]!;
      xy3 += half[i + 3]! * half[i + 3 + lag]!;
    }
    for (; i < m; i++) xy0 += half[i]! * half[i + lag]!;
    nccf[lag] = xy0 + xy1 + xy2 + xy3;
  }
}

/**
 * F0 and voicing of one raw (unwindowed) frame by normalised autocorrelation (NCCF) on the
 * frame decimated by two (pairs averaged: the search then costs a quarter), with parabolic
 * interpolation around the best lag. Writes two values:
 *  - log2(F0 / 50 Hz) for a voiced frame (0.26 at 60 Hz … 3 at 400 Hz), 0 when unvoiced;
 *  - the peak normalised autocorrelation, 0..1 (periodicity: how voiced the frame is).
 */
export function pitch(frame: Float32Array, length: number, sampleRate: number, scratch: PitchScratch, out: FeatureOutput, offset: number): void {
  const half = scratch.half;
  const n = length >> 1;
  let mean = 0;
  for (let i = 0; i < n; i++) {
    half[i] = 0.5 * (frame[2 * i]! + frame[2 * i + 1]!);
    mean += half[i]!;
  }
  mean /= n;
  const energy = scratch.energy;
  energy[0] = 0;
  for (let i = 0; i < n; i++) {
    const v = (half[i]! -= mean);
    energy[i + 1] = energy[i]! + v * v;
  }
  const rate = sampleRate / 2;
  const minLag = Math.max(2, Math.floor(rate / PITCH_MAX_HZ));
  const maxLag = Math.min(n - 8, Math.ceil(rate / PITCH_MIN_HZ));
  const nccf = scratch.nccf;
  let top = 0;
  // The cross terms are the hot loop of the whole feature set (a kernel); the two energies
  // of each lag come from the prefix sums.
  crossTerms(scratch, n, minLag - 1, maxLag + 1);
  for (let lag = minLag - 1; lag <= maxLag + 1; lag++) {
    const xy = nccf[lag]!;
    const xx = energy[n - lag]!;
    const yy = energy[n]! - energy[lag]!;
    nccf[lag] = xx > 0 && yy > 0 ? xy / Math.sqrt(xx * yy) : 0;
    if (lag >= minLag && lag <= maxLag && nccf[lag]! > top) top = nccf[lag]!;
  }
  // The shortest lag whose peak comes near the highest one: multiples of the period peak
  // almost as high, and taking them would halve F0 (an octave error).
  let bestLag = 0;
  for (let lag = minLag; lag <= maxLag; lag++) {
    const r = nccf[lag]!;
    if (r >= 0.9 * top && r >= nccf[lag - 1]! && r >= nccf[lag + 1]!) {
      bestLag = lag;
      break;
    }
  }
  const best = bestLag > 0 ? nccf[bestLag]! : top;
  const bestPrev = bestLag > 0 ? nccf[bestLag - 1]! : 0;
  const bestNext = bestLag > 0 ? nccf[bestLag + 1]! : 0;
  if (bestLag === 0 || best < VOICING_THRESHOLD) {
    out[offset] = 0;
    out[offset + 1] = Math.max(0, best);
    return;
  }
  const denom = bestPrev - 2 * best + bestNext;
  const shift = denom < 0 ? (0.5 * (bestPrev - bestNext)) / denom : 0;
  const f0 = rate / (bestLag + Math.max(-0.5, Math.min(0.5, shift)));
  out[offset] = Math.log2(f0 / F0_REFERENCE_HZ);
  out[offset + 1] = Math.min(1, best);
}
