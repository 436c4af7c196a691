import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvalMetrics } from './evaluation.js';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Average advance of a sans-serif glyph, in ems. Generous (Helvetica and DejaVu Sans average
 * nearer 0.55), so a line measured with it fits whatever font the viewer substitutes.
 */
const GLYPH_EM = 0.6;

/** Estimated width in px of `text` at `fontSize` (see GLYPH_EM). */
export function textWidth(text: string, fontSize: number): number {
  return [...text].length * fontSize * GLYPH_EM;
}

/**
 * Breaks `text` into lines no wider than `maxWidth` at `fontSize`: between words, and within
 * a word too long for a line (a data path) after a `/` or `,` where it can, else anywhere.
 */
export function wrapText(text: string, fontSize: number, maxWidth: number): string[] {
  const max = Math.max(8, Math.floor(maxWidth / (fontSize * GLYPH_EM)));
  const pieces = text.split(/\s+/).filter(Boolean).flatMap((word) => {
    const parts: string[] = [];
    let rest = word;
    while ([...rest].length > max) {
      const head = rest.slice(0, max);
      const cut = Math.max(head.lastIndexOf('/'), head.lastIndexOf(','));
      const at = cut > 0 ? cut + 1 : max;
      parts.push(rest.slice(0, at));
      rest = rest.slice(at);
    }
    return [...parts, rest];
  });
  const lines: string[] = [];
  for (const piece of pieces) {
    const last = lines.at(-1);
    if (last !== undefined && [...last].length + 1 + [...piece].length <= max) lines[lines.length - 1] = `${last} ${piece}`;
    else lines.push(piece);
  }
  return lines.length > 0 ? lines : [''];
}

/** What the image says above the matrix: the model, and the data it was measured on. */
export interface ConfusionHeading {
  title: string;
  /** The data set evaluated and how (channel, clips), e.g. "data: ../shared/data/cremad (1488 clips) · telephone". */
  data: string;
}

/**
 * The confusion matrix as an SVG heat map: rows are true labels, columns predictions,
 * each cell shaded by its share of the row (recall on the diagonal) and showing the count.
 * Title, data line and caption wrap to the image's width (which grows for a long label set
 * only), so none of them is cut off.
 */
export function confusionSvg(m: EvalMetrics, heading: ConfusionHeading): string {
  const cell = 64, left = 110, margin = 16;
  const rows = m.confusion_labels, cols = m.confusion_columns;
  const width = Math.max(480, left + cols.length * cell + 20);
  const textMax = width - 2 * margin;
  const title = wrapText(heading.title, 14, textMax);
  const data = wrapText(heading.data, 12, textMax);
  const caption = wrapText(`accuracy ${pct(m.accuracy)} · macro-F1 ${m.macro_f1.toFixed(3)} · n = ${m.n} · cells: count and share of the true label's clips`, 11, textMax);
  const headingBottom = 20 + (title.length - 1) * 18 + data.length * 16;
  const predictedY = headingBottom + 20;
  const top = predictedY + 26;
  const matrixBottom = top + rows.length * cell;
  const height = matrixBottom + 16 + caption.length * 14 + 8;
  const lines = (texts: string[], x: number, y: number, step: number, attrs: string) =>
    texts.map((t, i) => `<text x="${x}" y="${y + i * step}" ${attrs}>${esc(t)}</text>`);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...lines(title, width / 2, 20, 18, 'text-anchor="middle" font-size="14" font-weight="bold"'),
    ...lines(data, width / 2, 20 + (title.length - 1) * 18 + 16, 16, 'text-anchor="middle"'),
    `<text x="${left + (cols.length * cell) / 2}" y="${predictedY}" text-anchor="middle">predicted</text>`,
    `<text x="16" y="${top + (rows.length * cell) / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + (rows.length * cell) / 2})">true</text>`,
  ];
  cols.forEach((c, j) => parts.push(`<text x="${left + j * cell + cell / 2}" y="${top - 8}" text-anchor="middle">${esc(c)}</text>`));
  rows.forEach((r, i) => {
    const total = m.confusion[i]!.reduce((a, b) => a + b, 0);
    parts.push(`<text x="${left - 8}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${esc(r)}</text>`);
    cols.forEach((c, j) => {
      const count = m.confusion[i]![j]!;
      const share = total > 0 ? count / total : 0;
      const diagonal = c === r;
      // Diagonal cells in blue, errors in red; darker means a larger share of the row.
      const hue = diagonal ? 215 : 5;
      const light = Math.round(97 - share * 55);
      const ink = light < 60 ? 'white' : 'black';
      const x = left + j * cell, y = top + i * cell;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="hsl(${hue},70%,${light}%)" stroke="#ccc"/>`);
      parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 - 2}" text-anchor="middle" fill="${ink}" font-weight="${diagonal ? 'bold' : 'normal'}">${count}</text>`);
      parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 14}" text-anchor="middle" fill="${ink}" font-size="10">${(share * 100).toFixed(0)}%</text>`);
    });
  });
  parts.push(...lines(caption, margin, matrixBottom + 26, 14, 'font-size="11"'));
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export interface ReportContext {
  model: string;
  data: string[];
  channel: string;
  /** Other clips of the speaker heard in the same call before each clip (0: each clip opens a call). */
  callWarmup?: number;
  command: string;
}

