import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MANIFEST_FILE } from '../src/model/bundle-manifest.js';
import { unpackBundle } from '../src/update/bundle-archive.js';
import { SIGNATURE_FILE } from '../src/update/bundle-signature.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { writeSyntheticModel } from './helpers/daemon-process.js';
import { tamperWeights } from './helpers/model-updates.js';
import { onlyCommanderHook, runSerEdge } from './helpers/program-process.js';

/** `ser-edge model keygen|sign|verify|pack`, run as a field tech runs them: the program, as a child process. */

const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));
const execute = promisify(execFile);
const dir = tempDir('ser-edge-model-cli-');
let bundleDir: string;
let keys: { privateFile: string; publicFile: string; keyId: string };

const serEdge = (...args: string[]) => runSerEdge(args, 60_000);

let copies = 0;
/** A fresh copy of the unsigned synthetic bundle. */
function bundleCopy(): string {
  const copy = join(dir, `bundle-${copies++}`);
  cpSync(bundleDir, copy, { recursive: true });
  return copy;
}

async function signedCopy(): Promise<string> {
  const copy = bundleCopy();
  const signed = await serEdge('model', 'sign', copy, '--key', keys.privateFile);
  assert.equal(signed.code, 0, signed.stderr);
  return copy;
}

const manifestOf = (bundle: string) => JSON.parse(readFileSync(join(bundle, MANIFEST_FILE), 'utf8')) as { files: Record<string, { sha256: string; bytes: number }>; selfTest: { expected: number[] }[] };

before(async () => {
  bundleDir = await writeSyntheticModel(dir);
  const out = await serEdge('model', 'keygen', '--out', join(dir, 'keys'));
  assert.equal(out.code, 0, out.stderr);
  keys = { privateFile: join(dir, 'keys', 'model-signing.key'), publicFile: join(dir, 'keys', 'model-signing.pub'), keyId: /key id\s+([0-9a-f]{16})/.exec(out.stdout)![1]! };
});

describe('model keygen', () => {
  test('writes a private key only its owner can read and a public key, and prints both paths, the key id and where each belongs', async () => {
    const out = await serEdge('model', 'keygen', '--out', join(dir, 'keygen'));
    assert.equal(out.code, 0, out.stderr);
    const privateFile = join(dir, 'keygen', 'model-signing.key');
    const publicFile = join(dir, 'keygen', 'model-signing.pub');
    assert.ok(out.stdout.includes(privateFile) && out.stdout.includes(publicFile), out.stdout);
    assert.match(out.stdout, /key id\s+[0-9a-f]{16}\n/);
    assert.match(out.stdout, /Keep model-signing\.key off the gateways.*list it in model\.trustedKeys/);
    assert.match(readFileSync(privateFile, 'utf8'), /BEGIN PRIVATE KEY/);
    assert.match(readFileSync(publicFile, 'utf8'), /BEGIN PUBLIC KEY/);
  });

  test('never overwrites an existing key: exit 1, the key left as it was', async () => {
    const before = readFileSync(keys.privateFile);
    const again = await serEdge('model', 'keygen', '--out', join(dir, 'keys'));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^ser-edge model keygen: .*model-signing\.key already exists; not overwriting a signing key/);
    assert.deepEqual(readFileSync(keys.privateFile), before);
  });
});

