import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_FEATURE_CONFIG, type FeatureConfig } from '../src/features/feature-config.js';
import { functionalsSize } from '../src/features/functionals.js';
import { seededRandom } from '../src/datasets/seeded-random.js';
import { MANIFEST_FILE } from '../src/model/bundle-manifest.js';
import { runSelfTest } from '../src/model/classifier.js';
import type { Emotion } from '../src/model/emotions.js';
import { composeEnsemble } from '../src/model/ensemble-bundle.js';
import { exportGruBundle } from '../src/model/gru/gru-export.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { exportMlpBundle } from '../src/model/mlp/mlp-export.js';
import { loadBundle, writeBundle } from '../src/model/model-bundle.js';
import { selectTfBackend, tf } from '../src/model/tf-backend.js';

const LABELS: Emotion[] = ['neutral', 'sad', 'angry'];
/** 3 MFCCs and F0/periodicity per frame: a GRU step of 5, 36 functionals for the MLP. */
const FEATURES: FeatureConfig = { ...DEFAULT_FEATURE_CONFIG, features: ['mfcc', 'pitch'], mfccCount: 3 };
const STEPS = 6;

const uniform = (seed: number, scale: number) => tf.initializers.randomUniform({ minval: -scale, maxval: scale, seed });

function inputs(count: number, length: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Float32Array.from({ length }, () => random() * 4 - 2));
}

async function memberBundles(root: string, metrics: Record<string, unknown> = { urgentThreshold: 0.3, heldOutFold: '1/5', split: 'speaker', splitSeed: 1 }, features = FEATURES, callBaseline?: number): Promise<{ gru: string; mlp: string; mlpBundle: Awaited<ReturnType<typeof loadBundle>> }> {
  await selectTfBackend(['wasm', 'cpu']);
  const gruModel = tf.sequential();
  gruModel.add(tf.layers.gru({ units: 4, recurrentActivation: 'sigmoid', kernelInitializer: uniform(1, 0.5), recurrentInitializer: uniform(2, 0.5), inputShape: [STEPS, 5] }));
  gruModel.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: uniform(3, 1) }));
  const unit = (n: number) => ({ mean: new Array<number>(n).fill(0.1), std: new Array<number>(n).fill(1.5) });
  const common = { version: '1.0.0', labels: LABELS, features, metrics, urgencyWeights: { angry: 1, sad: 1, neutral: 0 } };
  const gru = exportGruBundle(gruModel, { ...common, name: 'g', normaliser: unit(5), steps: STEPS, selfTestInputs: inputs(3, STEPS * 5, 4) });
  const width = functionalsSize(5) * (callBaseline ? 2 : 1);
  const mlpModel = tf.sequential();
  mlpModel.add(tf.layers.dense({ units: 6, activation: 'relu', kernelInitializer: uniform(5, 0.4), inputShape: [width] }));
  mlpModel.add(tf.layers.dense({ units: LABELS.length, activation: 'softmax', kernelInitializer: uniform(6, 1) }));
  const mlp = exportMlpBundle([mlpModel], { ...common, name: 'm', normaliser: unit(width), ...(callBaseline ? { callBaseline: { windows: callBaseline } } : {}), selfTestInputs: inputs(2, width, 7) });
  const dirs = { gru: join(root, 'gru'), mlp: join(root, 'mlp') };
  await writeBundle(dirs.gru, { ...gru.draft, urgencyWeights: common.urgencyWeights }, gru.files);
  await writeBundle(dirs.mlp, { ...mlp.draft, urgencyWeights: common.urgencyWeights }, mlp.files);
  return { ...dirs, mlpBundle: await loadBundle(dirs.mlp) };
}

