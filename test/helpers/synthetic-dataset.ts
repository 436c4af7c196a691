import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { synthesiseVoice, VOICE_STYLES } from '../../src/audio/synthetic-voice.js';
import { writeWav } from './audio-fixtures.js';

/** Labels of the synthetic classes: three clearly separable "voices". */
export const SYNTHETIC_LABELS = { calm: 'neutral', angry: 'angry', sad: 'sad' } as const;

/**
 * Writes a small labelled dataset (a CSV and WAVs) of synthetic voices, `perClass` clips
 * per class and speaker, with small per-speaker pitch shifts so speakers differ.
 */
export async function writeSyntheticDataset(dir: string, options: { speakers: number; perClass: number; seconds?: number }): Promise<string> {
  await mkdir(dir, { recursive: true });
  const lines = ['path,label,speaker,gender'];
  let seed = 1;
  for (let s = 0; s < options.speakers; s++) {
    for (const [style, label] of Object.entries(SYNTHETIC_LABELS)) {
      for (let i = 0; i < options.perClass; i++) {
        const base = VOICE_STYLES[style as keyof typeof VOICE_STYLES];
        const voice = synthesiseVoice({ ...base, f0: base.f0 * (1 + 0.05 * (s - options.speakers / 2)) }, options.seconds ?? 2.5, 16000, seed++);
        const name = `s${s}-${style}-${i}.wav`;
        await writeWav(join(dir, name), [voice], 16000, '16');
        lines.push(`${name},${label},spk${s},${s % 2 ? 'male' : 'female'}`);
      }
    }
  }
  const csv = join(dir, 'labels.csv');
  await writeFile(csv, lines.join('\n') + '\n');
  return csv;
}
