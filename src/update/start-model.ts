import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { MANIFEST_FILE } from '../model/bundle-manifest.js';
import type { Classifier } from '../model/classifier.js';
import { sha256 } from '../model/model-bundle.js';
import type { ModelStore, StoredBundle } from './model-store.js';
import { refOf } from './install-pipeline.js';

export interface StartModelDependencies {
  store: ModelStore;
  /** The config's model.dir: what runs while the store has nothing installed. */
  configDir: string;
  startAttempts: number;
  startWindowSeconds: number;
  /**
   * Loads and self-tests a bundle directory as the daemon runs it, trust included: the
   * config's bundle under model.allowUnsigned, a store bundle only signed by a key that is
   * trusted now (keys can be withdrawn).
   */
  load: (dir: string, source: 'config' | 'store') => Promise<Classifier>;
  logger: Logger;
}

export interface StartedModel {
  classifier: Classifier;
  active: StoredBundle & { activatedAt: string };
  /** The unconfirmed start this start recorded, which an orderly stop takes back (ModelUpdater.forgetThisStart). */
  recordedStart?: string;
}

/**
 * Picks and loads the model a start runs: the store's active bundle once one was
 * installed, else the config's model.dir. A store bundle is checked again here (files,
 * signature by a key still trusted, self-test). A newly activated bundle that has not run
 * `confirmAfterSeconds` yet has its starts counted: when `startAttempts` starts within
 * `startWindowSeconds` did not get it confirmed (it crashed, or the gateway died with it),
 * or when it does not load now, the store returns to the previous bundle by itself and
 * says so in `lastRollback`.
 */
export async function startModel(deps: StartModelDependencies): Promise<StartedModel> {
  const { store, logger } = deps;
  const opened = await store.open();
  if (opened.setAside) logger.error({ file: opened.setAside }, 'the model store state was damaged and is set aside; starting with model.dir');
  const state = store.state;
  const active = state.active;
  if (active === null || active.source === 'config') return startConfigModel(deps);

  const now = Date.now();
  const recent = state.unconfirmedStarts.filter((ts) => now - Date.parse(ts) <= deps.startWindowSeconds * 1000);
  if (recent.length >= deps.startAttempts && state.unconfirmedStarts.length > 0) {
    return rollBackAtStart(deps, `${active.name} ${active.version} did not come up ${recent.length} times within ${deps.startWindowSeconds} s (update.startAttempts)`);
  }
  const recordedStart = state.unconfirmedStarts.length > 0 ? new Date(now).toISOString() : undefined;
  if (recordedStart !== undefined) await store.commit({ ...state, unconfirmedStarts: [...state.unconfirmedStarts, recordedStart] });
  try {
    const classifier = await deps.load(store.pathOf(active), 'store');
    return { classifier, active, ...(recordedStart !== undefined ? { recordedStart } : {}) };
  } catch (error) {
    logger.error({ active: refOf(active), error: (error as Error).message }, 'the active model from the model store does not load');
    return rollBackAtStart(deps, `${active.name} ${active.version} does not load: ${(error as Error).message}`);
  }
}

async function startConfigModel(deps: StartModelDependencies): Promise<StartedModel> {
  const dir = resolve(deps.configDir);
  const classifier = await deps.load(dir, 'config');
  const manifestBytes = await readFile(join(dir, MANIFEST_FILE));
  const active = { name: classifier.manifest.name, version: classifier.manifest.version, sha256: sha256(manifestBytes), dir, source: 'config' as const, activatedAt: new Date().toISOString() };
  const state = deps.store.state;
  // The config's bundle may have changed since the store last saw it (a new model.dir, a new package).
  if (state.active === null || state.active.sha256 !== active.sha256 || state.active.dir !== dir) {
    await deps.store.commit({ ...state, active, unconfirmedStarts: [] });
  }
  return { classifier, active: deps.store.state.active! };
}

async function rollBackAtStart(deps: StartModelDependencies, why: string): Promise<StartedModel> {
  const { store, logger } = deps;
  const state = store.state;
  const failed = state.active!;
  const previous = state.previous;
  if (previous === null) {
    logger.error({ active: refOf(failed) }, `${why}; there is no previous model to return to, so the config's model.dir runs`);
    await store.commit({ ...state, active: null, unconfirmedStarts: [] });
    return startConfigModel(deps);
  }
  const dir = previous.source === 'config' ? resolve(deps.configDir) : store.pathOf(previous);
  let classifier: Classifier;
  try {
    classifier = await deps.load(dir, previous.source);
  } catch (error) {
    // The config's own bundle failing is a config problem, reported as such (exit 2).
    if (previous.source === 'config') throw error;
    return fallBackToConfig(deps, why, (error as Error).message);
  }
  const now = new Date().toISOString();
  const { activatedAt: _activatedAt, ...failedBundle } = failed;
  await store.commit({
    ...state,
    active: { ...previous, activatedAt: now },
    previous: failedBundle,
    unconfirmedStarts: [],
    lastRollback: { ts: now, cause: 'failed_start', from: refOf(failed), to: refOf(previous), message: why },
    lastInstall: { ok: false, reason: 'failed_start', ts: now, name: failed.name, version: failed.version, message: `${why}; rolled back to ${previous.name} ${previous.version}` },
  });
  logger.error({ from: refOf(failed), to: refOf(previous), why }, 'the new model failed to come up; rolled back to the previous one');
  return { classifier, active: store.state.active! };
}

/**
 * Neither store bundle loads: most often both were signed by a key since withdrawn from
 * model.trustedKeys (a leaked key replaced). Refusing to start would leave the gateway
 * offline, out of reach of the re-signed bundle that would fix it; so the config's
 * model.dir runs, and the store forgets both.
 */
async function fallBackToConfig(deps: StartModelDependencies, why: string, previousError: string): Promise<StartedModel> {
  const { store, logger } = deps;
  const state = store.state;
  const failed = state.active!;
  const previous = state.previous!;
  const started = await startConfigModel(deps);
  const now = new Date().toISOString();
  const message = `${why}; the previous one, ${previous.name} ${previous.version}, does not load either (${previousError})`;
  await store.commit({
    ...store.state,
    previous: null,
    lastRollback: { ts: now, cause: 'failed_start', from: refOf(failed), to: refOf(started.active), message },
    lastInstall: { ok: false, reason: 'failed_start', ts: now, name: failed.name, version: failed.version, message: `${message}; the config's model.dir runs` },
  });
  logger.error({ from: refOf(failed), previous: refOf(previous), to: refOf(started.active), why, error: previousError }, "neither the new model nor the previous one loads; the config's model.dir runs");
  return { classifier: started.classifier, active: store.state.active! };
}