export function reportMarkdown(m: EvalMetrics, ctx: ReportContext): string {
  const lines = [
    `# Evaluation: ${ctx.model}`,
    '',
    `- data: ${ctx.data.join(', ')} (${m.n} clips${m.no_speech ? `, ${m.no_speech} with no speech found, counted as errors` : ''})`,
    `- channel: ${ctx.channel}`,
    ...(ctx.callWarmup ? [`- call: each clip heard after ${ctx.callWarmup} of its speaker's other clips in the same call (the model's caller baseline)`] : []),
    `- command: \`${ctx.command}\``,
    `- file verdict: mean of the window probabilities (the classify pipeline)`,
    '',
    '| metric | value |',
    '|---|---|',
    `| accuracy | ${pct(m.accuracy)} |`,
    `| macro-F1 | ${m.macro_f1.toFixed(3)} |`,
    `| urgent (${m.urgent.labels.join('+')}) recall | ${m.urgent.recall.toFixed(3)} |`,
    `| urgent precision | ${m.urgent.precision.toFixed(3)} |`,
    `| urgent rule | ${m.urgent.rule === 'threshold' ? `P(${m.urgent.labels.join('+')}) ≥ ${m.urgent.threshold}` : 'top emotion is urgent'} |`,
  ];
  if (m.urgent_top) lines.push(`| urgent recall / precision, top-emotion rule | ${m.urgent_top.recall.toFixed(3)} / ${m.urgent_top.precision.toFixed(3)} |`);
  if (m.labels_not_in_model.length) lines.push(`| labels the model cannot output (errors) | ${m.labels_not_in_model.join(', ')} |`);
  lines.push('', '## Per class', '', '| label | precision | recall | F1 | support |', '|---|---|---|---|---|');
  for (const [l, s] of Object.entries(m.per_class)) lines.push(`| ${l} | ${s.precision.toFixed(3)} | ${s.recall.toFixed(3)} | ${s.f1.toFixed(3)} | ${s.support} |`);
  if (m.per_gender) {
    lines.push('', '## Per gender', '', '| gender | n | accuracy | macro-F1 | urgent recall | urgent precision |', '|---|---|---|---|---|---|');
    for (const [g, s] of Object.entries(m.per_gender)) lines.push(`| ${g} | ${s.n} | ${pct(s.accuracy)} | ${s.macro_f1.toFixed(3)} | ${s.urgent_recall.toFixed(3)} | ${s.urgent_precision.toFixed(3)} |`);
  }
  lines.push('', '## Confusion matrix', '', '![confusion matrix](confusion.svg)', '', `| true \\ predicted | ${m.confusion_columns.join(' | ')} |`, `|---|${m.confusion_columns.map(() => '---').join('|')}|`);
  m.confusion_labels.forEach((l, i) => lines.push(`| ${l} | ${m.confusion[i]!.join(' | ')} |`));
  return lines.join('\n') + '\n';
}

export async function writeReport(dir: string, m: EvalMetrics, ctx: ReportContext): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'report.md'), reportMarkdown(m, ctx));
  const warmup = ctx.callWarmup ? ` · each clip after ${ctx.callWarmup} of its speaker's other clips in one call` : '';
  await writeFile(join(dir, 'confusion.svg'), confusionSvg(m, { title: `${ctx.model} — ${ctx.channel}`, data: `data: ${ctx.data.join(', ')} (${m.n} clips)${warmup}` }));
  await writeFile(join(dir, 'metrics.json'), JSON.stringify(m, null, 1) + '\n');
}
