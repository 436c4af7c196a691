/**
 * Builds a KNN model bundle from labelled recordings, through the same feature path the
 * daemon runs. Also measures it on a speaker-disjoint hold-out first, so the bundle's
 * manifest carries an honest accuracy; the final references use every clip.
 *
 *   node dist/scripts/build-knn-bundle.js --data ../shared/data/cremad --out models/default
 */
import { Command, Option } from 'commander';
import { exitTwoOnUsageError } from '../src/commands/usage-errors.js';
import { DATASET_FORMATS, type DatasetFormat } from '../src/datasets/scan-dataset.js';
import { scanAll } from '../src/datasets/select-clips.js';
import { splitBySpeaker } from '../src/datasets/speaker-split.js';
import { DEFAULT_FEATURE_CONFIG } from '../src/features/feature-config.js';
import { EMOTIONS, type Emotion } from '../src/model/emotions.js';
import { KnnClassifier } from '../src/model/knn-classifier.js';
import { argMax } from '../src/model/classifier.js';
import { writeBundle } from '../src/model/model-bundle.js';
import type { BundleManifest } from '../src/model/bundle-manifest.js';
import { extractClipWindows, type ClipWindows } from '../src/training/clip-windows.js';
import { buildKnnModel, poolWindows } from '../src/training/knn-trainer.js';
import type { LabelledClip } from '../src/datasets/labelled-clip.js';

const program = exitTwoOnUsageError(new Command())
  .name('build-knn-bundle')
  .description('Build a KNN model bundle from labelled WAV, FLAC or Ogg Opus recordings')
  .requiredOption('--data <dir...>', 'corpus folders or CSV files (path,label,speaker[,gender])')
  .requiredOption('--out <dir>', 'bundle directory to write')
  .addOption(new Option('--format <name>', 'dataset naming convention').choices(DATASET_FORMATS).default('auto'))
  .option('--k <n>', 'neighbours that vote', (v) => Number.parseInt(v, 10), 10)
  .addOption(new Option('--metric <m>', 'distance').choices(['l1', 'l2']).default('l1'))
  .option('--name <name>', 'model name', 'knn-default')
  .option('--model-version <v>', 'model version', '0.1.0')
  .option('--seed <n>', 'seed of the speaker split', (v) => Number.parseInt(v, 10), 1)
  .parse();

const opts = program.opts<{ data: string[]; out: string; format: DatasetFormat; k: number; metric: 'l1' | 'l2'; name: string; modelVersion: string; seed: number }>();

const clips: LabelledClip[] = await scanAll(opts.data, opts.format);
const labels = EMOTIONS.filter((e) => clips.some((c) => c.label === e)) as Emotion[];
process.stderr.write(`${clips.length} clips, ${new Set(clips.map((c) => c.speaker)).size} speakers, labels: ${labels.join(', ')}\n`);

const items = await extractClipWindows(clips, {
  features: DEFAULT_FEATURE_CONFIG,
  progress: true,
  onError: (clip, err) => process.stderr.write(`skipped ${clip.path}: ${err.message}\n`),
});

function accuracyOn(test: ClipWindows[], train: ClipWindows[]): number {
  const model = buildKnnModel(poolWindows(train, labels), { name: opts.name, version: opts.modelVersion, labels, features: DEFAULT_FEATURE_CONFIG, k: opts.k, metric: opts.metric });
  const refs = model.files['references.i8']!;
  const classifier = new KnnClassifier({ ...model.draft, schemaVersion: 1, files: {} } as BundleManifest, new Int8Array(refs.buffer, refs.byteOffset, refs.length), model.files['reference-labels.u8']!);
  const probs = new Float32Array(labels.length);
  let right = 0;
  for (const item of test) {
    // Clip verdict: mean of its windows' probabilities, as `classify` summarises a file.
    const mean = new Float64Array(labels.length);
    for (const w of item.windows) {
      classifier.predict(w, w.length / item.dim, probs);
      for (let i = 0; i < mean.length; i++) mean[i]! += probs[i]!;
    }
    if (labels[argMax(mean)] === item.clip.label) right++;
  }
  return right / test.length;
}

const split = splitBySpeaker(clips, 0.2, opts.seed);
const testSpeakers = new Set(split.test.map((c) => c.speaker));
const holdout = accuracyOn(
  items.filter((i) => testSpeakers.has(i.clip.speaker)),
  items.filter((i) => !testSpeakers.has(i.clip.speaker)),
);
process.stderr.write(`speaker-disjoint hold-out accuracy (${testSpeakers.size} test speakers): ${(holdout * 100).toFixed(1)}%\n`);

const model = buildKnnModel(poolWindows(items, labels), {
  name: opts.name,
  version: opts.modelVersion,
  labels,
  features: DEFAULT_FEATURE_CONFIG,
  k: opts.k,
  metric: opts.metric,
  description: `KNN (k=${opts.k}, ${opts.metric}) over int8 pooled features of ${items.length} clips`,
  metrics: { holdoutAccuracy: Number(holdout.toFixed(4)), holdoutSpeakers: testSpeakers.size, split: `speaker-disjoint, 20% of speakers, seed ${opts.seed}`, clips: items.length },
});
const manifest = await writeBundle(opts.out, model.draft, model.files);
process.stderr.write(`wrote ${opts.out}: ${manifest.knn!.count} references × ${manifest.knn!.dim} dims\n`);
