import type { Classifier } from '../model/classifier.js';
import { loadClassifier } from '../model/load-classifier.js';
import { classifyFile, type FileVerdict } from '../pipeline/classify-file.js';
import { resolveWeights, weightsForLabels } from '../urgency/urgency-score.js';
import { DEFAULT_TRACKER_CONFIG } from '../urgency/urgency-tracker.js';
import { DEFAULT_WINDOWING } from '../audio/speech-windower.js';

export interface ClassifyCommandOptions {
  model: string;
  json: boolean;
  window: number;
  hop: number;
}

function describe(v: FileVerdict): string {
  const lines = [];
  const head = v.emotion
    ? `${v.emotion} ${(v.probabilities[v.emotion]! * 100).toFixed(0)}%  urgency ${v.urgency.level} (${v.urgency.score.toFixed(2)}; live tracker peak: ${v.urgency.trackedPeak})`
    : 'no speech found';
  lines.push(`${v.file}  ${v.durationSeconds.toFixed(1)} s  ${head}`);
  for (const w of v.windows) {
    const top = Object.entries(w.probabilities)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([l, p]) => `${l} ${(p * 100).toFixed(0)}%`)
      .join(', ');
    lines.push(`  ${w.start.toFixed(2).padStart(7)}–${w.end.toFixed(2).padEnd(7)} s  ${top}  → ${w.urgency.level}`);
  }
  return lines.join('\n');
}

/** What is wrong with a --window/--hop pair, or null: the windower's rules, in the flags' terms. */
export function windowingProblem(window: number, hop: number): string | null {
  if (!(window > 0) || !(hop > 0)) return `--window ${window} and --hop ${hop} must both be positive numbers of seconds`;
  if (hop > window) return `--hop ${hop} s is longer than --window ${window} s, so speech between windows would never be classified: use a hop no longer than the window`;
  return null;
}

/**
 * Classifies each file in turn. A file that cannot be read gets one error line on stderr
 * and the rest still run; the exit code says whether any failed. Bad options or a bad
 * model stop it before any file is read, with exit code 2.
 */
export async function runClassify(files: string[], options: ClassifyCommandOptions): Promise<number> {
  const problem = windowingProblem(options.window, options.hop);
  if (problem) {
    process.stderr.write(`ser-edge classify: ${problem}\n`);
    return 2;
  }
  let classifier: Classifier;
  try {
    classifier = await loadClassifier(options.model);
  } catch (err) {
    process.stderr.write(`ser-edge classify: ${(err as Error).message}\n`);
    return 2;
  }
  const labelWeights = weightsForLabels(classifier.labels, resolveWeights(classifier.manifest.urgencyWeights));
  const windowing = { ...DEFAULT_WINDOWING, windowSeconds: options.window, hopSeconds: options.hop };
  let failed = 0;
  for (const file of files) {
    try {
      const verdict = await classifyFile(file, classifier, { labelWeights, thresholds: DEFAULT_TRACKER_CONFIG.thresholds, tracker: DEFAULT_TRACKER_CONFIG, windowing });
      process.stdout.write((options.json ? JSON.stringify(verdict) : describe(verdict)) + '\n');
    } catch (err) {
      failed++;
      process.stderr.write(`ser-edge classify: ${(err as Error).message}\n`);
    }
  }
  classifier.dispose();
  return failed > 0 ? 1 : 0;
}
