import type { Logger } from 'pino';
import type { BundleManifest } from '../model/bundle-manifest.js';
import type { Classifier } from '../model/classifier.js';
import type { ModelBundle } from '../model/model-bundle.js';
import type { InstallReason, ModelCommandResult, ModelInstallCommand, ModelState, ShadowTrialReport } from '../mqtt/payload-schemas.js';
import type { TrustedKey } from './bundle-signature.js';
import { InstallError } from './install-error.js';
import { loadStored, prepareInstall, refOf, type BundleRef } from './install-pipeline.js';
import type { ModelStore, StoreState, StoredBundle } from './model-store.js';

/** What the updater needs of the running channels: the live side of a switch and of a shadow trial. */
export interface LiveModels {
  /** Switches every channel to this model between two windows; the old one is disposed. */
  activate(classifier: Classifier, ref: BundleRef): void;
  /** Runs this model beside the active one on the same windows, without publishing, for `minutes`. */
  startShadow(classifier: Classifier, ref: BundleRef, minutes: number): void;
  /** Ends the trial; returns its model (for promote) or null when none runs. */
  endShadow(): { classifier: Classifier; ref: BundleRef } | null;
  shadowReport(): ShadowTrialReport | null;
  /** Null when the running channels can take this feature config in `mode`, else why not. */
  canAdopt(manifest: BundleManifest, mode: 'activate' | 'shadow'): string | null;
}

export interface UpdateSettings {
  maxInlineBytes: number;
  maxBundleBytes: number;
  downloadTimeoutSeconds: number;
  ca?: Buffer;
  shadowMinutes: number;
  confirmAfterSeconds: number;
}

export interface ModelUpdaterDependencies {
  site: string;
  gateway: string;
  store: ModelStore;
  live: LiveModels;
  trustedKeys: readonly TrustedKey[];
  settings: UpdateSettings;
  buildClassifier: (bundle: ModelBundle) => Promise<Classifier>;
  /** The model the daemon started with, as the store's state has it after start-up. */
  active: StoredBundle & { activatedAt: string };
  /** The unconfirmed start start-up recorded for it, if it is on probation. */
  thisStart?: string;
  /** Retains the new `…/model` state (the link publishes it when connected, and again on every connect). */
  publishState: (state: ModelState) => void;
  logger: Logger;
}

/**
 * The gateway's side of remote model updates: `cmd/model.install` (activate or shadow),
 * `model.promote`, `model.discard` and `model.rollback`, one at a time. The store's
 * choice is committed before the live switch, so a crash between the two starts the
 * daemon on what the reply will say; every outcome, good or bad, is `lastInstall` in the
 * retained `…/model`. A newly activated model is confirmed after running
 * `confirmAfterSeconds`; until then a crash counts as a failed start (see start-model.ts).
 */
export class ModelUpdater {
  private readonly deps: ModelUpdaterDependencies;
  private busy: string | null = null;
  private confirmTimer: NodeJS.Timeout | undefined;
  private shadowTimer: NodeJS.Timeout | undefined;

  constructor(dependencies: ModelUpdaterDependencies) {
    this.deps = dependencies;
  }

  /** Resumes a shadow trial the store had staged, and the confirmation clock of an unconfirmed model. */
  async start(): Promise<void> {
    const { store, logger } = this.deps;
    if (store.state.unconfirmedStarts.length > 0) this.scheduleConfirm();
    const staged = store.state.staged;
    if (staged !== null) {
      const minutesLeft = (Date.parse(staged.endsAt) - Date.now()) / 60_000;
      try {
        const classifier = await loadStored(store.pathOf(staged), this.deps.buildClassifier);
        // A trial whose time ran out while the daemon was down still waits for promote or discard; it just compares no more.
        this.deps.live.startShadow(classifier, staged, Math.max(minutesLeft, 1 / 600));
        this.scheduleShadowEnd(minutesLeft);
        logger.info({ staged: refOf(staged), minutesLeft: Math.max(0, Math.round(minutesLeft)) }, 'shadow trial resumed');
      } catch (error) {
        logger.error({ staged: refOf(staged), error: (error as Error).message }, 'the staged model does not load any more; it is discarded');
        await this.commit({ staged: null, lastInstall: this.outcome(false, error instanceof InstallError ? error.reason : 'load_failed', staged, (error as Error).message) });
      }
    }
    this.publish();
  }

  stop(): void {
    clearTimeout(this.confirmTimer);
    clearTimeout(this.shadowTimer);
  }

  /** The retained `…/model` payload as things are now. */
  state(): ModelState {
    const { store, site, gateway } = this.deps;
    const s = store.state;
    const active = s.active ?? this.deps.active;
    const report = this.deps.live.shadowReport();
    return {
      schema: 1,
      ts: new Date().toISOString(),
      site,
      gateway,
      active: { ...refOf(active), activatedAt: active.activatedAt, source: active.source },
      previous: s.previous ? refOf(s.previous) : null,
      staged: s.staged ? { ...refOf(s.staged), stagedAt: s.staged.stagedAt, mode: 'shadow', ...(report ? { shadow: report } : {}) } : null,
      lastInstall: s.lastInstall,
      lastRollback: s.lastRollback,
    };
  }

