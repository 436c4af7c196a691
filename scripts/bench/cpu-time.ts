/** CPU seconds (user + system) spent by this process while running `work`. */
export function cpuSeconds(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

/** Repeats `work` until it has used at least `minSeconds` of CPU; returns CPU seconds per call. */
export function cpuSecondsPerCall(work: () => void, minSeconds = 0.5): number {
  let calls = 0;
  let total = 0;
  while (total < minSeconds) {
    total += cpuSeconds(work);
    calls++;
  }
  return total / calls;
}
