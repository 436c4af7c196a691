/**
 * `npm run bench [-- --json]`: speed figures of the whole pipeline on this machine, as
 * real-time factors per core (seconds of audio per CPU second) and per-query times.
 * Uses ../shared/data for real speech when it is there.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir, packageRoot } from '../src/config/package-paths.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { benchFeatures, loadRealSpeech } from './bench/bench-features.js';
import { benchClassifyPath, benchKnnQuery, benchSignal } from './bench/bench-classify.js';

const json = process.argv.includes('--json');
const realDir = join(packageRoot(), '..', 'shared', 'data', 'cremad');
const haveReal = existsSync(realDir);
const log = (line: string) => {
  if (!json) process.stderr.write(line + '\n');
};

log('features (60 s generated speech' + (haveReal ? ' and 60 s of CREMA-D' : '') + ')…');
const features = await benchFeatures({ seconds: 60, ...(haveReal ? { realSpeechDir: realDir } : {}) });

const classifier = await loadClassifier(defaultModelDir());
const dim = classifier.manifest.knn?.dim ?? 300;
log(`knn query: 10,000 int8 references × ${dim}…`);
const knnMs = benchKnnQuery(10_000, dim, 10, 'l1');

log('classify path (VAD → features → model → urgency) with models/default…');
const sampleRate = classifier.manifest.features.sampleRate;
const synthetic = benchClassifyPath(classifier, benchSignal(60, sampleRate));
const real = haveReal ? benchClassifyPath(classifier, await loadRealSpeech(realDir, 60, sampleRate)) : null;

const result = {
  machine: { cpus: (await import('node:os')).cpus()[0]?.model ?? 'unknown', node: process.version },
  features_rtf: features.features_rtf,
  ...(features.features_rtf_real !== undefined ? { features_rtf_real: features.features_rtf_real } : {}),
  features_us_per_frame: features.us_per_frame,
  meyda_extract_rtf: features.meyda_extract_rtf,
  knn_query_ms: Number(knnMs.toFixed(3)),
  knn_reference_dim: dim,
  classify_rtf: Math.round(synthetic.rtf),
  ...(real ? { classify_rtf_real: Math.round(real.rtf) } : {}),
  classify_model: `${classifier.manifest.name}@${classifier.manifest.version} (${classifier.backend})`,
  ...(haveReal ? {} : { note: '../shared/data absent: real-speech figures skipped' }),
};

if (json) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  for (const [key, value] of Object.entries(result)) process.stdout.write(`${key.padEnd(24)} ${typeof value === 'object' ? JSON.stringify(value) : value}\n`);
}
classifier.dispose();
