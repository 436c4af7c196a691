/**
 * An urgency score cut (never rounded up) to `digits` decimals, so a printed score never
 * reaches a threshold the score itself did not: 0.6996 is 0.699 beside "medium", never
 * 0.700 (or 0.70) while high starts at 0.70. Exact for thresholds of at most `digits`
 * decimals, the only ones the config can sensibly hold.
 */
export function truncateScore(score: number, digits = 3): number {
  const scale = 10 ** digits;
  let k = Math.floor(score * scale);
  // score * scale may land a hair either side of the integer it stands for: decide against the score itself.
  if ((k + 1) / scale <= score) k++;
  else if (k / scale > score) k--;
  return k / scale;
}

/** `truncateScore` as text with exactly `digits` decimals, for tables and terminal lines. */
export function scoreText(score: number, digits = 3): string {
  return truncateScore(score, digits).toFixed(digits);
}
