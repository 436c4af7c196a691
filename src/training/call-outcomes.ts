import type { UrgencyStage } from '../urgency/call-urgency.js';
import { flagsOf, type CallFlags, type JudgedCall } from './call-simulation.js';

/** What the call-centre asks of the urgency stage, over a set of judged calls. */
export interface CallOutcome {
  angryCalls: number;
  /** Share of angry callers flagged high after their anger starts, and the median seconds from its first utterance. */
  angryHighShare: number;
  angryMedianSeconds: number | null;
  sadCalls: number;
  /** Share of sad callers flagged medium or higher after their sadness starts, and the median seconds. */
  sadFlaggedShare: number;
  sadMedianSeconds: number | null;
  calmHours: number;
  /** Flags raised to high, and flags of any level (rises out of low), per hour of calm calls. */
  falseHighPerHour: number;
  falseMediumPerHour: number;
  /** Urgent calls flagged before their urgent part started (an escalating call's neutral opening). */
  flaggedInOpening: number;
}

const median = (xs: number[]) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r3 = (x: number) => Number(x.toFixed(3));

/**
 * The call-level figures of `calls` under `stage`, each call replayed through a fresh
 * CallUrgency (the daemon's own per-call urgency). `flags` may hold each call's flags
 * already replayed (a threshold search replays once per setting).
 */
export function callOutcome(calls: readonly JudgedCall[], stage: UrgencyStage | null, flags?: readonly CallFlags[]): CallOutcome {
  const angryDelays: number[] = [];
  const sadDelays: number[] = [];
  let angryCalls = 0, sadCalls = 0, calmSeconds = 0, falseHigh = 0, falseAny = 0, early = 0;
  calls.forEach((call, i) => {
    const f = flags?.[i] ?? flagsOf(call, stage!);
    if (call.plan.kind === 'calm') {
      calmSeconds += call.seconds;
      falseHigh += f.highRaises.length;
      falseAny += f.anyRaises.length;
      return;
    }
    if (f.anyRaises.some((t) => t < call.onset)) early++;
    if (call.plan.emotion === 'angry') {
      angryCalls++;
      const t = f.highRaises.find((t) => t >= call.onset);
      if (t !== undefined) angryDelays.push(t - call.onset);
    } else {
      sadCalls++;
      // Medium or higher: the first rise out of low after the sadness starts, or a level already up.
      const t = f.anyRaises.find((t) => t >= call.onset) ?? f.highRaises.find((t) => t >= call.onset);
      if (t !== undefined) sadDelays.push(t - call.onset);
    }
  });
  const hours = calmSeconds / 3600;
  const m = (xs: number[]) => {
    const v = median(xs);
    return v === null ? null : Number(v.toFixed(2));
  };
  return {
    angryCalls,
    angryHighShare: r3(angryDelays.length / Math.max(1, angryCalls)),
    angryMedianSeconds: m(angryDelays),
    sadCalls,
    sadFlaggedShare: r3(sadDelays.length / Math.max(1, sadCalls)),
    sadMedianSeconds: m(sadDelays),
    calmHours: r3(hours),
    falseHighPerHour: hours > 0 ? Number((falseHigh / hours).toFixed(2)) : 0,
    falseMediumPerHour: hours > 0 ? Number((falseAny / hours).toFixed(2)) : 0,
    flaggedInOpening: early,
  };
}

/** `callOutcome` over all the calls, and over each channel and kind of call on its own. */
export function callOutcomeBreakdown(calls: readonly JudgedCall[], stage: UrgencyStage): Record<string, CallOutcome> {
  const flags = calls.map((c) => flagsOf(c, stage));
  const subset = (keep: (c: JudgedCall) => boolean) => {
    const picked = calls.map((c, i) => [c, flags[i]!] as const).filter(([c]) => keep(c));
    return callOutcome(picked.map(([c]) => c), stage, picked.map(([, f]) => f));
  };
  const out: Record<string, CallOutcome> = { all: callOutcome(calls, stage, flags) };
  for (const channel of ['clean', 'telephone'] as const) {
    if (!calls.some((c) => c.channel === channel)) continue;
    out[channel] = subset((c) => c.channel === channel);
    // Calm calls count in each kind's figures: the false flags are the same calls'.
    out[`${channel}/escalating`] = subset((c) => c.channel === channel && c.plan.kind !== 'first-word');
    out[`${channel}/first-word`] = subset((c) => c.channel === channel && c.plan.kind !== 'escalating');
  }
  return out;
}

/**
 * Each figure's mean over folds, for each breakdown (`callOutcomeBreakdown`'s keys); a
 * median a fold lacks (no call flagged) is left out of that median's mean.
 */
export function meanOverFolds(folds: readonly Record<string, CallOutcome>[]): Record<string, Record<keyof CallOutcome, number | null>> {
  const out: Record<string, Record<keyof CallOutcome, number | null>> = {};
  for (const key of Object.keys(folds[0] ?? {})) {
    const rows = folds.map((f) => f[key]).filter((r): r is CallOutcome => r !== undefined);
    const mean = {} as Record<keyof CallOutcome, number | null>;
    for (const field of Object.keys(rows[0]!) as (keyof CallOutcome)[]) {
      const xs = rows.map((r) => r[field]).filter((x): x is number => x !== null);
      mean[field] = xs.length ? Number((xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)) : null;
    }
    out[key] = mean;
  }
  return out;
}