  /** Republishes the state (the shadow report moves on as windows arrive). */
  publish(): void {
    this.deps.publishState(this.state());
  }

  install(command: ModelInstallCommand): Promise<ModelCommandResult> {
    return this.exclusive('model.install', async () => {
      const mode = command.mode ?? 'activate';
      const staged = this.deps.store.state.staged;
      if (staged !== null) {
        throw new InstallError('busy', `${staged.name} ${staged.version} is under shadow trial; promote or discard it (cmd/model.promote, cmd/model.discard) before installing another`);
      }
      const prepared = await prepareInstall(command, this.activeRef(), {
        store: this.deps.store,
        trustedKeys: this.deps.trustedKeys,
        limits: {
          maxInlineBytes: this.deps.settings.maxInlineBytes,
          maxBundleBytes: this.deps.settings.maxBundleBytes,
          downloadTimeoutMs: this.deps.settings.downloadTimeoutSeconds * 1000,
          ...(this.deps.settings.ca ? { ca: this.deps.settings.ca } : {}),
        },
        buildClassifier: this.deps.buildClassifier,
        canAdopt: (manifest, m) => this.deps.live.canAdopt(manifest, m),
      });
      const bundle: StoredBundle = { ...prepared.ref, dir: prepared.storeDir, source: 'store' };
      const now = new Date().toISOString();
      try {
        if (mode === 'shadow') {
          const minutes = command.shadowMinutes ?? this.deps.settings.shadowMinutes;
          await this.commit({ staged: { ...bundle, stagedAt: now, mode: 'shadow', endsAt: new Date(Date.now() + minutes * 60_000).toISOString() }, lastInstall: this.outcome(true, 'staged', bundle) });
          this.deps.live.startShadow(prepared.classifier, prepared.ref, minutes);
          this.scheduleShadowEnd(minutes);
          this.deps.logger.info({ staged: prepared.ref, minutes }, 'model staged for a shadow trial');
          return this.result('staged');
        }
        await this.activate(bundle, prepared.classifier, 'installed');
        return this.result('installed');
      } catch (error) {
        prepared.classifier.dispose();
        throw error;
      }
    });
  }

  promote(): Promise<ModelCommandResult> {
    return this.exclusive('model.promote', async () => {
      const staged = this.deps.store.state.staged;
      if (staged === null) throw new InstallError('no_staged', 'no model is under shadow trial; install one with mode "shadow" first');
      const trial = this.deps.live.endShadow();
      clearTimeout(this.shadowTimer);
      // Stays staged in the store until the commit below, so a crash here leaves the trial to resume.
      const classifier = trial?.classifier ?? (await loadStored(this.deps.store.pathOf(staged), this.deps.buildClassifier));
      const { stagedAt: _stagedAt, mode: _mode, endsAt: _endsAt, ...bundle } = staged;
      await this.activate(bundle, classifier, 'promoted', { staged: null });
      return this.result('promoted');
    });
  }

  discard(): Promise<ModelCommandResult> {
    return this.exclusive('model.discard', async () => {
      const staged = this.deps.store.state.staged;
      if (staged === null) throw new InstallError('no_staged', 'no model is under shadow trial; nothing to discard');
      await this.commit({ staged: null, lastInstall: this.outcome(true, 'discarded', staged) });
      this.deps.live.endShadow()?.classifier.dispose();
      clearTimeout(this.shadowTimer);
      this.deps.logger.info({ discarded: refOf(staged) }, 'staged model discarded');
      return this.result('discarded');
    });
  }

  rollback(): Promise<ModelCommandResult> {
    return this.exclusive('model.rollback', async () => {
      const { store } = this.deps;
      const previous = store.state.previous;
      const active = store.state.active ?? this.deps.active;
      if (previous === null) throw new InstallError('no_previous', `no previous model to return to: ${active.name} ${active.version} is the only one this gateway has run`);
      const classifier = await loadStored(store.pathOf(previous), this.deps.buildClassifier);
      const now = new Date().toISOString();
      try {
        await this.commit({
          active: { ...previous, activatedAt: now },
          previous: stripActivation(active),
          // The one returned to ran before: it needs no confirmation.
          unconfirmedStarts: [],
          lastRollback: { ts: now, cause: 'command', from: refOf(active), to: refOf(previous) },
          lastInstall: this.outcome(true, 'rolled_back', previous),
        });
      } catch (error) {
        classifier.dispose();
        throw error;
      }
      this.deps.live.activate(classifier, refOf(previous));
      clearTimeout(this.confirmTimer);
      this.deps.logger.info({ from: refOf(active), to: refOf(previous) }, 'model rolled back by command');
      return this.result('rolled_back');
    });
  }