describe('model sign and verify', () => {
  test('a signed bundle verifies: exit 0 and one line with its name, version and key id', async () => {
    const bundle = bundleCopy();
    const signed = await serEdge('model', 'sign', bundle, '--key', keys.privateFile);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(signed.stdout, new RegExp(`^signed synthetic 0\\.0\\.1 \\(.*\\) with key ${keys.keyId}: wrote signature\\.json\\n`));
    assert.match(signed.stdout, /files match their sha256, self-test passed on \d+ vectors/);
    assert.ok(existsSync(join(bundle, SIGNATURE_FILE)));
    const verified = await serEdge('model', 'verify', bundle, '--pub', keys.publicFile);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(verified.stdout.split('\n').filter(Boolean).length, 1, verified.stdout);
    assert.match(verified.stdout, new RegExp(`^verified synthetic 0\\.0\\.1: signed by key ${keys.keyId} \\(.*model-signing\\.pub\\)`));
  });

  test('verify accepts any one of several keys, as model.trustedKeys does', async () => {
    const other = await serEdge('model', 'keygen', '--out', join(dir, 'other-for-verify'));
    const verified = await serEdge('model', 'verify', await signedCopy(), '--pub', join(dir, 'other-for-verify', 'model-signing.pub'), keys.publicFile);
    assert.equal(other.code, 0);
    assert.equal(verified.code, 0, verified.stderr);
  });

  test('an unsigned bundle does not verify: exit 1, reason unsigned', async () => {
    const out = await serEdge('model', 'verify', bundleCopy(), '--pub', keys.publicFile);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /^ser-edge model verify: .*bundle-\d+: unsigned: the bundle has no signature\.json/);
  });

  test('a bundle signed by a key not given does not verify: exit 1, reason unknown_key, naming both keys', async () => {
    await serEdge('model', 'keygen', '--out', join(dir, 'stranger'));
    const out = await serEdge('model', 'verify', await signedCopy(), '--pub', join(dir, 'stranger', 'model-signing.pub'));
    assert.equal(out.code, 1);
    assert.match(out.stderr, new RegExp(`: unknown_key: signed by key ${keys.keyId}, .*trusted: [0-9a-f]{16} \\(.*stranger/model-signing\\.pub\\)`));
  });

  test('weights changed together with their sha256 in the manifest do not verify: exit 1, reason bad_signature', async () => {
    const bundle = await signedCopy();
    tamperWeights(bundle);
    const out = await serEdge('model', 'verify', bundle, '--pub', keys.publicFile);
    assert.equal(out.code, 1);
    assert.match(out.stderr, new RegExp(`: bad_signature: the signature by key ${keys.keyId} does not match the manifest`));
  });

  test('re-indenting manifest.json or reordering its keys does not break the signature: it covers the JSON, not its layout', async () => {
    const bundle = await signedCopy();
    const manifest = manifestOf(bundle) as unknown as Record<string, unknown>;
    const reordered = Object.fromEntries(Object.entries(manifest).reverse());
    writeFileSync(join(bundle, MANIFEST_FILE), `${JSON.stringify(reordered, null, 4)}\n`);
    const out = await serEdge('model', 'verify', bundle, '--pub', keys.publicFile);
    assert.equal(out.code, 0, out.stderr);
  });

  test('a signed bundle whose weights were changed afterwards does not verify: exit 1, reason file_mismatch', async () => {
    const bundle = await signedCopy();
    const [name] = Object.keys(manifestOf(bundle).files);
    const weights = readFileSync(join(bundle, name!));
    weights[0] ^= 0x40;
    writeFileSync(join(bundle, name!), weights);
    const out = await serEdge('model', 'verify', bundle, '--pub', keys.publicFile);
    assert.equal(out.code, 1);
    assert.match(out.stderr, new RegExp(`: file_mismatch: model bundle .*: file ${name!.replace('.', '\\.')} fails its sha256 check`));
  });

  test('a public key that cannot be read or is not one is named: exit 1', async () => {
    const missing = await serEdge('model', 'verify', await signedCopy(), '--pub', join(dir, 'nowhere.pub'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read trusted model key .*nowhere\.pub \(ENOENT\)/);
    const notKey = join(dir, 'not-a-key.pub');
    writeFileSync(notKey, 'hello\n');
    const bad = await serEdge('model', 'verify', await signedCopy(), '--pub', notKey);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not-a-key\.pub is not a PEM public key/);
  });

  test('sign refuses a bundle whose files do not match the manifest, and writes no signature', async () => {
    const bundle = bundleCopy();
    const [name] = Object.keys(manifestOf(bundle).files);
    writeFileSync(join(bundle, name!), Buffer.concat([readFileSync(join(bundle, name!)), Buffer.from([0])]));
    const out = await serEdge('model', 'sign', bundle, '--key', keys.privateFile);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /^ser-edge model sign: model bundle .*: file .* is \d+ bytes, the manifest says \d+ \(file_mismatch\); not signed: a bundle that cannot load is never signed\n$/);
    assert.equal(existsSync(join(bundle, SIGNATURE_FILE)), false);
  });

  test('sign refuses a bundle that fails its self-test, and one whose manifest is invalid', async () => {
    const failing = bundleCopy();
    const manifest = manifestOf(failing);
    manifest.selfTest[0]!.expected = manifest.selfTest[0]!.expected.map((p) => 1 - p);
    writeFileSync(join(failing, MANIFEST_FILE), JSON.stringify(manifest));
    const selfTest = await serEdge('model', 'sign', failing, '--key', keys.privateFile);
    assert.equal(selfTest.code, 1);
    assert.match(selfTest.stderr, /fails its self-test: max error .* \(self_test_failed\); not signed/);
    assert.equal(existsSync(join(failing, SIGNATURE_FILE)), false);

    const invalid = bundleCopy();
    writeFileSync(join(invalid, MANIFEST_FILE), JSON.stringify({ ...manifestOf(invalid), labels: 'angry' }));
    const schema = await serEdge('model', 'sign', invalid, '--key', keys.privateFile);
    assert.equal(schema.code, 1);
    assert.match(schema.stderr, /manifest\.json key "labels": .* \(invalid_manifest\); not signed/);
    const notBundle = await serEdge('model', 'sign', join(dir, 'keys'), '--key', keys.privateFile);
    assert.match(notBundle.stderr, /no manifest\.json here: is this a model bundle directory\? \(invalid_manifest\)/);
  });

  test('sign refuses a private key that others can read, as ssh does', async () => {
    const exposed = join(dir, 'exposed.key');
    cpSync(keys.privateFile, exposed);
    chmodSync(exposed, 0o644);
    const bundle = bundleCopy();
    const out = await serEdge('model', 'sign', bundle, '--key', exposed);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /private key .*exposed\.key is readable by others \(mode 644\): chmod 600/);
    assert.equal(existsSync(join(bundle, SIGNATURE_FILE)), false);
  });

  test('signing again replaces the signature and says whose it replaced', async () => {
    const bundle = await signedCopy();
    await serEdge('model', 'keygen', '--out', join(dir, 'second'));
    const out = await serEdge('model', 'sign', bundle, '--key', join(dir, 'second', 'model-signing.key'));
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`\\(it replaces the one by key ${keys.keyId}\\)`));
    assert.equal((await serEdge('model', 'verify', bundle, '--pub', keys.publicFile)).code, 1, 'the first key no longer verifies it');
  });
});

