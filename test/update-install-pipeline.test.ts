import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { classifierFromBundle } from '../src/model/load-classifier.js';
import type { ModelInstallCommand } from '../src/mqtt/payload-schemas.js';
import { loadTrustedKeys, type TrustedKey } from '../src/update/bundle-signature.js';
import { InstallError } from '../src/update/install-error.js';
import { prepareInstall, type BundleRef, type InstallPipelineDependencies } from '../src/update/install-pipeline.js';
import { ModelStore } from '../src/update/model-store.js';
import { generateSigningKeys } from '../src/update/signing-keys.js';
import { startModel } from '../src/update/start-model.js';
import { loadClassifier } from '../src/model/load-classifier.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { generateTestCertificates, OPENSSL_MISSING, type TestCertificates } from './helpers/mosquitto.js';
import { writeSyntheticModel } from './helpers/daemon-process.js';
import { bundleVariant, packBundle, packWithExtraEntry, tamperWeights } from './helpers/model-updates.js';

/**
 * The install pipeline on its own: every step's refusal has its own reason, and leaves
 * nothing in the store. (test/daemon-model-updates.test.ts runs the same through a real
 * broker and a running daemon.)
 */

const dir = tempDir('ser-edge-install-');
let base: string;
let keys: { privateFile: string; publicFile: string };
let strangerKeys: { privateFile: string };
let trusted: TrustedKey[];
const active: BundleRef = { name: 'synthetic', version: '1.0.0', sha256: 'f'.repeat(64) };
let n = 0;

before(async () => {
  base = await writeSyntheticModel(join(dir, 'base'));
  keys = await generateSigningKeys(join(dir, 'keys'));
  strangerKeys = await generateSigningKeys(join(dir, 'stranger'));
  trusted = await loadTrustedKeys([keys.publicFile]);
});

function pipeline(store: ModelStore, overrides: Partial<InstallPipelineDependencies> = {}): InstallPipelineDependencies {
  return {
    store,
    trustedKeys: trusted,
    limits: { maxInlineBytes: 8 * 1024 * 1024, maxBundleBytes: 64 * 1024 * 1024, downloadTimeoutMs: 2000 },
    buildClassifier: async (bundle) => classifierFromBundle(bundle),
    canAdopt: () => null,
    ...overrides,
  };
}

const newStore = () => new ModelStore({ dir: join(dir, `store-${++n}`) });
const variant = (options: Parameters<typeof bundleVariant>[2]) => bundleVariant(base, join(dir, `variant-${++n}`), options);
const inline = (packed: Buffer, extra: Partial<ModelInstallCommand> = {}): ModelInstallCommand => ({ schema: 1, bundle: { inline: packed.toString('base64') }, ...extra });

