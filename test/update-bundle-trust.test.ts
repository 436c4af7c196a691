import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { MANIFEST_FILE } from '../src/model/bundle-manifest.js';
import { parseManifest } from '../src/model/model-bundle.js';
import { ArchiveError, packBundle, unpackBundle } from '../src/update/bundle-archive.js';
import { loadTrustedKeys, signBundleDir, SIGNATURE_FILE, verifyBundleSignature } from '../src/update/bundle-signature.js';
import { generateSigningKeys } from '../src/update/signing-keys.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { writeSyntheticModel } from './helpers/daemon-process.js';
import { handMadeTar, type TarEntry } from './helpers/model-updates.js';

let bundleDir: string;
let keys: { privateFile: string; publicFile: string; keyId: string };
let otherKeys: { privateFile: string; publicFile: string; keyId: string };

before(async () => {
  const dir = tempDir('ser-edge-trust-');
  bundleDir = await writeSyntheticModel(dir);
  keys = await generateSigningKeys(join(dir, 'keys'));
  otherKeys = await generateSigningKeys(join(dir, 'other-keys'));
});

function signedCopy(): string {
  const dir = join(tempDir('ser-edge-signed-'), 'bundle');
  cpSync(bundleDir, dir, { recursive: true });
  return dir;
}

const manifestOf = (dir: string) => parseManifest(readFileSync(join(dir, MANIFEST_FILE), 'utf8'), dir);
const signatureOf = (dir: string) => readFileSync(join(dir, SIGNATURE_FILE));

describe('signing keys and bundle signatures', () => {
  test('keygen writes a private key only its owner can read, and a public key, and never overwrites them', async () => {
    assert.equal(statSync(keys.privateFile).mode & 0o777, 0o600);
    assert.match(readFileSync(keys.publicFile, 'utf8'), /BEGIN PUBLIC KEY/);
    assert.match(keys.keyId, /^[0-9a-f]{16}$/);
    await assert.rejects(generateSigningKeys(join(keys.privateFile, '..')), /already exists; not overwriting/);
  });

  test('a signed bundle verifies against its public key', async () => {
    const dir = signedCopy();
    const signature = await signBundleDir(dir, keys.privateFile);
    assert.equal(signature.keyId, keys.keyId);
    const check = verifyBundleSignature(manifestOf(dir), signatureOf(dir), await loadTrustedKeys([keys.publicFile]));
    assert.equal(check.ok, true);
  });

  test('weights changed together with their sha256 in the manifest no longer verify', async () => {
    const dir = signedCopy();
    await signBundleDir(dir, keys.privateFile);
    const manifest = manifestOf(dir);
    const [name] = Object.keys(manifest.files);
    const weights = readFileSync(join(dir, name!));
    weights[weights.length - 1] ^= 0x01;
    writeFileSync(join(dir, name!), weights);
    const edited = { ...manifest, files: { ...manifest.files, [name!]: { sha256: createHash('sha256').update(weights).digest('hex'), bytes: weights.length } } };
    const check = verifyBundleSignature(edited, signatureOf(dir), await loadTrustedKeys([keys.publicFile]));
    assert.deepEqual(check.ok ? 'ok' : check.reason, 'bad_signature');
  });

  test('a bundle signed by a key the gateway does not trust is refused as unknown_key, naming both', async () => {
    const dir = signedCopy();
    await signBundleDir(dir, otherKeys.privateFile);
    const check = verifyBundleSignature(manifestOf(dir), signatureOf(dir), await loadTrustedKeys([keys.publicFile]));
    assert.equal(check.ok, false);
    if (!check.ok) {
      assert.equal(check.reason, 'unknown_key');
      assert.match(check.message, new RegExp(`${otherKeys.keyId}.*${keys.keyId}`));
    }
  });

  test('an unsigned bundle is refused as unsigned, and a damaged signature file as bad_signature', async () => {
    const trusted = await loadTrustedKeys([keys.publicFile]);
    const unsigned = verifyBundleSignature(manifestOf(bundleDir), undefined, trusted);
    assert.equal(unsigned.ok ? 'ok' : unsigned.reason, 'unsigned');
    const garbage = verifyBundleSignature(manifestOf(bundleDir), Buffer.from('{"schema":1}'), trusted);
    assert.equal(garbage.ok ? 'ok' : garbage.reason, 'bad_signature');
  });

  test('a private key that others can read is refused, and a trusted key that is not ed25519 public PEM is an error naming the file', async () => {
    const dir = tempDir('ser-edge-loose-key-');
    const loose = join(dir, 'k.key');
    writeFileSync(loose, readFileSync(keys.privateFile), { mode: 0o644 });
    await assert.rejects(signBundleDir(signedCopy(), loose), /readable by others.*chmod 600/);
    const notKey = join(dir, 'not.pub');
    writeFileSync(notKey, 'hello');
    await assert.rejects(loadTrustedKeys([notKey]), new RegExp(`${notKey.replace(/[.]/g, '\\.')} is not a PEM public key`));
  });
});