  private async activate(bundle: StoredBundle, classifier: Classifier, reason: InstallReason, extra: Partial<StoreState> = {}): Promise<void> {
    const { store } = this.deps;
    const active = store.state.active ?? this.deps.active;
    const now = new Date().toISOString();
    await this.commit({
      ...extra,
      active: { ...bundle, activatedAt: now },
      previous: stripActivation(active),
      // This switch is its first start: it must run confirmAfterSeconds before it counts as good.
      unconfirmedStarts: [now],
      lastInstall: this.outcome(true, reason, bundle),
    });
    this.deps.live.activate(classifier, refOf(bundle));
    this.scheduleConfirm();
    this.deps.logger.info({ active: refOf(bundle), previous: refOf(active), reason }, 'model activated');
  }

  /** Runs one model operation at a time; the failure of any step is recorded as lastInstall and becomes the reply's error. */
  private async exclusive(name: string, work: () => Promise<ModelCommandResult>): Promise<ModelCommandResult> {
    if (this.busy !== null) throw new InstallError('busy', `${this.busy} is still under way on this gateway; retry when it has replied`);
    this.busy = name;
    try {
      return await work();
    } catch (error) {
      const reason: InstallReason = error instanceof InstallError ? error.reason : 'store_failed';
      const message = (error as Error).message;
      // Info: the link logs the refusal as `command refused` at warn, throttled.
      this.deps.logger.info({ command: name, reason, error: message }, 'model command failed; the active model is unchanged');
      // These change nothing and say nothing about a model: the last install's outcome stays what …/model shows.
      if (reason !== 'busy' && reason !== 'no_staged' && reason !== 'no_previous') {
        const bundle = error instanceof InstallError ? error.bundle : undefined;
        await this.commit({ lastInstall: this.outcome(false, reason, bundle, message) }).catch((e: Error) =>
          this.deps.logger.error({ error: e.message }, 'could not record the failed install in the model store'),
        );
      }
      throw error instanceof InstallError ? error : new InstallError(reason, message);
    } finally {
      this.busy = null;
      this.publish();
    }
  }

  private async commit(change: Partial<StoreState>): Promise<void> {
    await this.deps.store.commit({ ...this.deps.store.state, active: this.deps.store.state.active ?? this.deps.active, ...change });
  }

  private outcome(ok: boolean, reason: InstallReason, bundle?: Pick<StoredBundle, 'name' | 'version'>, message?: string): NonNullable<StoreState['lastInstall']> {
    return { ok, reason, ts: new Date().toISOString(), ...(bundle ? { name: bundle.name, version: bundle.version } : {}), ...(message !== undefined ? { message } : {}) };
  }

  private result(reason: InstallReason): ModelCommandResult {
    const state = this.state();
    return {
      reason,
      active: state.active ? refOf(state.active as BundleRef) : null,
      previous: state.previous ? refOf(state.previous as BundleRef) : null,
      staged: state.staged ? refOf(state.staged as BundleRef) : null,
    };
  }

  private activeRef(): BundleRef {
    return refOf(this.deps.store.state.active ?? this.deps.active);
  }

  private scheduleConfirm(): void {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => {
      this.commit({ unconfirmedStarts: [] })
        .then(() => this.deps.logger.info({ active: this.activeRef() }, `model confirmed: it ran ${this.deps.settings.confirmAfterSeconds} s`))
        .catch((error: Error) => this.deps.logger.error({ error: error.message }, 'could not record the model as confirmed in the model store'));
    }, this.deps.settings.confirmAfterSeconds * 1000);
    this.confirmTimer.unref();
  }

  private scheduleShadowEnd(minutes: number): void {
    clearTimeout(this.shadowTimer);
    this.shadowTimer = setTimeout(() => {
      const staged = this.deps.store.state.staged;
      this.deps.logger.info({ staged: staged ? refOf(staged) : null, report: this.deps.live.shadowReport() }, 'shadow trial over; promote or discard the staged model');
      this.publish();
    }, Math.max(0, minutes * 60_000));
    this.shadowTimer.unref();
  }

  /**
   * An orderly stop is not a failed start: the start this run recorded is taken back, so
   * restarting a service (or the gateway) while the model is unconfirmed does not count
   * towards a rollback. Only that one: the model stays on probation (a switch in this run
   * put it there anew), so a crash loop after a restart is still rolled back.
   */
  async forgetThisStart(): Promise<void> {
    const starts = this.deps.store.state.unconfirmedStarts;
    const mine = this.deps.thisStart;
    if (mine === undefined || !starts.includes(mine)) return;
    await this.commit({ unconfirmedStarts: starts.filter((ts) => ts !== mine) });
  }
}


function stripActivation(bundle: StoredBundle & { activatedAt?: string }): StoredBundle {
  const { activatedAt: _activatedAt, ...rest } = bundle;
  return rest;
}