async function refusedWith(reason: string, command: ModelInstallCommand, overrides: Partial<InstallPipelineDependencies> = {}, message?: RegExp): Promise<void> {
  const store = newStore();
  await store.open();
  await assert.rejects(prepareInstall(command, active, pipeline(store, overrides)), (error: unknown) => {
    assert.ok(error instanceof InstallError, String(error));
    assert.equal(error.reason, reason, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
  assert.deepEqual(readdirSync(join(store.dir, 'bundles')), [], 'nothing is left in the store');
}

describe('install pipeline', () => {
  test('a signed, newer bundle is written to the store, loaded from there and self-tested', async () => {
    const store = newStore();
    await store.open();
    const packed = await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }));
    const prepared = await prepareInstall(inline(packed), active, pipeline(store));
    assert.deepEqual({ name: prepared.ref.name, version: prepared.ref.version }, { name: 'synthetic', version: '1.1.0' });
    assert.ok(existsSync(join(store.pathOf({ dir: prepared.storeDir }), 'signature.json')));
    assert.equal(prepared.classifier.manifest.version, '1.1.0');
    prepared.classifier.dispose();
  });

  test('unsigned, unknown key and a signature that no longer matches are refused by name', async () => {
    await refusedWith('unsigned', inline(await packBundle(await variant({ version: '1.1.0' }))));
    await refusedWith('unknown_key', inline(await packBundle(await variant({ version: '1.1.0', key: strangerKeys.privateFile }))));
    const tampered = await variant({ version: '1.1.0', key: keys.privateFile });
    tamperWeights(tampered);
    await refusedWith('bad_signature', inline(await packBundle(tampered)));
  });

  test('weights changed after signing, with the manifest left alone, fail as file_mismatch', async () => {
    const signed = await variant({ version: '1.1.0', key: keys.privateFile });
    const [weights] = Object.keys(JSON.parse(readFileSync(join(signed, 'manifest.json'), 'utf8')).files);
    const data = readFileSync(join(signed, weights!));
    data[0]! ^= 0xff;
    writeFileSync(join(signed, weights!), data);
    await refusedWith('file_mismatch', inline(await packBundle(signed)), {}, /sha256/);
  });

  test('a truncated pack, a path that climbs out and a symbolic link are refused before anything is written', async () => {
    const signed = await variant({ version: '1.1.0', key: keys.privateFile });
    const packed = await packBundle(signed);
    await refusedWith('bad_archive', inline(packed.subarray(0, Math.floor(packed.length * 0.6))));
    await refusedWith('unsafe_archive', inline(await packWithExtraEntry(signed, { header: { name: '../../etc/cron.d/evil', size: 4 }, data: Buffer.from('evil') })), {}, /climbs out/);
    await refusedWith('unsafe_archive', inline(await packWithExtraEntry(signed, { header: { name: 'evil', type: 'symlink', linkname: '/etc/shadow' } })), {}, /symbolic link/);
  });

  test('an inline bundle over update.maxInlineBytes is refused as too_large without being decoded', async () => {
    const packed = await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }));
    await refusedWith('too_large', inline(packed), { limits: { maxInlineBytes: 1024, maxBundleBytes: 1 << 26, downloadTimeoutMs: 1000 } }, /over update\.maxInlineBytes \(1024\)/);
  });

  test('a signed manifest the schema refuses, a feature config the model does not fit and a failing self-test each have their reason', async () => {
    await refusedWith('invalid_manifest', inline(await packWithExtraEntry(await variant({ version: '1.1.0', key: keys.privateFile, signWithoutChecks: true, edit: (m) => (m.labels = ['angry']) }))));
    await refusedWith('incompatible_features', inline(await packBundle(await variant({ version: '1.1.0', key: keys.privateFile, edit: (m) => (m.features.mfccCount = 20) }))), {}, /does not fit the feature configuration/);
    await refusedWith('incompatible_features', inline(await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }))), { canAdopt: () => 'the audio runs at 16000 Hz' }, /16000 Hz/);
    const wrongExpectations = (m: Record<string, any>) => {
      for (const v of m.selfTest) v.expected = v.expected.map(() => 1 / v.expected.length);
    };
    await refusedWith('self_test_failed', inline(await packBundle(await variant({ version: '1.1.0', key: keys.privateFile, edit: wrongExpectations }))));
  });

  test('an older or equal version is refused as not_newer unless forced, and the active bundle itself as already_active', async () => {
    const older = await packBundle(await variant({ version: '0.9.0', key: keys.privateFile }));
    await refusedWith('not_newer', inline(older), {}, /force/);
    const store = newStore();
    await store.open();
    const forced = await prepareInstall(inline(older, { force: true }), active, pipeline(store));
    forced.classifier.dispose();
    const store2 = newStore();
    await store2.open();
    const same = await prepareInstall(inline(older, { force: true }), forced.ref, pipeline(store2)).catch((e: unknown) => e);
    assert.ok(same instanceof InstallError && same.reason === 'already_active', String(same));
  });
});

describe('downloads', () => {
  let server: Server;
  let baseUrl: string;
  let packed: Buffer;
  const routes = new Map<string, (res: import('node:http').ServerResponse) => void>();
  before(async () => {
    packed = await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }));
    server = createServer((req, res) => (routes.get(req.url ?? '') ?? ((r) => r.writeHead(404).end()))(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    routes.set('/good.tar', (res) => res.writeHead(200, { 'content-length': packed.length }).end(packed));
    routes.set('/more.tar', (res) => {
      res.writeHead(200);
      res.write(packed);
      res.end(Buffer.alloc(4096));
    });
    routes.set('/slow.tar', (res) => res.writeHead(200)); // sends headers, then nothing
  });
  after(() => server.closeAllConnections());
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const byUrl = (path: string, sha256 = createHash('sha256').update(packed).digest('hex'), bytes = packed.length): ModelInstallCommand => ({ schema: 1, bundle: { url: `${baseUrl}${path}`, bytes, sha256 } });

  test('a bundle by url with the right size and sha256 installs', async () => {
    const store = newStore();
    await store.open();
    const prepared = await prepareInstall(byUrl('/good.tar'), active, pipeline(store));
    prepared.classifier.dispose();
  });

  test('a wrong sha256, a wrong size, a server that sends too much, one that stalls and a missing file each have their reason', async () => {
    await refusedWith('sha256_mismatch', byUrl('/good.tar', 'a'.repeat(64)));
    await refusedWith('size_mismatch', byUrl('/good.tar', undefined, packed.length - 1));
    await refusedWith('size_mismatch', byUrl('/more.tar'), {}, /more than/);
    await refusedWith('download_timeout', byUrl('/slow.tar'), { limits: { maxInlineBytes: 1 << 23, maxBundleBytes: 1 << 26, downloadTimeoutMs: 500 } });
    await refusedWith('download_failed', byUrl('/missing.tar'), {}, /HTTP 404/);
    await refusedWith('too_large', byUrl('/good.tar'), { limits: { maxInlineBytes: 1 << 23, maxBundleBytes: 1000, downloadTimeoutMs: 2000 } }, /maxBundleBytes/);
  });
});

