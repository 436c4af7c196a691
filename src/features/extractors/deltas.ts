/**
 * HTK delta regression over ±width frames,
 *   d[t] = Σ_{n=1..width} n·(c[t+n] − c[t−n]) / (2·Σ n²),
 * with the first and last frame repeated past the edges (as HTK does), so a constant gives
 * 0 and a linear ramp gives its slope away from the edges.
 *
 * Works on row-major frame vectors (`frames` rows of `dim` columns): reads the `count`
 * columns from `source` and writes their deltas to the columns from `target`. Deltas need
 * frames on both sides, so they are computed over a finished window of frame vectors
 * rather than frame by frame; see fillDeltas in frame-analyser.ts.
 */
export function htkDeltas(
  rows: Float32Array,
  frames: number,
  dim: number,
  source: number,
  target: number,
  count: number,
  width: number,
): void {
  let norm = 0;
  for (let n = 1; n <= width; n++) norm += n * n;
  const scale = 1 / (2 * norm);
  const last = frames - 1;
  for (let t = 0; t < frames; t++) {
    const out = t * dim + target;
    for (let c = 0; c < count; c++) {
      let sum = 0;
      for (let n = 1; n <= width; n++) {
        const ahead = (t + n > last ? last : t + n) * dim + source;
        const behind = (t - n < 0 ? 0 : t - n) * dim + source;
        sum += n * (rows[ahead + c]! - rows[behind + c]!);
      }
      rows[out + c] = sum * scale;
    }
  }
}
