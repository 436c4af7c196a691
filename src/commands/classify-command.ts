import type { Classifier } from '../model/classifier.js';
import { UrgencyStage } from '../urgency/call-urgency.js';
import { loadClassifier } from '../model/load-classifier.js';
import { classifyFile, type FileVerdict } from '../pipeline/classify-file.js';
import { levelRank, type UrgencyLevel } from '../urgency/urgency-score.js';
import { scoreText } from '../urgency/score-text.js';
import { DEFAULT_WINDOWING, type WindowingConfig } from '../audio/speech-windower.js';

export interface ClassifyCommandOptions {
  model: string;
  json: boolean;
  window: number;
  hop: number;
}

/**
 * A file's verdict for a person. The summary keeps apart the two things it reports, so they
 * cannot read as a contradiction: the whole file's score (its mean probabilities, scored once),
 * and the level a live call's tracker would have reached over its windows, with the reason
 * when that is lower (a short clip may never give the tracker the windows it needs).
 */
export function describeVerdict(v: FileVerdict, settings: { urgency: UrgencyStage; windowing: WindowingConfig }): string {
  const lines = [];
  const { urgency, windowing } = settings;
  // The tracker of the score that gives the whole file its level.
  const tracker = urgency.configs[Math.max(0, urgency.drivers.indexOf(v.urgency.driver))]!;
  const what = v.urgency.driver === 'weighted' ? 'a smoothed score' : `a smoothed ${v.urgency.driver} score`;
  let head = 'no speech found';
  if (v.emotion) {
    head = `${v.emotion} ${(v.probabilities[v.emotion]! * 100).toFixed(0)}%  whole-file score ${scoreText(v.urgency.score)} (${v.urgency.level}); live tracker reached ${v.urgency.trackedPeak}`;
    if (levelRank(v.urgency.trackedPeak) < levelRank(v.urgency.level)) {
      const level = v.urgency.level as Exclude<UrgencyLevel, 'low'>;
      const why = v.windows.length < tracker.raiseWindows ? `this file has ${v.windows.length} window${v.windows.length === 1 ? '' : 's'}` : `its smoothed score peaked at ${scoreText(v.urgency.trackedPeakScore)}`;
      head += ` (it raises ${level} after ${tracker.raiseWindows} window${tracker.raiseWindows === 1 ? '' : 's'} in a row with ${what} ≥ ${tracker.thresholds[level]}; ${why})`;
    } else if (levelRank(v.urgency.trackedPeak) > levelRank(v.urgency.level)) {
      head += ' (a stretch of the file was more urgent than the file as a whole)';
    }
  }
  lines.push(`${v.file}  ${v.durationSeconds.toFixed(1)} s  ${head}`);
  for (const w of v.windows) {
    const top = Object.entries(w.probabilities)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([l, p]) => `${l} ${(p * 100).toFixed(0)}%`)
      .join(', ');
    lines.push(`  ${w.start.toFixed(2).padStart(7)}–${`${w.end.toFixed(2)} s`.padEnd(8)}  ${w.speechSeconds.toFixed(1)} s of speech  ${top}  → ${w.urgency.level} ${scoreText(w.urgency.score)}`);
  }
  if (v.windows.some((w, i) => i > 0 && w.start === v.windows[i - 1]!.start)) {
    // The windower's design, not a fault: a short utterance still gets a verdict, and the next window holds it again with more speech.
    lines.push(
      `  (each window holds the last ${windowing.windowSeconds} s of speech, pauses left out: one every ${windowing.hopSeconds} s of new speech and one at each pause; ` +
        `until ${windowing.windowSeconds} s of speech are in, each starts at the first, so some share a start)`,
    );
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
  const urgency = UrgencyStage.of(classifier);
  const windowing = { ...DEFAULT_WINDOWING, windowSeconds: options.window, hopSeconds: options.hop };
  let failed = 0;
  for (const file of files) {
    try {
      const verdict = await classifyFile(file, classifier, { urgency, windowing });
      process.stdout.write((options.json ? JSON.stringify(verdict) : describeVerdict(verdict, { urgency, windowing })) + '\n');
    } catch (err) {
      failed++;
      process.stderr.write(`ser-edge classify: ${(err as Error).message}\n`);
    }
  }
  classifier.dispose();
  return failed > 0 ? 1 : 0;
}