describe('downloads over https', { skip: OPENSSL_MISSING }, () => {
  let server: import('node:https').Server;
  let url: string;
  let packed: Buffer;
  let certs: TestCertificates;
  before(async () => {
    packed = await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }));
    certs = generateTestCertificates();
    server = createHttpsServer({ cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) }, (_req, res) => res.writeHead(200).end(packed));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/bundle.tar`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const command = (): ModelInstallCommand => ({ schema: 1, bundle: { url, bytes: packed.length, sha256: createHash('sha256').update(packed).digest('hex') } });

  test('a server whose certificate the configured CA (update.caFile) signed is trusted', async () => {
    const store = newStore();
    await store.open();
    const prepared = await prepareInstall(command(), active, pipeline(store, { limits: { maxInlineBytes: 1 << 23, maxBundleBytes: 1 << 26, downloadTimeoutMs: 5000, ca: readFileSync(certs.caFile) } }));
    prepared.classifier.dispose();
  });

  test('without that CA the same server is refused as download_failed, naming the certificate problem', async () => {
    await refusedWith('download_failed', command(), {}, /certificate/i);
  });
});

describe('start-up and the model store', () => {
  const logger = pino({ level: 'silent' });

  test('a store bundle that did not come up startAttempts times within the window is rolled back to the previous one at start', async () => {
    const store = newStore();
    await store.open();
    const prepared = await prepareInstall(inline(await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }))), active, pipeline(store));
    prepared.classifier.dispose();
    const now = Date.now();
    await store.commit({
      ...store.state,
      active: { ...prepared.ref, dir: prepared.storeDir, source: 'store', activatedAt: new Date(now).toISOString() },
      previous: { ...active, dir: base, source: 'config' },
      unconfirmedStarts: [1, 2, 3].map((s) => new Date(now - s * 1000).toISOString()),
    });
    const started = await startModel({ store, configDir: base, startAttempts: 3, startWindowSeconds: 300, load: (d) => loadClassifier(d), logger });
    assert.equal(started.active.source, 'config');
    assert.equal(store.state.lastRollback?.cause, 'failed_start');
    assert.equal(store.state.lastInstall?.reason, 'failed_start');
    assert.equal(store.state.previous?.version, '1.1.0');
    started.classifier.dispose();
  });

  test('fewer unconfirmed starts than startAttempts start the new model again and count this start', async () => {
    const store = newStore();
    await store.open();
    const prepared = await prepareInstall(inline(await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }))), active, pipeline(store));
    prepared.classifier.dispose();
    await store.commit({ ...store.state, active: { ...prepared.ref, dir: prepared.storeDir, source: 'store', activatedAt: new Date().toISOString() }, previous: { ...active, dir: base, source: 'config' }, unconfirmedStarts: [new Date().toISOString()] });
    const started = await startModel({ store, configDir: base, startAttempts: 3, startWindowSeconds: 300, load: (d) => loadClassifier(d), logger });
    assert.equal(started.active.version, '1.1.0');
    assert.equal(store.state.unconfirmedStarts.length, 2);
    started.classifier.dispose();
  });

  test('opening the store removes what an install cut short left behind, and a commit removes bundles nothing refers to', async () => {
    const store = newStore();
    await store.open();
    const prepared = await prepareInstall(inline(await packBundle(await variant({ version: '1.1.0', key: keys.privateFile }))), active, pipeline(store));
    prepared.classifier.dispose();
    mkdirSync(join(store.dir, 'bundles', '.incoming-deadbeef'));
    writeFileSync(join(store.dir, 'bundles', '.incoming-deadbeef', 'half.bin'), 'x');
    const reopened = new ModelStore({ dir: store.dir });
    await reopened.open();
    assert.deepEqual(readdirSync(join(store.dir, 'bundles')).sort(), [prepared.storeDir.split('/').pop()!]);
    await reopened.commit({ ...reopened.state, active: null });
    assert.deepEqual(readdirSync(join(store.dir, 'bundles')), [], 'the bundle no state names is gone');
  });
});