describe('packed bundles', () => {
  test('pack and unpack give back every file of the bundle, and packing twice gives the same bytes', async () => {
    const dir = signedCopy();
    await signBundleDir(dir, keys.privateFile);
    writeFileSync(join(dir, 'notes.txt'), 'not part of the bundle');
    const packed = await packBundle(dir);
    assert.deepEqual(packed, await packBundle(dir));
    const files = await unpackBundle(packed);
    const expected = [MANIFEST_FILE, SIGNATURE_FILE, ...Object.keys(manifestOf(dir).files)].sort();
    assert.deepEqual([...files.keys()].sort(), expected);
    for (const name of expected) assert.deepEqual(files.get(name), readFileSync(join(dir, name)));
  });

  const manifest: TarEntry = { header: { name: MANIFEST_FILE, size: 2, type: 'file' }, data: Buffer.from('{}') };
  const refusals: [string, TarEntry[], RegExp][] = [
    ['an absolute path', [manifest, { header: { name: '/etc/cron.d/x', size: 1 }, data: Buffer.from('x') }], /absolute path/],
    ['a path with ..', [manifest, { header: { name: '../../etc/passwd', size: 1 }, data: Buffer.from('x') }], /climbs out of the bundle/],
    ['a file in a directory', [manifest, { header: { name: 'sub/knn.bin', size: 1 }, data: Buffer.from('x') }], /names a directory/],
    ['a symbolic link', [manifest, { header: { name: 'knn.bin', type: 'symlink', linkname: '/etc/shadow' } }], /symbolic link/],
    ['a hard link', [manifest, { header: { name: 'knn.bin', type: 'link', linkname: MANIFEST_FILE } }], /hard link/],
    ['a character device', [manifest, { header: { name: 'zero', type: 'character-device', devmajor: 1, devminor: 5 } }], /character-device/],
    ['a fifo', [manifest, { header: { name: 'pipe', type: 'fifo' } }], /fifo/],
    ['a directory entry', [manifest, { header: { name: 'models', type: 'directory' } }], /is a directory/],
    ['a name twice', [manifest, { header: { name: MANIFEST_FILE, size: 2 }, data: Buffer.from('{}') }], /appears twice/],
  ];
  for (const [what, entries, message] of refusals) {
    test(`an archive with ${what} is refused as unsafe_archive`, async () => {
      const tar = await handMadeTar(entries);
      await assert.rejects(unpackBundle(tar), (error: unknown) => error instanceof ArchiveError && error.reason === 'unsafe_archive' && message.test(error.message));
    });
  }

  test('an entry over the size limit, or more entries than a bundle has, is refused before it is read', async () => {
    const big = await handMadeTar([manifest, { header: { name: 'w.bin', size: 2048 }, data: Buffer.alloc(2048) }]);
    await assert.rejects(unpackBundle(big, { maxEntryBytes: 1024, maxEntries: 8 }), (e: unknown) => e instanceof ArchiveError && e.reason === 'unsafe_archive' && /over the 1024-byte limit/.test(e.message));
    const many = await handMadeTar([manifest, ...Array.from({ length: 4 }, (_, i) => ({ header: { name: `f${i}`, size: 1 }, data: Buffer.from('x') }))]);
    await assert.rejects(unpackBundle(many, { maxEntryBytes: 1024, maxEntries: 3 }), /more than 3 entries/);
  });

  test('a truncated archive or bytes that are no tar at all are refused as bad_archive', async () => {
    const packed = await packBundle(bundleDir);
    for (const cut of [700, Math.floor(packed.length / 2), packed.length - 1500]) {
      await assert.rejects(unpackBundle(packed.subarray(0, cut)), (e: unknown) => e instanceof ArchiveError && e.reason === 'bad_archive', `cut at ${cut} of ${packed.length}`);
    }
    await assert.rejects(unpackBundle(Buffer.from('PK\u0003\u0004 this is a zip'.repeat(40))), (e: unknown) => e instanceof ArchiveError && e.reason === 'bad_archive');
    await assert.rejects(unpackBundle(await handMadeTar([{ header: { name: 'w.bin', size: 1 }, data: Buffer.from('x') }])), /no manifest\.json/);
  });
});
