import { z } from 'zod';

/**
 * Standard deviations below this are treated as 1: a dimension that (almost) never varied
 * in training carries no information, and dividing by its tiny std would turn inference
 * noise into huge values. (The same convention as scikit-learn's StandardScaler for 0.)
 */
export const STD_FLOOR = 1e-6;

/** How a normaliser is stored in a model bundle manifest. */
export interface NormaliserJson {
  mean: number[];
  std: number[];
}

const normaliserJsonSchema = z
  .object({
    mean: z.array(z.number().finite()).min(1),
    std: z.array(z.number().finite().nonnegative()).min(1),
  })
  .strict()
  .refine((v) => v.mean.length === v.std.length, { message: 'mean and std differ in length', path: ['std'] });

/** Per-dimension standardisation (x − mean) / std of frame or pooled vectors. */
export class Normaliser {
  readonly dim: number;
  readonly mean: Float64Array;
  readonly std: Float64Array;
  /** 1 / effective std, precomputed so `apply` multiplies. */
  private readonly scale: Float64Array;

  constructor(mean: ArrayLike<number>, std: ArrayLike<number>) {
    if (mean.length !== std.length || mean.length === 0) {
      throw new RangeError(`Normaliser: mean (${mean.length}) and std (${std.length}) must be non-empty and of equal length`);
    }
    this.dim = mean.length;
    this.mean = Float64Array.from(mean);
    this.std = Float64Array.from(std);
    this.scale = new Float64Array(this.dim);
    for (let d = 0; d < this.dim; d++) {
      const s = this.std[d]!;
      if (!Number.isFinite(s) || !Number.isFinite(this.mean[d]!) || s < 0) throw new RangeError(`Normaliser: dimension ${d} has mean ${this.mean[d]}, std ${s}`);
      this.scale[d] = s < STD_FLOOR ? 1 : 1 / s;
    }
  }

  /** Standardises row-major vectors of `dim` values in place (`rows.length` a multiple of dim). */
  apply(rows: Float32Array): void {
    const dim = this.dim;
    if (rows.length % dim !== 0) throw new RangeError(`Normaliser.apply: ${rows.length} values are not whole rows of ${dim}`);
    const mean = this.mean;
    const scale = this.scale;
    for (let i = 0; i < rows.length; i += dim) {
      for (let d = 0; d < dim; d++) rows[i + d] = (rows[i + d]! - mean[d]!) * scale[d]!;
    }
  }

  toJSON(): NormaliserJson {
    return { mean: Array.from(this.mean), std: Array.from(this.std) };
  }

  /** Reads a manifest's normaliser, naming `where` (file and key) in the error. */
  static fromJSON(value: unknown, where: string): Normaliser {
    const parsed = normaliserJsonSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${where}: normaliser ${issue.path.join('.') || '(root)'} ${issue.message}`);
    }
    return new Normaliser(parsed.data.mean, parsed.data.std);
  }
}

/** Fits per-dimension mean and population std to row-major `rows` of `dim` values. */
export function fitNormaliser(rows: Float32Array, dim: number): Normaliser {
  const count = rows.length / dim;
  if (!Number.isInteger(count) || count === 0) throw new RangeError(`fitNormaliser: ${rows.length} values are not one or more rows of ${dim}`);
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (let i = 0; i < rows.length; i += dim) for (let d = 0; d < dim; d++) mean[d] = mean[d]! + rows[i + d]!;
  for (let d = 0; d < dim; d++) mean[d] = mean[d]! / count;
  for (let i = 0; i < rows.length; i += dim) {
    for (let d = 0; d < dim; d++) {
      const x = rows[i + d]! - mean[d]!;
      std[d] = std[d]! + x * x;
    }
  }
  for (let d = 0; d < dim; d++) std[d] = Math.sqrt(std[d]! / count);
  return new Normaliser(mean, std);
}
