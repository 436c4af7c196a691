import { stat } from 'node:fs/promises';
import { loadTrustedKeys, type TrustedKey } from '../../update/bundle-signature.js';
import { checkBundleTrust, readBundleSignature } from '../../update/bundle-trust.js';
import { isShippedModelDir } from '../../config/package-paths.js';
import { fail, pass, skip, warn, errorCode, type CheckResult } from './check-result.js';
import type { BundleTrustCheck } from './model-check.js';
import { trustFix, trustProblem, unsignedAllowedBecause } from '../model-trust.js';

/** Each model.trustedKeys file that reads as an ed25519 public key; the others are left out (the `model-keys` rows name them). */
async function readableKeys(files: readonly string[]): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const file of files) keys.push(...(await loadTrustedKeys([file]).catch(() => [])));
  return keys;
}

/**
 * `model-signature`: whether the configured bundle's signature lets it run, as `run` would
 * decide: signed by which trusted key, unsigned and allowed, or refused and why.
 */
export const modelSignatureCheck: BundleTrustCheck = {
  check: 'model-signature',
  async verify({ model, bundle }) {
    if (bundle === null) return [skip('model-signature', { subject: model.dir, detail: 'not checked: the bundle does not load (see the model row)' })];
    try {
      await readBundleSignature(bundle.dir);
    } catch (error) {
      return [fail('model-signature', { subject: bundle.dir, detail: `cannot read its signature.json (${errorCode(error)})`, fix: "make it readable by the service's account (it is not secret)" })];
    }
    const keys = await readableKeys(model.trustedKeys);
    // From the directory: the signature covers manifest.json as it is there.
    const trust = await checkBundleTrust(bundle.dir, keys, model.allowUnsigned);
    const what = `${bundle.manifest.name} ${bundle.manifest.version}`;
    if (trust.ok && trust.signed) {
      return [
        pass('model-signature', {
          subject: bundle.dir,
          detail: `${what} is signed by trusted key ${trust.key.keyId} (${trust.key.file}), on ${trust.signedAt}; the signature matches the manifest`,
          data: { state: 'signed', keyId: trust.key.keyId, keyFile: trust.key.file, signedAt: trust.signedAt },
        }),
      ];
    }
    if (trust.ok) {
      const data = { state: 'unsigned', allowUnsigned: true };
      // The shipped bundle is part of the program: trusting it is trusting the program.
      if (isShippedModelDir(bundle.dir)) return [pass('model-signature', { subject: bundle.dir, detail: `${what} is unsigned, and loads: ${unsignedAllowedBecause(bundle.dir)}`, data })];
      return [
        warn('model-signature', {
          subject: bundle.dir,
          detail: `${what} is unsigned and loads only because model.allowUnsigned is true: whoever can write to ${bundle.dir} can change the model unnoticed`,
          fix: `sign it (\`ser-edge model sign ${bundle.dir} --key model-signing.key\`), list the key's .pub in model.trustedKeys and remove model.allowUnsigned`,
          data,
        }),
      ];
    }
    const skipped = model.trustedKeys.length - keys.length;
    return [
      fail('model-signature', {
        subject: bundle.dir,
        detail: `${what} is refused (${trust.reason}): ${trustProblem(trust.reason, trust.message)}; \`ser-edge run\` would exit 2`,
        fix: `${trustFix(trust.reason, bundle.dir)}${skipped > 0 ? `; ${skipped} of model.trustedKeys could not be read (see the model-keys rows)` : ''}`,
        data: { state: 'refused', reason: trust.reason },
      }),
    ];
  },
};

/**
 * `model-keys`: each model.trustedKeys file, readable and an ed25519 public key, as the daemon
 * reads them at start (one that is not stops it with exit 2), and not writable by others:
 * whoever can replace it decides which models this gateway runs.
 */
export const modelKeysCheck: BundleTrustCheck = {
  check: 'model-keys',
  async verify({ model }) {
    if (model.trustedKeys.length === 0) {
      return [
        skip('model-keys', {
          detail: `no model.trustedKeys: ${model.allowUnsigned ? 'only an unsigned model.dir bundle loads here' : 'no signed bundle can load here'}, and every remote model install is refused`,
        }),
      ];
    }
    const rows: CheckResult[] = [];
    for (const file of model.trustedKeys) {
      let key: TrustedKey;
      try {
        [key] = (await loadTrustedKeys([file])) as [TrustedKey];
      } catch (error) {
        rows.push(fail('model-keys', { subject: file, detail: (error as Error).message, fix: "copy the .pub file `ser-edge model keygen` wrote to this path, readable by the service's account, or remove it from model.trustedKeys" }));
        continue;
      }
      const mode = (await stat(file)).mode & 0o777;
      const data = { keyId: key.keyId, mode: mode.toString(8) };
      if ((mode & 0o022) !== 0) {
        rows.push(warn('model-keys', { subject: file, detail: `ed25519 public key ${key.keyId}, but writable by ${mode & 0o002 ? 'anyone' : 'its group'} (mode ${mode.toString(8)}): whoever can replace it decides which models this gateway runs`, fix: `chmod go-w ${file}`, data }));
      } else {
        rows.push(pass('model-keys', { subject: file, detail: `ed25519 public key ${key.keyId}`, data }));
      }
    }
    return rows;
  },
};
