import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { composeEnsemble } from '../model/ensemble-bundle.js';
import { loadClassifier, selfTestedClassifier } from '../model/load-classifier.js';
import { loadBundle, writeBundle } from '../model/model-bundle.js';
import { selectTfBackend } from '../model/tf-backend.js';

export interface EnsembleCommandOptions {
  members: string[];
  out: string;
  name: string;
  modelVersion: string;
  /** Comma-separated shares, one per member; equal when absent. */
  weights?: string;
}

/**
 * `ser-edge ensemble`: one bundle from trained GRU and MLP bundles of the same features,
 * labels and training speakers, their probabilities averaged. Each member is verified and
 * self-tested before it is used, and the result is loaded and self-tested before the
 * command reports success.
 */
export async function runEnsemble(options: EnsembleCommandOptions): Promise<number> {
  try {
    const weights = options.weights?.split(',').map((w) => Number(w.trim()));
    const bundles = await Promise.all(options.members.map((dir) => loadBundle(dir)));
    for (const bundle of bundles) (await selfTestedClassifier(bundle)).dispose();
    await selectTfBackend(['wasm', 'cpu']);
    const { draft, files } = composeEnsemble(bundles, { name: options.name, version: options.modelVersion, ...(weights ? { weights } : {}) });
    const manifest = await writeBundle(options.out, draft, files);
    const check = await loadClassifier(options.out);
    check.dispose();
    await writeFile(join(options.out, 'training-command.txt'), `ser-edge ensemble ${process.argv.slice(3).join(' ')}\n`);
    const bytes = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
    process.stderr.write(`wrote ${options.out}: ${manifest.name}@${manifest.version} (ensemble of ${bundles.map((b) => `${b.manifest.name}@${b.manifest.version}`).join(' + ')}), ${bytes} bytes of weights, self-test passed\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ser-edge ensemble: ${(err as Error).message}\n`);
    return 2;
  }
}
