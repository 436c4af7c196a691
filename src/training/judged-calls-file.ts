import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Emotion } from '../model/emotions.js';
import type { JudgedCall } from './call-simulation.js';

const utterance = z.object({ start: z.number(), end: z.number(), label: z.string() });
const fileSchema = z.object({
  /** The bundle that judged the calls, and the fold whose speakers they are. */
  model: z.object({ name: z.string(), version: z.string(), labels: z.array(z.string()), heldOutFold: z.string().nullable() }),
  calls: z.array(
    z.object({
      plan: z.object({ kind: z.enum(['escalating', 'first-word', 'calm']), emotion: z.enum(['angry', 'sad']).nullable(), speaker: z.string(), clips: z.array(z.object({ path: z.string(), label: z.string() })), urgentFrom: z.number().int() }),
      channel: z.enum(['clean', 'telephone']),
      seconds: z.number(),
      /** null for a calm call (no urgent part). */
      onset: z.number().nullable(),
      utterances: z.array(utterance),
      windows: z.array(z.object({ start: z.number(), end: z.number(), probabilities: z.array(z.number()) })),
    }),
  ),
});
export type JudgedCallsFile = z.infer<typeof fileSchema>;
export type JudgedCallsModel = JudgedCallsFile['model'];

/**
 * Judged calls on disk: what a fold's model said of every window of its held-out
 * speakers' calls. Judging is the slow part; fitting and choosing an urgency stage over
 * several folds' calls then takes seconds. Clips are kept by path (the audio is not).
 */
export async function writeJudgedCalls(path: string, model: JudgedCallsModel, calls: readonly JudgedCall[]): Promise<void> {
  const file: JudgedCallsFile = {
    model,
    calls: calls.map((c) => ({
      plan: { kind: c.plan.kind, emotion: c.plan.emotion, speaker: c.plan.speaker, clips: c.plan.clips.map((x) => ({ path: x.path, label: x.label })), urgentFrom: c.plan.urgentFrom },
      channel: c.channel,
      seconds: c.seconds,
      onset: Number.isFinite(c.onset) ? c.onset : null,
      utterances: c.utterances,
      windows: c.windows.map((w) => ({ start: w.start, end: w.end, probabilities: Array.from(w.probabilities) })),
    })),
  };
  await writeFile(path, JSON.stringify(file) + '\n');
}

export async function readJudgedCalls(path: string): Promise<{ model: JudgedCallsModel; calls: JudgedCall[] }> {
  let parsed: JudgedCallsFile;
  try {
    parsed = fileSchema.parse(JSON.parse(await readFile(path, 'utf8')));
  } catch (err) {
    throw new Error(`${path}: not a judged-calls file from simulate-calls --save-calls (${(err as Error).message.split('\n')[0]})`);
  }
  const calls = parsed.calls.map(
    (c): JudgedCall => ({
      plan: { kind: c.plan.kind, emotion: c.plan.emotion, speaker: c.plan.speaker, clips: c.plan.clips.map((x) => ({ path: x.path, label: x.label as Emotion, speaker: c.plan.speaker, corpus: '' })), urgentFrom: c.plan.urgentFrom },
      channel: c.channel,
      seconds: c.seconds,
      onset: c.onset ?? Infinity,
      utterances: c.utterances as JudgedCall['utterances'],
      windows: c.windows.map((w) => ({ start: w.start, end: w.end, probabilities: Float32Array.from(w.probabilities) })),
    }),
  );
  return { model: parsed.model, calls };
}
