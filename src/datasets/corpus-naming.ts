import type { Emotion } from '../model/emotions.js';
import type { Gender } from './labelled-clip.js';

/** What a corpus's file-name convention tells about one file. */
export interface NamedClip {
  label: Emotion;
  speaker: string;
  gender?: Gender;
}

/**
 * A corpus's file-naming convention. `parse` gets the path relative to the corpus root
 * (so folder-based layouts can be read) and returns null for files that are not clips
 * of a label we can map (e.g. EmoDB's boredom, RAVDESS song files).
 */
export interface CorpusNaming {
  name: string;
  parse(relativePath: string): NamedClip | null;
}

/** Extensions of the audio files a corpus folder is scanned for; the decoder goes by content, these only pick files. */
export const AUDIO_EXTENSIONS = ['.wav', '.flac', '.opus', '.ogg'] as const;

/** A file's name without its folder and audio extension: what the conventions below parse. */
const base = (p: string) => p.split('/').pop()!.replace(/\.(wav|flac|opus|ogg)$/i, '');

const CREMAD_EMOTIONS: Record<string, Emotion> = { ANG: 'angry', DIS: 'disgust', FEA: 'fearful', HAP: 'happy', NEU: 'neutral', SAD: 'sad' };

/** CREMA-D: `1022_IEO_ANG_HI`. Gender comes from VideoDemographics.csv, read by the scanner. */
export const cremad: CorpusNaming = {
  name: 'cremad',
  parse(rel) {
    const m = /^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$/.exec(base(rel));
    const label = m && CREMAD_EMOTIONS[m[3]!];
    return label ? { label, speaker: m![1]! } : null;
  },
};

const RAVDESS_EMOTIONS: Emotion[] = ['neutral', 'calm', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised'];

/** RAVDESS: `03-01-05-02-01-01-07` = modality-channel-emotion-intensity-statement-repetition-actor; odd actors are male. */
export const ravdess: CorpusNaming = {
  name: 'ravdess',
  parse(rel) {
    const m = /^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$/.exec(base(rel));
    if (!m || m[2] !== '01') return null; // 02 is song
    const label = RAVDESS_EMOTIONS[Number(m[3]) - 1];
    if (!label) return null;
    const actor = Number(m[7]);
    return { label, speaker: m[7]!, gender: actor % 2 === 1 ? 'male' : 'female' };
  },
};

const TESS_EMOTIONS: Record<string, Emotion> = { angry: 'angry', disgust: 'disgust', fear: 'fearful', happy: 'happy', neutral: 'neutral', ps: 'surprised', sad: 'sad' };

/** TESS: `OAF_back_angry` (two female speakers, OAF and YAF). */
export const tess: CorpusNaming = {
  name: 'tess',
  parse(rel) {
    const m = /^(OAF|YAF)_[A-Za-z]+_([a-z]+)$/i.exec(base(rel));
    const label = m && TESS_EMOTIONS[m[2]!.toLowerCase()];
    return label ? { label, speaker: m![1]!.toUpperCase(), gender: 'female' } : null;
  },
};

const SAVEE_EMOTIONS: Record<string, Emotion> = { a: 'angry', d: 'disgust', f: 'fearful', h: 'happy', n: 'neutral', sa: 'sad', su: 'surprised' };

/** SAVEE: `DC_a01` or `DC/a01` (four male speakers). */
export const savee: CorpusNaming = {
  name: 'savee',
  parse(rel) {
    const parts = rel.split('/');
    const file = base(rel);
    let m = /^(DC|JE|JK|KL)_(sa|su|a|d|f|h|n)(\d{2})$/.exec(file);
    if (!m && parts.length >= 2) {
      const folder = parts[parts.length - 2]!;
      const inner = /^(sa|su|a|d|f|h|n)(\d{2})$/.exec(file);
      if (/^(DC|JE|JK|KL)$/.test(folder) && inner) m = [file, folder, inner[1]!, inner[2]!] as unknown as RegExpExecArray;
    }
    const label = m && SAVEE_EMOTIONS[m[2]!];
    return label ? { label, speaker: m![1]!, gender: 'male' } : null;
  },
};

const EMODB_EMOTIONS: Record<string, Emotion> = { W: 'angry', E: 'disgust', A: 'fearful', F: 'happy', N: 'neutral', T: 'sad' };
const EMODB_MALE = new Set(['03', '10', '11', '12', '15']);

/** EmoDB: `03a01Fa` = speaker, text, emotion (German initial), version. Boredom (L) has no canonical label. */
export const emodb: CorpusNaming = {
  name: 'emodb',
  parse(rel) {
    const m = /^(\d{2})([a-z]\d{2})([WLEAFTN])([a-z])$/.exec(base(rel));
    const label = m && EMODB_EMOTIONS[m[3]!];
    return label ? { label, speaker: m![1]!, gender: EMODB_MALE.has(m![1]!) ? 'male' : 'female' } : null;
  },
};

export const CORPUS_NAMINGS: readonly CorpusNaming[] = [cremad, ravdess, tess, savee, emodb];
