import { wasmBase64 as int8DistanceWasm } from './kernels/int8-distance.wasm.js';
import { instantiateKernel, kernelModule } from '../wasm/kernel-loader.js';

export type DistanceMetric = 'l1' | 'l2';
/** Which code computes the distances: the SIMD kernel (int8-distance.wat) or plain JS. */
export type DistanceKernelName = 'wasm-simd' | 'js';

export interface NeighbourSearchOptions {
  /** `auto` (the default) takes wasm-simd where the runtime supports it. */
  kernel?: 'auto' | DistanceKernelName;
}

export interface NeighbourResult {
  found: number;
  /** Nearest first; valid up to `found`, and until the next search. */
  indices: Int32Array;
  /** Integer-unit distances (sum of |Δ| for L1, sum of Δ² for L2). */
  distances: Float64Array;
}

/** Writes the distance of `query` to every reference into its `out` array. */
interface DistanceKernel {
  readonly name: DistanceKernelName;
  readonly out: Int32Array;
  compute(query: Int8Array, metric: DistanceMetric): void;
}

/**
 * Exhaustive k-nearest-neighbour search over int8 reference vectors, computed on the
 * integers directly: every distance first (one tight kernel loop, SIMD where available),
 * then a top-k pass in JS. Both kernels give bit-identical integer distances and share the
 * top-k code, so which one runs never changes a prediction. Keeps all scratch, so a query
 * allocates nothing.
 */
export class Int8NeighbourSearch {
  readonly count: number;
  readonly kernel: DistanceKernelName;
  private readonly distanceKernel: DistanceKernel;
  private readonly result: NeighbourResult;

  constructor(
    readonly references: Int8Array,
    readonly dim: number,
    readonly maxK: number,
    options: NeighbourSearchOptions = {},
  ) {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim ${dim} must be a positive integer`);
    if (references.length % dim !== 0) throw new Error(`references hold ${references.length} values, not a multiple of dim ${dim}`);
    this.count = references.length / dim;
    const want = options.kernel ?? 'auto';
    const simd = want === 'js' ? null : WasmDistanceKernel.create(references, dim, this.count);
    if (want === 'wasm-simd' && !simd) throw new Error('the wasm-simd distance kernel needs WebAssembly SIMD, which this runtime lacks');
    this.distanceKernel = simd ?? new JsDistanceKernel(references, dim, this.count);
    this.kernel = this.distanceKernel.name;
    this.result = { found: 0, indices: new Int32Array(maxK), distances: new Float64Array(maxK) };
  }

  /** Finds the k nearest references to `query` (≤ k when there are fewer), nearest first. */
  search(query: Int8Array, k: number, metric: DistanceMetric): NeighbourResult {
    if (query.length < this.dim) throw new RangeError(`query has ${query.length} values, the references ${this.dim}`);
    this.distanceKernel.compute(query, metric);
    this.result.found = topK(this.distanceKernel.out, Math.min(k, this.maxK, this.count), this.result.indices, this.result.distances);
    return this.result;
  }
}

/**
 * The kk smallest of `all`, ascending, into idx/dist; ties keep the lower index first. One
 * compare per distance rejects almost every reference once the list is full; insertion into
 * the small sorted list beats a heap for the k ≤ 64 a bundle allows.
 */
function topK(all: Int32Array, kk: number, idx: Int32Array, dist: Float64Array): number {
  if (kk <= 0) return 0;
  let found = 0;
  // Above any int32 distance, so the first kk references always enter.
  let worst = 2 ** 32;
  const n = all.length;
  for (let r = 0; r < n; r++) {
    const d = all[r]!;
    if (d >= worst) continue;
    let pos = found < kk ? found++ : kk - 1;
    while (pos > 0 && dist[pos - 1]! > d) {
      dist[pos] = dist[pos - 1]!;
      idx[pos] = idx[pos - 1]!;
      pos--;
    }
    dist[pos] = d;
    idx[pos] = r;
    if (found === kk) worst = dist[kk - 1]!;
  }
  return found;
}

class JsDistanceKernel implements DistanceKernel {
  readonly name = 'js';
  readonly out: Int32Array;

  constructor(
    private readonly refs: Int8Array,
    private readonly dim: number,
    count: number,
  ) {
    this.out = new Int32Array(count);
  }

  compute(query: Int8Array, metric: DistanceMetric): void {
    // One loop per metric: a branch inside the inner loop costs V8 about a third.
    if (metric === 'l1') this.l1(query);
    else this.l2(query);
  }

  private l1(query: Int8Array): void {
    const { refs, dim, out } = this;
    for (let r = 0, base = 0; r < out.length; r++, base += dim) {
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const diff = refs[base + j]! - query[j]!;
        // Branch-free |diff| on small integers: V8 keeps it in int32 registers.
        const sign = diff >> 31;
        d = (d + ((diff ^ sign) - sign)) | 0;
      }
      out[r] = d;
    }
  }

  private l2(query: Int8Array): void {
    const { refs, dim, out } = this;
    for (let r = 0, base = 0; r < out.length; r++, base += dim) {
      let d = 0;
      for (let j = 0; j < dim; j++) {
        const diff = refs[base + j]! - query[j]!;
        d = (d + diff * diff) | 0;
      }
      out[r] = d;
    }
  }
}

type KernelFn = (refs: number, query: number, out: number, count: number, chunks: number) => void;

/**
 * int8-distance.wat over a private copy of the references, each row zero-padded to a
 * multiple of 16 bytes (one v128): made once, at construction.
 */
class WasmDistanceKernel implements DistanceKernel {
  readonly name = 'wasm-simd';

  private constructor(
    private readonly l1: KernelFn,
    private readonly l2: KernelFn,
    private readonly query: Int8Array,
    readonly out: Int32Array,
    private readonly queryOffset: number,
    private readonly count: number,
    private readonly chunks: number,
  ) {}

  static create(references: Int8Array, dim: number, count: number): WasmDistanceKernel | null {
    const module = kernelModule(int8DistanceWasm);
    if (!module) return null;
    const chunks = Math.ceil(dim / 16);
    const stride = chunks * 16;
    const queryOffset = count * stride;
    const outOffset = queryOffset + stride;
    const { exports, memory } = instantiateKernel(module, outOffset + count * 4);
    const padded = new Int8Array(memory.buffer, 0, queryOffset);
    if (stride === dim) padded.set(references);
    else for (let r = 0; r < count; r++) padded.set(references.subarray(r * dim, (r + 1) * dim), r * stride);
    return new WasmDistanceKernel(
      exports['l1'] as KernelFn,
      exports['l2'] as KernelFn,
      new Int8Array(memory.buffer, queryOffset, dim),
      new Int32Array(memory.buffer, outOffset, count),
      queryOffset,
      count,
      chunks,
    );
  }

  compute(query: Int8Array, metric: DistanceMetric): void {
    this.query.set(query.length === this.query.length ? query : query.subarray(0, this.query.length));
    (metric === 'l1' ? this.l1 : this.l2)(0, this.queryOffset, this.out.byteOffset, this.count, this.chunks);
  }
}