describe('model pack', () => {
  test('packs a signed bundle into one tar and prints its size and sha256, as an install by url needs them', async () => {
    const bundle = await signedCopy();
    const file = join(dir, 'signed.tar');
    const out = await serEdge('model', 'pack', bundle, '--out', file);
    assert.equal(out.code, 0, out.stderr);
    const packed = readFileSync(file);
    assert.match(out.stdout, new RegExp(`^packed synthetic 0\\.0\\.1 \\(signed by key ${keys.keyId}\\) into ${file.replaceAll('/', '\\/')}\\n`));
    assert.match(out.stdout, new RegExp(`^bytes  ${packed.length}$`, 'm'));
    assert.match(out.stdout, new RegExp(`^sha256 ${createHash('sha256').update(packed).digest('hex')}$`, 'm'));
    assert.match(out.stdout, /within the default update\.maxInlineBytes .*: it can travel inline/);
    const files = await unpackBundle(packed);
    assert.deepEqual([...files.keys()].sort(), [MANIFEST_FILE, SIGNATURE_FILE, ...Object.keys(manifestOf(bundle).files)].sort());
    assert.deepEqual(files.get(SIGNATURE_FILE), readFileSync(join(bundle, SIGNATURE_FILE)));
  });

  test('packing the same bundle twice gives the same bytes, so its sha256 can be published once', async () => {
    const bundle = await signedCopy();
    await serEdge('model', 'pack', bundle, '--out', join(dir, 'once.tar'));
    await new Promise((r) => setTimeout(r, 1100));
    await serEdge('model', 'pack', bundle, '--out', join(dir, 'twice.tar'));
    assert.deepEqual(readFileSync(join(dir, 'once.tar')), readFileSync(join(dir, 'twice.tar')));
  });

  test('refuses an unsigned bundle (exit 1, no file) unless --allow-unsigned says so', async () => {
    const bundle = bundleCopy();
    const file = join(dir, 'unsigned.tar');
    const refused = await serEdge('model', 'pack', bundle, '--out', file);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is unsigned \(no signature\.json\): a gateway refuses to install it\. Sign it first \(`ser-edge model sign .* --key model-signing\.key`\), or pass --allow-unsigned/);
    assert.equal(existsSync(file), false);
    const allowed = await serEdge('model', 'pack', bundle, '--out', file, '--allow-unsigned');
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /\(UNSIGNED\)/);
    assert.equal((await unpackBundle(readFileSync(file))).has(SIGNATURE_FILE), false);
  });

  test('refuses a bundle that does not load, and a signature.json that is not a signature', async () => {
    const broken = await signedCopy();
    const [name] = Object.keys(manifestOf(broken).files);
    writeFileSync(join(broken, name!), 'zeroed');
    const out = await serEdge('model', 'pack', broken, '--out', join(dir, 'broken.tar'));
    assert.equal(out.code, 1);
    assert.match(out.stderr, /\(file_mismatch\); not packed/);
    const garbled = await signedCopy();
    await writeFile(join(garbled, SIGNATURE_FILE), '{"schema":1}');
    const bad = await serEdge('model', 'pack', garbled, '--out', join(dir, 'garbled.tar'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /signature\.json is not a bundle signature; sign the bundle again/);
    assert.equal(existsSync(join(dir, 'broken.tar')) || existsSync(join(dir, 'garbled.tar')), false);
  });
});

describe('the model command line', () => {
  test('a missing option, argument or subcommand exits 2 with commander\'s message', async () => {
    for (const args of [['model', 'sign', 'x'], ['model', 'verify', 'x'], ['model', 'pack', 'x'], ['model', 'keygen'], ['model', 'sign', '--key', 'k'], ['model', 'no-such-thing'], ['model']]) {
      const out = await serEdge(...args);
      assert.equal(out.code, 2, `ser-edge ${args.join(' ')}: ${out.stderr}`);
    }
  });

  test('--help of each model subcommand loads no package but commander', async () => {
    const hooks = await onlyCommanderHook(dir);
    for (const sub of ['keygen', 'sign', 'verify', 'pack']) {
      const { stdout } = await execute(process.execPath, ['--import', hooks, cli, 'model', sub, '--help']);
      assert.match(stdout, new RegExp(`^Usage: ser-edge model ${sub} `));
    }
    // The hook is live: a subcommand that runs loads what it needs, and fails under it.
    await assert.rejects(execute(process.execPath, ['--import', hooks, cli, 'model', 'verify', dir, '--pub', keys.publicFile]), /--help loaded/);
  });
});
