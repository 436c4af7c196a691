import { join } from 'node:path';
import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import { runSelfTest } from '../../model/classifier.js';
import { classifierFromBundle } from '../../model/load-classifier.js';
import { loadBundle } from '../../model/model-bundle.js';
import { loadTrustedKeys } from '../../update/bundle-signature.js';
import { checkBundleTrust } from '../../update/bundle-trust.js';
import { MODEL_STORE_DIR, readStoreState } from '../../update/model-store.js';
import { fail, pass, warn, type CheckResult } from './check-result.js';

/**
 * The model store: which bundle a start would run (one installed remotely runs instead of
 * model.dir), whether it still loads and carries a trusted signature, and what waits (a
 * model not yet confirmed, a shadow trial, a failed last install). Read only: doctor never
 * changes the store's choice.
 */
export async function modelStoreCheck(config: Pick<ResolvedConfig, 'stateDir' | 'model' | 'update'>): Promise<CheckResult> {
  const dir = join(config.stateDir, MODEL_STORE_DIR);
  const state = await readStoreState(dir);
  if (state === null) return pass('model-store', { subject: dir, detail: 'no model installed remotely here: a start runs model.dir' });
  if (state instanceof Error) {
    return fail('model-store', { subject: dir, detail: `${state.message}: a start sets it aside and runs model.dir`, fix: 'publish the model again (ser-edge model publish), and check the state directory\'s storage' });
  }
  const active = state.active;
  const notes: string[] = [];
  if (state.staged) notes.push(`${state.staged.name} ${state.staged.version} is under shadow trial until ${state.staged.endsAt} (promote or discard it)`);
  if (state.lastInstall && !state.lastInstall.ok) notes.push(`the last install (${state.lastInstall.version ?? 'unknown version'}, ${state.lastInstall.ts}) failed: ${state.lastInstall.reason}`);
  if (state.lastRollback?.cause === 'failed_start') notes.push(`rolled back from ${state.lastRollback.from.name} ${state.lastRollback.from.version} at ${state.lastRollback.ts} because it did not come up`);
  const previous = state.previous ? `; previous ${state.previous.name} ${state.previous.version}` : '';
  const data = { active, previous: state.previous, staged: state.staged, lastInstall: state.lastInstall, unconfirmedStarts: state.unconfirmedStarts.length };
  if (active === null || active.source === 'config') {
    return pass('model-store', { subject: dir, detail: `model.dir runs${previous}${notes.length ? `; ${notes.join('; ')}` : ''}`, data });
  }
  const bundleDir = join(dir, active.dir);
  try {
    const bundle = await loadBundle(bundleDir);
    const trust = await checkBundleTrust(bundleDir, await loadTrustedKeys(config.model.trustedKeys), false);
    if (!trust.ok) throw new Error(`${trust.reason}: ${trust.message}`);
    const classifier = classifierFromBundle(bundle);
    const selfTest = runSelfTest(classifier);
    classifier.dispose();
    if (!selfTest.passed) throw new Error(`fails its self-test (largest error ${selfTest.maxAbsError.toExponential(1)})`);
  } catch (error) {
    return fail('model-store', {
      subject: bundleDir,
      detail: `${active.name} ${active.version}, installed remotely, does not load: ${(error as Error).message}; a start rolls back to ${state.previous ? `${state.previous.name} ${state.previous.version}` : 'model.dir'}`,
      fix: 'publish the model again (ser-edge model publish --force), or roll back (ser-edge model rollback)',
      data,
    });
  }
  const unconfirmed = state.unconfirmedStarts.length;
  const detail =
    `${active.name} ${active.version}, installed remotely ${active.activatedAt}, runs instead of model.dir: files, signature and self-test pass${previous}` +
    (notes.length ? `; ${notes.join('; ')}` : '');
  if (unconfirmed > 0) {
    return warn('model-store', {
      subject: bundleDir,
      detail: `${detail}; not confirmed yet: ${unconfirmed} start${unconfirmed === 1 ? '' : 's'} without ${config.update.confirmAfterSeconds} s of running (at ${config.update.startAttempts} it is rolled back)`,
      fix: `let it run ${config.update.confirmAfterSeconds} s (update.confirmAfterSeconds); if it keeps stopping, look at the log of its starts`,
      data,
    });
  }
  return pass('model-store', { subject: bundleDir, detail, data });
}
