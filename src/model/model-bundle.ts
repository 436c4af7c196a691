import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FUNCTIONAL_STATISTICS, functionalsSize } from '../features/functionals.js';
import { featureLayout, frameVectorSize } from '../features/feature-config.js';
import { MANIFEST_FILE, MANIFEST_SCHEMA_VERSION, manifestSchema, type BundleManifest, type ManifestDraft } from './bundle-manifest.js';

/** A bundle that cannot be used: bad manifest, missing or altered file, failed self-test. */
export class BundleError extends Error {
  constructor(
    readonly bundleDir: string,
    message: string,
  ) {
    super(`model bundle ${bundleDir}: ${message}`);
    this.name = 'BundleError';
  }
}

export interface ModelBundle {
  dir: string;
  manifest: BundleManifest;
  /** Every file the manifest lists, verified against its sha256. */
  files: ReadonlyMap<string, Buffer>;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Refuses a manifest bigger than this before parsing it: a bundle arrives from the network. */
const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export function parseManifest(text: string, where: string): BundleManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BundleError(where, `${MANIFEST_FILE} is not valid JSON (${(err as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.') || '(root)';
    throw new BundleError(where, `${MANIFEST_FILE} key "${key}": ${issue.message}`);
  }
  return parsed.data;
}

/** Reads a bundle directory and verifies every listed file's size and sha256. */
export async function loadBundle(dir: string): Promise<ModelBundle> {
  const where = resolve(dir);
  let text: Buffer;
  try {
    text = await readFile(join(where, MANIFEST_FILE));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BundleError(where, code === 'ENOENT' ? `no ${MANIFEST_FILE} here: is this a model bundle directory?` : `cannot read ${MANIFEST_FILE} (${code})`);
  }
  if (text.length > MAX_MANIFEST_BYTES) throw new BundleError(where, `${MANIFEST_FILE} is ${text.length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit`);
  const manifest = parseManifest(text.toString('utf8'), where);
  checkModelInput(manifest, where);
  const files = new Map<string, Buffer>();
  for (const [name, entry] of Object.entries(manifest.files)) {
    let data: Buffer;
    try {
      data = await readFile(join(where, name));
    } catch {
      throw new BundleError(where, `file ${name} listed in ${MANIFEST_FILE} is missing`);
    }
    if (data.length !== entry.bytes) throw new BundleError(where, `file ${name} is ${data.length} bytes, the manifest says ${entry.bytes}`);
    if (sha256(data) !== entry.sha256) throw new BundleError(where, `file ${name} fails its sha256 check: it was altered or damaged`);
    files.set(name, data);
  }
  return { dir: where, manifest, files };
}

/** `mfcc 20 + rms 1 + …`: how a feature list adds up to its frame vector size. */
function describeFrame(manifest: BundleManifest): string {
  return featureLayout(manifest.features)
    .map((f) => `${f.name} ${f.width}`)
    .join(' + ');
}

/** The parts of a manifest that describe one network: the bundle itself, or one member of an ensemble. */
type NetworkSpec = Pick<BundleManifest, 'kind' | 'input' | 'normaliser' | 'knn' | 'gru' | 'mlp'>;

/**
 * Checks that the model consumes exactly what the bundle's feature configuration makes:
 * a KNN the pooled mean and std of each frame vector (2 × frame size), a GRU a sequence
 * of frame vectors (frame size per step), an MLP the functionals of each frame value
 * (7 × frame size + 1), an ensemble each of its members' inputs; that the normalisers and
 * every self-test input have that shape too. One check for every kind, run at load, so a
 * bundle trained with another feature list is refused with both numbers rather than
 * misread or failing later with a bare RangeError.
 */
export function checkModelInput(manifest: BundleManifest, where: string): void {
  const frame = frameVectorSize(manifest.features);
  const refuse = (what: string): never => {
    throw new BundleError(
      where,
      `${what}, from its features ${describeFrame(manifest)} = ${frame} values per frame: the model does not fit the feature configuration in ${MANIFEST_FILE}; rebuild the bundle from the features it was trained on`,
    );
  };
  /** One network's input size, checked; `at` names it in errors (`` or `ensemble.members[1].`). */
  const network = (spec: NetworkSpec, at: string): { modelInput: number; inputShape: string } => {
    let width: number;
    let modelInput: number;
    let inputShape: string;
    if (spec.kind === 'knn') {
      const knn = spec.knn!;
      if (spec.input !== 'pooled_mean_std') refuse(`a knn ${at ? 'member' : 'bundle'} declares input "${spec.input}", expected "pooled_mean_std"`);
      if (knn.dim !== 2 * frame) refuse(`${at}knn.dim is ${knn.dim}, expected 2 × ${frame} = ${2 * frame} (the mean and std of each frame value)`);
      width = modelInput = knn.dim;
      inputShape = `${knn.dim} (knn.dim)`;
    } else if (spec.kind === 'mlp') {
      const mlp = spec.mlp!;
      const functionals = functionalsSize(frame);
      // With a caller baseline the input is the functionals, then the same relative to the baseline.
      const copies = mlp.callBaseline ? 2 : 1;
      const want = copies * functionals;
      if (spec.input !== 'pooled_functionals') refuse(`an mlp ${at ? 'member' : 'bundle'} declares input "${spec.input}", expected "pooled_functionals"`);
      if (mlp.inputDim !== want)
        refuse(`${at}mlp.inputDim is ${mlp.inputDim}, expected ${copies > 1 ? '2 × (' : ''}${FUNCTIONAL_STATISTICS.length} × ${frame} + 1${copies > 1 ? ')' : ''} = ${want} (the functionals of each frame value and the voiced share${copies > 1 ? ', as they are and relative to the caller baseline' : ''})`);
      width = modelInput = mlp.inputDim;
      inputShape = `${mlp.inputDim} (mlp.inputDim)`;
    } else {
      const gru = spec.gru!;
      if (spec.input !== 'sequence') refuse(`a gru ${at ? 'member' : 'bundle'} declares input "${spec.input}", expected "sequence"`);
      if (gru.inputDim !== frame) refuse(`${at}gru.inputDim is ${gru.inputDim}, expected ${frame} (one frame vector per step)`);
      width = gru.inputDim;
      modelInput = gru.steps * gru.inputDim;
      inputShape = `steps × inputDim = ${gru.steps} × ${gru.inputDim} = ${modelInput}`;
    }
    if (spec.normaliser!.mean.length !== width) refuse(`${at}normaliser has ${spec.normaliser!.mean.length} dimensions, expected ${width}`);
    return { modelInput, inputShape };
  };
  let modelInput: number;
  let inputShape: string;
  if (manifest.kind === 'ensemble') {
    if (manifest.input !== 'members') refuse(`an ensemble bundle declares input "${manifest.input}", expected "members"`);
    const members = manifest.ensemble!.members.map((m, i) => network(m, `ensemble.members[${i}].`));
    modelInput = members.reduce((n, m) => n + m.modelInput, 0);
    inputShape = `its members' inputs in turn, ${members.map((m) => m.modelInput).join(' + ')} = ${modelInput}`;
  } else {
    ({ modelInput, inputShape } = network(manifest, ''));
  }
  for (const [i, vector] of manifest.selfTest.entries()) {
    if (vector.input.length !== modelInput)
      throw new BundleError(where, `${MANIFEST_FILE} selfTest[${i}].input has ${vector.input.length} values, expected ${inputShape}: the self-test vectors were not made for this model`);
  }
}

/**
 * Writes a bundle: the weight files first, the manifest (with their hashes) last and by
 * rename, so a reader never sees a manifest whose files are not all there.
 */
export async function writeBundle(dir: string, draft: ManifestDraft, files: Record<string, Uint8Array>): Promise<BundleManifest> {
  await mkdir(dir, { recursive: true });
  const entries: BundleManifest['files'] = {};
  for (const [name, data] of Object.entries(files)) {
    await writeFile(join(dir, name), data);
    entries[name] = { sha256: sha256(data), bytes: data.length };
  }
  const manifest = manifestSchema.parse({ schemaVersion: MANIFEST_SCHEMA_VERSION, ...draft, files: entries });
  const tmp = join(dir, `.${MANIFEST_FILE}.tmp`);
  await writeFile(tmp, JSON.stringify(manifest, null, 1) + '\n');
  await rename(tmp, join(dir, MANIFEST_FILE));
  return manifest;
}

/** Writes `bundle`'s files again at `dir` under its manifest with `changes` (e.g. an urgency section); a signature is not carried over. */
export async function writeBundleWith(bundle: ModelBundle, dir: string, changes: Partial<ManifestDraft>): Promise<BundleManifest> {
  const files = Object.fromEntries([...bundle.files].map(([name, data]) => [name, new Uint8Array(data)]));
  const { files: _listed, schemaVersion: _version, ...draft } = bundle.manifest;
  return writeBundle(dir, { ...draft, ...changes }, files);
}

export async function removeBundle(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function bundleFile(bundle: ModelBundle, name: string): Buffer {
  const data = bundle.files.get(name);
  if (!data) throw new BundleError(bundle.dir, `file ${name} is not listed in ${MANIFEST_FILE}`);
  return data;
}
