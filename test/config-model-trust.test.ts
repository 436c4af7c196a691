import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { defaultModelDir } from '../src/config/package-paths.js';
import { linkSettings } from '../src/daemon/link-settings.js';
import { commandBytesFor, MAX_COMMAND_BYTES } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';

const dir = tempDir('ser-edge-config-trust-');
let n = 0;
function siteFile(values: unknown, at = dir): string {
  const path = join(at, `site-${n++}.json`);
  writeFileSync(path, JSON.stringify(values));
  return path;
}
const load = (values: unknown, env: NodeJS.ProcessEnv = {}) => loadDaemonConfig({ file: siteFile(values), env }).config;

function loadError(values: unknown): string {
  try {
    loadDaemonConfig({ file: siteFile(values), env: {} });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('the config was accepted');
}

test('model.trustedKeys are resolved against the config file that lists them, like every other path', () => {
  const etc = join(dir, 'etc');
  mkdirSync(etc, { recursive: true });
  const config = loadDaemonConfig({ file: siteFile({ model: { trustedKeys: ['keys/ops.pub', '/srv/keys/release.pub'] } }, etc), env: {} }).config;
  assert.deepEqual(config.model.trustedKeys, [join(etc, 'keys/ops.pub'), '/srv/keys/release.pub']);
  assert.deepEqual(load({}).model.trustedKeys, [], 'none by default');
});

test('a trusted key listed twice, or an empty path, is a config error naming the key', () => {
  assert.match(loadError({ model: { trustedKeys: ['/k/a.pub', '/k/a.pub'] } }), /model\.trustedKeys\[1\]: \/k\/a\.pub is listed twice; list each public key once/);
  assert.match(loadError({ model: { trustedKeys: [''] } }), /model\.trustedKeys\[0\]: /);
  assert.match(loadError({ model: { trustedKeys: '/k/a.pub' } }), /model\.trustedKeys: .*array/i);
});

test('model.allowUnsigned defaults to true for the shipped models/default only, and is false for any other bundle', () => {
  assert.equal(load({}).model.allowUnsigned, true, 'no model.dir: the shipped bundle');
  assert.equal(load({ model: { dir: defaultModelDir() } }).model.allowUnsigned, true, 'the shipped bundle named');
  const link = join(dir, 'shipped-link');
  symlinkSync(defaultModelDir(), link);
  assert.equal(load({ model: { dir: link } }).model.allowUnsigned, true, 'the shipped bundle through a symlink');
  assert.equal(load({ model: { dir: join(dir, 'my-model') } }).model.allowUnsigned, false, 'a bundle of ours');
  assert.equal(load({}, { SER_EDGE_MODEL_DIR: join(dir, 'my-model') }).model.allowUnsigned, false, 'a bundle from the environment');
  assert.equal(load({ model: { dir: join(dir, 'my-model'), allowUnsigned: true } }).model.allowUnsigned, true, 'said so');
  assert.equal(load({ model: { allowUnsigned: false } }).model.allowUnsigned, false, 'even the shipped bundle, when the config says so');
  assert.match(loadError({ model: { allowUnsigned: 'yes' } }), /model\.allowUnsigned: .*boolean/i);
});

test('the update section has its defaults: 8 MiB inline, 64 MiB by url, 60 s downloads, a 60-minute shadow trial, 3 failed starts in 300 s, confirmed after 120 s', () => {
  assert.deepEqual(load({}).update, {
    maxInlineBytes: 8 * 1024 * 1024,
    maxBundleBytes: 64 * 1024 * 1024,
    downloadTimeoutSeconds: 60,
    shadowMinutes: 60,
    startAttempts: 3,
    startWindowSeconds: 300,
    confirmAfterSeconds: 120,
  });
});

test('update.caFile is resolved against the config file, and every update key can be set', () => {
  const config = load({
    update: { maxInlineBytes: 1024, maxBundleBytes: 2048, downloadTimeoutSeconds: 5, caFile: 'pki/downloads-ca.pem', shadowMinutes: 0.5, startAttempts: 1, startWindowSeconds: 30, confirmAfterSeconds: 10 },
  });
  assert.equal(config.update.caFile, join(dir, 'pki/downloads-ca.pem'));
  assert.equal(config.update.maxInlineBytes, 1024);
  assert.equal(config.update.shadowMinutes, 0.5);
});

test('a bad update value is a config error naming the key and what it accepts', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ maxInlineBytes: 128 * 1024 * 1024 }, /update\.maxInlineBytes: at most 64 MiB \(67108864\): install a larger bundle by url/],
    [{ maxInlineBytes: 1.5 }, /update\.maxInlineBytes: .*int/i],
    [{ maxBundleBytes: 2 * 1024 * 1024 * 1024 }, /update\.maxBundleBytes: at most 1 GiB/],
    [{ downloadTimeoutSeconds: 0 }, /update\.downloadTimeoutSeconds: /],
    [{ shadowMinutes: 20_000 }, /update\.shadowMinutes: at most a week \(10080 minutes\)/],
    [{ startAttempts: 0 }, /update\.startAttempts: /],
    [{ startWindowSeconds: -1 }, /update\.startWindowSeconds: /],
    [{ confirmAfterSeconds: 'soon' }, /update\.confirmAfterSeconds: .*number/i],
    [{ caFile: '' }, /update\.caFile: /],
    [{ maxInlineByte: 1 }, /update\.maxInlineByte: unknown key/],
  ];
  for (const [update, message] of cases) assert.match(loadError({ update }), message, JSON.stringify(update));
});

test("the MQTT link's command size limit follows update.maxInlineBytes: that much bundle as base64, with room for the rest", () => {
  assert.equal(linkSettings(load({}), 'mqtt://127.0.0.1:1883').maxCommandBytes, MAX_COMMAND_BYTES, 'the default is the contract default');
  const small = linkSettings(load({ update: { maxInlineBytes: 30_000 } }), 'mqtt://127.0.0.1:1883');
  assert.equal(small.maxCommandBytes, commandBytesFor(30_000));
  assert.equal(commandBytesFor(30_000), 40_000 + 64 * 1024);
});
