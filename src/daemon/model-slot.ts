import { frameFeatureDifferences } from '../features/feature-config.js';
import type { BundleManifest } from '../model/bundle-manifest.js';
import type { Classifier } from '../model/classifier.js';
import { UrgencyStage, type UrgencySettings } from '../urgency/call-urgency.js';
import { ShadowTrial } from './shadow-trial.js';

/** A loaded model as the channels use it. */
export interface LiveModel {
  classifier: Classifier;
  /** Urgency weights for classifier.labels: the bundle's, overridden by the config's `urgency.weights`. */
  labelWeights: Float32Array;
  /** How its windows become a call's urgency: the bundle's trained head and trackers, or the weights on the config's tracker. */
  urgency: UrgencyStage;
  /** The bundle: its manifest's name and version, and the sha256 of its manifest.json. */
  ref: { name: string; version: string; sha256: string };
}

/** `classifier` ready for the channels, with its urgency stage resolved once (the config's settings, or the defaults). */
export function liveModel(classifier: Classifier, settings: UrgencySettings | undefined, sha256: string): LiveModel {
  const { manifest } = classifier;
  const urgency = UrgencyStage.of(classifier, settings);
  return { classifier, labelWeights: urgency.labelWeights, urgency, ref: { name: manifest.name, version: manifest.version, sha256 } };
}

export interface ModelSlotDependencies {
  /** The model the daemon started with; its sample rate is the audio sources' for good. */
  initial: LiveModel;
  /** Epoch ms, for shadow trials; tests drive it. */
  now?: () => number;
}

/**
 * The live side of a model switch: the model every channel judges its next window with,
 * and the staged one under shadow trial. JavaScript runs one thing at a time and a window
 * is classified synchronously, so a switch always falls between two windows: the window
 * before it was judged by the old model, the one after by the new, none by both or by
 * neither, and there is no moment without a model. The channels read `current` per
 * window and notice a new model by its object: each call then gets a context from the
 * new model and keeps its urgency level.
 *
 * The slot owns the models it holds, and hands back the ones it lets go of: whoever
 * switches disposes of those.
 */
export class ModelSlot {
  /** The rate the audio sources were opened at, from the first model: a live switch cannot change it. */
  readonly sampleRate: number;
  private readonly deps: ModelSlotDependencies;
  private live: LiveModel;
  private trial: ShadowTrial | null = null;

  constructor(dependencies: ModelSlotDependencies) {
    this.deps = dependencies;
    this.live = dependencies.initial;
    this.sampleRate = dependencies.initial.classifier.manifest.features.sampleRate;
  }

  /** The model that judges the next window. */
  get current(): LiveModel {
    return this.live;
  }

  /** The shadow trial, running or done, until `endShadow`. */
  get shadow(): ShadowTrial | null {
    return this.trial;
  }

  /**
   * Null when the running extractor can honour `manifest`'s feature config for `mode`,
   * else why not, for the `incompatible_features` reply. A new model may want other
   * frame features at the same rate (the channels then rebuild their feature streams); a
   * shadow must read exactly the active model's frames, as it judges the same windows.
   */
  canAdopt(manifest: BundleManifest, mode: 'activate' | 'shadow'): string | null {
    const model = `model ${manifest.name} ${manifest.version}`;
    const rate = manifest.features.sampleRate;
    if (rate !== this.sampleRate) {
      return `${model} takes audio at ${rate} Hz, but the audio sources were opened at ${this.sampleRate} Hz for the model the daemon started with, and a live switch cannot reopen them: set model.dir to this bundle and restart the daemon`;
    }
    if (mode === 'shadow') {
      const active = this.live.classifier.manifest;
      const differences = frameFeatureDifferences(active.features, manifest.features);
      if (differences.length > 0) {
        return `${model} computes other frame features than the active ${active.name} ${active.version} (${differences.join('; ')}), and a shadow trial judges the active model's windows: install it without shadow (mode "activate")`;
      }
      return null;
    }
    if (this.trial !== null) {
      const staged = this.trial.model.classifier.manifest;
      const differences = frameFeatureDifferences(staged.features, manifest.features);
      if (differences.length > 0) {
        return `${model} computes other frame features than ${staged.name} ${staged.version}, which is under shadow trial on the active model's frames (${differences.join('; ')}): promote or discard the staged model first`;
      }
    }
    return null;
  }

  /**
   * Makes `next` the model of every channel's next window, and returns the one it
   * replaces (the caller disposes of it). Throws, leaving the current model in place,
   * when `canAdopt` refuses `next` or `next` is already held here.
   */
  activate(next: LiveModel): LiveModel {
    if (next === this.live) throw new Error(`model ${next.ref.name} ${next.ref.version} is the active model already`);
    if (next === this.trial?.model) throw new Error(`model ${next.ref.name} ${next.ref.version} is under shadow trial: end the trial (endShadow) before activating its model`);
    const refused = this.canAdopt(next.classifier.manifest, 'activate');
    if (refused !== null) throw new Error(refused);
    const previous = this.live;
    this.live = next;
    return previous;
  }

  /** Starts a shadow trial of `model` for `minutes`. Throws when one is held (running or done) or `canAdopt` refuses it. */
  startShadow(model: LiveModel, minutes: number): ShadowTrial {
    if (this.trial !== null) {
      const { name, version } = this.trial.model.ref;
      throw new Error(`a shadow trial of ${name} ${version} is held already: promote or discard it before staging another`);
    }
    if (model === this.live) throw new Error(`model ${model.ref.name} ${model.ref.version} is the active model: a shadow trial needs a model of its own (load the bundle again)`);
    const refused = this.canAdopt(model.classifier.manifest, 'shadow');
    if (refused !== null) throw new Error(refused);
    this.trial = new ShadowTrial({ model, minutes, ...(this.deps.now ? { now: this.deps.now } : {}) });
    return this.trial;
  }

  /** Ends the trial and returns its model (promote activates it, discard disposes of it); null when none is held. */
  endShadow(): LiveModel | null {
    const trial = this.trial;
    this.trial = null;
    return trial?.model ?? null;
  }

  /** At shutdown: disposes of the active model and the one under trial. */
  dispose(): void {
    this.endShadow()?.classifier.dispose();
    this.live.classifier.dispose();
  }
}
