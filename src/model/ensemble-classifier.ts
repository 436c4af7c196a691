import type { BundleManifest, EnsembleMember } from './bundle-manifest.js';
import type { CallContext, Classifier } from './classifier.js';
import type { Emotion } from './emotions.js';
import { FusedGruClassifier, readGruBundleWeights, type FusedGruOptions } from './gru/fused-gru-classifier.js';
import { PooledMlpClassifier, readMlpBundleWeights } from './mlp/pooled-mlp-classifier.js';
import { BundleError, type ModelBundle } from './model-bundle.js';

/** A member as a bundle of its own kind: the ensemble's features, labels and files, the member's network. */
export function memberBundle(bundle: ModelBundle, member: EnsembleMember, index: number): ModelBundle {
  const manifest: BundleManifest = {
    ...bundle.manifest,
    name: `${bundle.manifest.name}.member-${index}`,
    kind: member.kind,
    input: member.input,
    normaliser: member.normaliser,
    selfTest: [],
    ...(member.gru ? { gru: member.gru } : {}),
    ...(member.mlp ? { mlp: member.mlp } : {}),
  };
  delete manifest.ensemble;
  return { ...bundle, manifest };
}

/**
 * Networks of different kinds over the same frames (one feature extractor serves all),
 * whose probabilities are averaged with the bundle's weights: a GRU that follows how a
 * window unfolds and an MLP over its functionals make different mistakes. Each member
 * runs on its own int8 kernel with its own preallocated buffers; a window allocates
 * nothing. The model input (self-test vectors) is the members' inputs concatenated.
 */
export class EnsembleClassifier implements Classifier {
  readonly backend: string;
  readonly labels: readonly Emotion[];
  private readonly shares: Float64Array;
  private readonly inputSizes: number[];
  private readonly memberOut: Float32Array;

  constructor(
    readonly manifest: BundleManifest,
    private readonly members: Classifier[],
    weights: readonly number[],
  ) {
    this.labels = manifest.labels;
    const total = weights.reduce((a, b) => a + b, 0);
    this.shares = Float64Array.from(weights, (w) => w / total);
    this.inputSizes = manifest.ensemble!.members.map((spec) => (spec.kind === 'gru' ? spec.gru!.steps * spec.gru!.inputDim : spec.mlp!.inputDim));
    this.backend = `ensemble(${members.map((m) => m.backend).join('+')})`;
    this.memberOut = new Float32Array(manifest.labels.length);
  }

  static fromBundle(bundle: ModelBundle, options: FusedGruOptions = {}): EnsembleClassifier {
    const section = bundle.manifest.ensemble;
    if (!section) throw new BundleError(bundle.dir, 'has no ensemble section');
    const members = section.members.map((m, i) => {
      const own = memberBundle(bundle, m, i);
      try {
        return m.kind === 'gru' ? new FusedGruClassifier(own.manifest, readGruBundleWeights(own), options) : new PooledMlpClassifier(own.manifest, readMlpBundleWeights(own), options);
      } catch (err) {
        // Member errors name the member: `mlp.tensors[2]` alone would not say which.
        const message = err instanceof BundleError ? err.message.replace(`model bundle ${err.bundleDir}: `, '') : (err as Error).message;
        throw new BundleError(bundle.dir, `ensemble.members[${i}] (${m.kind}): ${message}`);
      }
    });
    return new EnsembleClassifier(bundle.manifest, members, section.members.map((m) => m.weight));
  }

  modelInput(rows: Float32Array, frames: number): Float32Array {
    const parts = this.members.map((m) => m.modelInput(rows, frames));
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** The members' call contexts, or null when no member keeps one. */
  newCallContext(): EnsembleCallContext | null {
    const members = this.members.map((m) => m.newCallContext());
    return members.some((c) => c !== null) ? new EnsembleCallContext(this, this.manifest.name, members) : null;
  }

  predict(rows: Float32Array, frames: number, out: Float32Array, call?: CallContext | null): Float32Array {
    let contexts: readonly (CallContext | null)[] | null = null;
    if (call !== undefined && call !== null) {
      if (!(call instanceof EnsembleCallContext) || call.owner !== this)
        throw new TypeError(`model ${this.manifest.name}: the call context passed to predict was made by model ${call.model}, not by this one`);
      contexts = call.members;
    }
    out.fill(0, 0, this.labels.length);
    // A plain loop: a forEach closure would be allocated on every window.
    for (let i = 0; i < this.members.length; i++) this.add(this.members[i]!.predict(rows, frames, this.memberOut, contexts ? contexts[i] : null), i, out);
    return out;
  }

  predictModelInput(input: Float32Array, out: Float32Array): Float32Array {
    const want = this.inputSizes.reduce((a, b) => a + b, 0);
    if (input.length !== want) throw new RangeError(`ensemble input has ${input.length} values, its members take ${this.inputSizes.join(' + ')} = ${want}`);
    out.fill(0, 0, this.labels.length);
    let at = 0;
    this.members.forEach((m, i) => {
      this.add(m.predictModelInput(input.subarray(at, at + this.inputSizes[i]!), this.memberOut), i, out);
      at += this.inputSizes[i]!;
    });
    return out;
  }

  private add(p: Float32Array, member: number, out: Float32Array): void {
    const share = this.shares[member]!;
    for (let c = 0; c < this.labels.length; c++) out[c]! += share * p[c]!;
  }

  dispose(): void {
    for (const m of this.members) m.dispose();
  }
}

/** An ensemble's per-call state: each member's own context (null for members without one). */
class EnsembleCallContext implements CallContext {
  constructor(
    readonly owner: EnsembleClassifier,
    readonly model: string,
    readonly members: readonly (CallContext | null)[],
  ) {}
}