test('an ensemble of a GRU and an MLP passes its self-test and averages its members by weight on real window rows', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ser-ens-'));
  try {
    const dirs = await memberBundles(root);
    const { draft, files } = composeEnsemble([await loadBundle(dirs.gru), await loadBundle(dirs.mlp)], { name: 'both', version: '1.0.0', weights: [1, 3] });
    await writeBundle(join(root, 'both'), draft, files);
    const ensemble = await loadClassifier(join(root, 'both'));
    assert.equal(ensemble.manifest.kind, 'ensemble');
    assert.match(ensemble.backend, /^ensemble\(gru-fused-.*\+mlp-int8-.*\)$/);
    const self = runSelfTest(ensemble);
    assert.ok(self.passed && self.vectors === 2, JSON.stringify(self));
    assert.equal(ensemble.manifest.metrics['urgentThreshold'], 0.3);
    assert.equal(ensemble.manifest.metrics['heldOutFold'], '1/5', 'the members\' held-out fold carries over, so eval keeps to it');
    const [gru, mlp] = [await loadClassifier(dirs.gru), await loadClassifier(dirs.mlp)];
    const random = seededRandom(8);
    const frames = 30;
    const rows = Float32Array.from({ length: frames * 5 }, (_, i) => (i % 5 === 3 && random() < 0.3 ? 0 : random() * 4 - 2));
    const want = [gru, mlp].map((c) => Array.from(c.predict(rows.slice(), frames, new Float32Array(LABELS.length))));
    const original = rows.slice();
    const got = ensemble.predict(rows, frames, new Float32Array(LABELS.length));
    assert.deepEqual(rows, original, 'the members leave the window rows as they found them');
    got.forEach((p, c) => assert.ok(Math.abs(p - (0.25 * want[0]![c]! + 0.75 * want[1]![c]!)) < 1e-6, `label ${c}`));
    const viaInput = ensemble.predictModelInput(ensemble.modelInput(rows, frames), new Float32Array(LABELS.length));
    viaInput.forEach((p, c) => assert.ok(Math.abs(p - got[c]!) < 1e-6));
    [ensemble, gru, mlp].forEach((c) => c.dispose());
  } finally {
    await rm(root, { recursive: true });
  }
});

test('members of other features or other held-out folds, or too few, are refused with the reason', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ser-ens-bad-'));
  try {
    const a = await memberBundles(join(root, 'a'));
    const gru = await loadBundle(a.gru);
    const otherFold = await memberBundles(join(root, 'b'), { urgentThreshold: 0.3, heldOutFold: '2/5', split: 'speaker', splitSeed: 1 });
    assert.throws(() => composeEnsemble([gru, otherFold.mlpBundle], { name: 'x', version: '0.0.1' }), /heldOutFold 2\/5, member 0 1\/5/);
    const otherFeatures = await memberBundles(join(root, 'c'), {}, { ...FEATURES, hopSize: 128 });
    assert.throws(() => composeEnsemble([gru, otherFeatures.mlpBundle], { name: 'x', version: '0.0.1' }), /other features than member 0/);
    assert.throws(() => composeEnsemble([gru], { name: 'x', version: '0.0.1' }), /2 to 4 member bundles/);
    assert.throws(() => composeEnsemble([gru, a.mlpBundle], { name: 'x', version: '0.0.1', weights: [1, 0] }), /each above 0 and at most 100/);
    assert.throws(() => composeEnsemble([gru, a.mlpBundle], { name: 'x', version: '0.0.1', weights: [200, 1] }), /each above 0 and at most 100/);
    const as = (kind: 'knn') => ({ ...gru, manifest: { ...gru.manifest, kind } });
    assert.throws(() => composeEnsemble([gru, as('knn')], { name: 'x', version: '0.0.1' }), /member 1 .* is a knn bundle; an ensemble holds gru and mlp members/);
    const relabelled = { ...a.mlpBundle, manifest: { ...a.mlpBundle.manifest, labels: ['neutral', 'happy', 'angry'] as Emotion[] } };
    assert.throws(() => composeEnsemble([gru, relabelled], { name: 'x', version: '0.0.1' }), /has labels neutral,happy,angry, member 0 neutral,sad,angry/);
  } finally {
    await rm(root, { recursive: true });
  }
});

test("an ensemble keeps each member's call context: its verdicts within a call are its members' verdicts within that call", async () => {
  const root = await mkdtemp(join(tmpdir(), 'ser-ens-call-'));
  try {
    const dirs = await memberBundles(root, undefined, FEATURES, 2);
    const { draft, files } = composeEnsemble([await loadBundle(dirs.gru), await loadBundle(dirs.mlp)], { name: 'both', version: '1.0.0', weights: [1, 1] });
    assert.deepEqual(draft.ensemble?.members[1]?.mlp?.callBaseline, { windows: 2 });
    await writeBundle(join(root, 'both'), draft, files);
    const [ensemble, gru, mlp] = [await loadClassifier(join(root, 'both')), await loadClassifier(dirs.gru), await loadClassifier(dirs.mlp)];
    assert.ok(runSelfTest(ensemble).passed);
    const [call, mlpCall] = [ensemble.newCallContext(), mlp.newCallContext()];
    assert.ok(call !== null && mlpCall !== null);
    const random = seededRandom(21);
    let differs = false;
    for (const frames of [30, 44, 25, 38]) {
      const rows = Float32Array.from({ length: frames * 5 }, (_, i) => (i % 5 === 3 && random() < 0.3 ? 0 : random() * 4 - 2));
      const g = gru.predict(rows.slice(), frames, new Float32Array(LABELS.length));
      const m = mlp.predict(rows.slice(), frames, new Float32Array(LABELS.length), mlpCall);
      const got = ensemble.predict(rows.slice(), frames, new Float32Array(LABELS.length), call);
      got.forEach((p, c) => assert.ok(Math.abs(p - (g[c]! + m[c]!) / 2) < 1e-6, `label ${c}`));
      const alone = ensemble.predict(rows, frames, new Float32Array(LABELS.length));
      differs ||= alone.some((p, c) => Math.abs(p - got[c]!) > 1e-4);
    }
    assert.ok(differs, 'within a call the verdicts differ from windows judged alone');
    assert.throws(() => ensemble.predict(new Float32Array(150), 30, new Float32Array(LABELS.length), mlpCall), /made by model m, not by this one/);
    [ensemble, gru, mlp].forEach((c) => c.dispose());
  } finally {
    await rm(root, { recursive: true });
  }
});

