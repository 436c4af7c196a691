import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { isEmotion } from '../model/emotions.js';
import { AUDIO_EXTENSIONS, CORPUS_NAMINGS, type CorpusNaming } from './corpus-naming.js';
import { DatasetError, type Gender, type LabelledClip } from './labelled-clip.js';

export const DATASET_FORMATS = ['auto', 'csv', ...CORPUS_NAMINGS.map((n) => n.name)] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

const AUDIO = new Set<string>(AUDIO_EXTENSIONS);

async function listAudio(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (AUDIO.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  await walk(root);
  return out;
}

/** The naming convention most of a folder's files follow. */
function detectNaming(root: string, files: string[]): CorpusNaming {
  const sample = files.slice(0, 200).map((f) => relative(root, f).split('\\').join('/'));
  let best: CorpusNaming | null = null;
  let bestHits = 0;
  for (const naming of CORPUS_NAMINGS) {
    const hits = sample.filter((f) => naming.parse(f) !== null).length;
    if (hits > bestHits) [best, bestHits] = [naming, hits];
  }
  if (!best || bestHits < sample.length / 2)
    throw new DatasetError(root, `cannot tell which corpus this is from its file names; pass --format (${DATASET_FORMATS.join(', ')}) or use a CSV path,label,speaker[,gender]`);
  return best;
}

/** CREMA-D's actor table: ActorID → gender. */
async function cremadGenders(root: string): Promise<Map<string, Gender>> {
  const genders = new Map<string, Gender>();
  const file = join(root, 'VideoDemographics.csv');
  const text = await readFile(file, 'utf8').catch(() => null);
  if (!text) return genders;
  const [header, ...rows] = text.split(/\r?\n/).filter(Boolean);
  const cols = header!.split(',').map((c) => c.trim().replace(/"/g, ''));
  const id = cols.indexOf('ActorID');
  const sex = cols.indexOf('Sex');
  for (const row of rows) {
    const cells = row.split(',').map((c) => c.trim().replace(/"/g, ''));
    const g = cells[sex]?.toLowerCase();
    if (cells[id] && (g === 'male' || g === 'female')) genders.set(cells[id]!, g);
  }
  return genders;
}

/** A customer's own recordings: `path,label,speaker[,gender]`, paths relative to the CSV. */
export async function readCsvDataset(csvPath: string): Promise<LabelledClip[]> {
  const text = await readFile(csvPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new DatasetError(csvPath, `cannot read the CSV (${err.code})`);
  });
  const base = dirname(resolve(csvPath));
  const clips: LabelledClip[] = [];
  const lines = text.split(/\r?\n/);
  const genders = new Map<string, { gender: Gender; line: number }>();
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const cells = line.split(',').map((c) => c.trim());
    if (i === 0 && cells[0]?.toLowerCase() === 'path') continue;
    const [path, label, speaker, gender] = cells;
    const at = `${csvPath}:${i + 1}`;
    if (!path || !label || !speaker) throw new DatasetError(at, 'expected path,label,speaker[,gender]');
    const canonical = label.toLowerCase() === 'fear' ? 'fearful' : label.toLowerCase();
    if (!isEmotion(canonical)) throw new DatasetError(at, `label "${label}" is not one of neutral, calm, happy, sad, angry, fearful, disgust, surprised`);
    if (gender && gender !== 'male' && gender !== 'female') throw new DatasetError(at, `gender "${gender}" must be male or female (or left empty)`);
    // A speaker has one gender: splits stratify by it, and two would put the speaker in two folds.
    const known = genders.get(speaker);
    if (gender && known && known.gender !== gender) throw new DatasetError(at, `speaker "${speaker}" is ${gender} here but ${known.gender} on line ${known.line}`);
    if (gender && !known) genders.set(speaker, { gender: gender as Gender, line: i + 1 });
    clips.push({ path: resolve(base, path), label: canonical, speaker: `csv:${speaker}`, ...(gender ? { gender: gender as Gender } : {}), corpus: 'csv' });
  }
  // Rows that left the gender empty take the one another row of the same speaker gives.
  for (const clip of clips) {
    const known = genders.get(clip.speaker.slice('csv:'.length));
    if (known && !clip.gender) clip.gender = known.gender;
  }
  return clips;
}

/** Lists the labelled clips of a corpus folder or CSV file, detecting its convention unless told. */
export async function scanDataset(path: string, format: DatasetFormat = 'auto'): Promise<LabelledClip[]> {
  const info = await stat(path).catch(() => {
    throw new DatasetError(path, 'no such file or directory');
  });
  if (format === 'csv' || (format === 'auto' && info.isFile())) return readCsvDataset(path);
  if (!info.isDirectory()) throw new DatasetError(path, 'expected a corpus folder or a CSV file');
  const root = resolve(path);
  const files = await listAudio(root);
  if (files.length === 0) throw new DatasetError(root, `no ${AUDIO_EXTENSIONS.join(', ')} files here`);
  const naming = format === 'auto' ? detectNaming(root, files) : CORPUS_NAMINGS.find((n) => n.name === format)!;
  const genders = naming.name === 'cremad' ? await cremadGenders(root) : new Map<string, Gender>();
  const clips: LabelledClip[] = [];
  // One clip in two formats (a FLAC decoded beside its Opus original) would count twice.
  const byClip = new Map<string, string>();
  for (const file of files) {
    const named = naming.parse(relative(root, file).split('\\').join('/'));
    if (!named) continue;
    const clip = file.slice(0, file.length - extname(file).length);
    const twin = byClip.get(clip);
    if (twin !== undefined) throw new DatasetError(root, `${relative(root, twin)} and ${relative(root, file)} are the same clip in two formats, and each would count as a clip of its own: keep one of them here`);
    byClip.set(clip, file);
    const gender = named.gender ?? genders.get(named.speaker);
    clips.push({ path: file, label: named.label, speaker: `${naming.name}:${named.speaker}`, ...(gender ? { gender } : {}), corpus: naming.name });
  }
  return clips;
}