test('an ensemble whose member weights were altered, or whose self-test input is cut short, is refused at load', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ser-ens-tamper-'));
  try {
    const dirs = await memberBundles(root);
    const { draft, files } = composeEnsemble([await loadBundle(dirs.gru), await loadBundle(dirs.mlp)], { name: 'both', version: '1.0.0' });
    await writeBundle(join(root, 'both'), draft, files);
    await writeFile(join(root, 'both', 'member-1.i8'), new Uint8Array(12));
    await assert.rejects(loadClassifier(join(root, 'both')), /member-1\.i8/);
    await writeBundle(join(root, 'again'), draft, files);
    const manifest = JSON.parse(await readFile(join(root, 'again', MANIFEST_FILE), 'utf8'));
    manifest.selfTest[0].input.pop();
    await writeFile(join(root, 'again', MANIFEST_FILE), JSON.stringify(manifest));
    await assert.rejects(loadClassifier(join(root, 'again')), /selfTest\[0\]\.input has 65 values, expected its members' inputs in turn, 30 \+ 36 = 66/);
  } finally {
    await rm(root, { recursive: true });
  }
});

test('members may come in either order, and a member carrying a second network section is refused at load', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ser-ens-order-'));
  try {
    const dirs = await memberBundles(root);
    const { draft, files } = composeEnsemble([await loadBundle(dirs.mlp), await loadBundle(dirs.gru)], { name: 'mlp-first', version: '1.0.0' });
    await writeBundle(join(root, 'mlp-first'), draft, files);
    const ensemble = await loadClassifier(join(root, 'mlp-first'));
    assert.ok(runSelfTest(ensemble).passed);
    assert.match(ensemble.backend, /^ensemble\(mlp-int8-.*\+gru-fused-.*\)$/);
    ensemble.dispose();
    const manifest = JSON.parse(await readFile(join(root, 'mlp-first', MANIFEST_FILE), 'utf8'));
    manifest.ensemble.members[0].gru = manifest.ensemble.members[1].gru;
    await writeFile(join(root, 'mlp-first', MANIFEST_FILE), JSON.stringify(manifest));
    await assert.rejects(loadClassifier(join(root, 'mlp-first')), /ensemble\.members\.0\.gru.*must be absent from an mlp member|must be absent from an mlp member/);
  } finally {
    await rm(root, { recursive: true });
  }
});

test('`ser-edge ensemble` writes a bundle that loads, and refuses a member that is not a bundle with exit code 2', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ser-ens-cli-'));
  const run = promisify(execFile);
  const cli = join(process.cwd(), 'dist', 'src', 'cli.js');
  try {
    const dirs = await memberBundles(root);
    const ok = await run(process.execPath, [cli, 'ensemble', '--members', dirs.gru, dirs.mlp, '--out', join(root, 'both'), '--name', 'pair', '--model-version', '2.0.0']);
    assert.match(ok.stderr, /pair@2\.0\.0 \(ensemble of g@1\.0\.0 \+ m@1\.0\.0\).*self-test passed/);
    (await loadClassifier(join(root, 'both'))).dispose();
    await assert.rejects(run(process.execPath, [cli, 'ensemble', '--members', dirs.gru, join(process.cwd(), 'no-such-bundle'), '--out', join(root, 'x')]), (err: { code: number; stderr: string }) => err.code === 2 && /ser-edge ensemble: /.test(err.stderr));
  } finally {
    await rm(root, { recursive: true });
  }
});
