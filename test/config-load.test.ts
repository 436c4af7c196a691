import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_SCHEMA_FILE, configJsonSchemaText, daemonConfigJsonSchema } from '../src/config/daemon-config.js';
import { ConfigError, loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { firmwareConfigDir, packageRoot } from '../src/config/package-paths.js';
import { tempDir } from './helpers/audio-fixtures.js';

const dir = tempDir('ser-edge-config-');
let n = 0;
function siteFile(values: unknown, name = `site-${n++}.json`): string {
  const path = join(dir, name);
  writeFileSync(path, typeof values === 'string' ? values : JSON.stringify(values));
  return path;
}

function loadError(file: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    loadDaemonConfig({ file, env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('the config was accepted');
}

test('a site file extends a firmware profile: the profile supplies device settings, the site file overrides them', () => {
  const file = siteFile({ extends: 'raspberry-pi-4', site: 'lyon-2', gateway: 'row-a', telemetry: { intervalSeconds: 10 } });
  const { config, layers } = loadDaemonConfig({ file, env: {} });
  assert.equal(config.profile, 'raspberry-pi-4');
  assert.deepEqual(config.model.backends, ['wasm', 'cpu']);
  assert.equal(config.telemetry.intervalSeconds, 10);
  assert.equal(config.site, 'lyon-2');
  assert.equal(config.sources[0]?.type, 'microphone', 'the profile names the headset device');
  assert.deepEqual(layers, [join(firmwareConfigDir(), 'raspberry-pi-4.json'), file]);
});

test('every shipped firmware profile is a valid config', () => {
  for (const profile of ['raspberry-pi-4', 'raspberry-pi-5', 'jetson-nano', 'jetson-orin', 'generic-linux']) {
    const { config } = loadDaemonConfig({ file: siteFile({ extends: profile }), env: {} });
    assert.equal(config.profile, profile);
  }
});

test('environment variables override the files', () => {
  const file = siteFile({ extends: 'generic-linux', site: 'from-file', mqtt: { url: 'mqtt://file:1883' } });
  const { config } = loadDaemonConfig({
    file,
    env: { SER_EDGE_SITE: 'from-env', SER_EDGE_GATEWAY: 'gw-9', SER_EDGE_MQTT_URL: 'mqtt://env:1883', SER_EDGE_LOG_LEVEL: 'debug', SER_EDGE_TELEMETRY_INTERVAL: '5' },
  });
  assert.equal(config.site, 'from-env');
  assert.equal(config.gateway, 'gw-9');
  assert.equal(config.mqtt.url, 'mqtt://env:1883');
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.telemetry.intervalSeconds, 5);
});

test('a misspelt key is one error naming the key and the file that has it', () => {
  const file = siteFile({ extends: 'generic-linux', telemetry: { intervalSecs: 5 } });
  const error = loadError(file);
  assert.equal(error.message.split('\n').length, 1);
  assert.match(error.message, /telemetry\.intervalSecs/);
  assert.ok(error.message.includes(file));
  assert.match(error.message, /unknown key/);
});

test('a value of the wrong type names the key, the file and the expected type', () => {
  const file = siteFile({ sources: [{ type: 'file', path: 'a.wav', realtime: 'yes', channels: [{ id: 'desk-1' }] }] });
  const error = loadError(file);
  assert.match(error.message, /sources\[0\]\.realtime/);
  assert.ok(error.message.includes(file));
  assert.match(error.message, /expected boolean/);
});

test('a bad value from the environment names the variable', () => {
  const error = loadError(siteFile({}), { SER_EDGE_TELEMETRY_INTERVAL: 'often' });
  assert.match(error.message, /environment variable SER_EDGE_TELEMETRY_INTERVAL: telemetry\.intervalSeconds/);
});

test('a problem inherited from a profile is reported against the profile file', () => {
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles, { recursive: true });
  writeFileSync(join(profiles, 'broken.json'), JSON.stringify({ audio: { blockMs: 5 } }));
  try {
    loadDaemonConfig({ file: siteFile({ extends: 'broken' }), env: {}, profileDir: profiles });
    assert.fail('accepted');
  } catch (error) {
    assert.match((error as Error).message, /broken\.json: audio\.blockMs/);
  }
});

test('an unknown profile name says where profiles are looked up', () => {
  const error = loadError(siteFile({ extends: 'raspberry-pi-9' }));
  assert.match(error.message, /no profile "raspberry-pi-9"/);
  assert.ok(error.message.includes(firmwareConfigDir()));
});

test('a file that is not JSON is one error naming the file', () => {
  const file = siteFile('{ "site": "a", }');
  assert.match(loadError(file).message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
});

test('a missing config file is one error naming it', () => {
  assert.match(loadError(join(dir, 'nope.json')).message, /nope\.json: cannot read the config file \(ENOENT\)/);
});

test('relative paths are resolved against the file that sets them', () => {
  const file = siteFile({ model: { dir: 'models/mine' }, sources: [{ type: 'file', path: 'calls/a.wav', channels: [{ id: 'c1' }] }] });
  const { config } = loadDaemonConfig({ file, env: {} });
  assert.equal(config.model.dir, join(dir, 'models/mine'));
  assert.equal(config.sources[0]?.type === 'file' && config.sources[0].path, join(dir, 'calls/a.wav'));
});

test('without a config file the built-in default runs one demo channel on an embedded broker', () => {
  const { config } = loadDaemonConfig({ env: {} });
  assert.equal(config.profile, 'generic-linux');
  assert.equal(config.mqtt.url, undefined, 'no url means the embedded broker');
  assert.equal(config.printFlags, true);
  assert.deepEqual(config.sources.map((s) => s.type), ['demo']);
});

test('a channel id that would break the topic scheme is refused', () => {
  const error = loadError(siteFile({ sources: [{ type: 'demo', channels: [{ id: 'desk/1' }] }] }));
  assert.match(error.message, /sources\[0\]\.channels\[0\]\.id/);
});

test('a channel id used twice is one error naming the second key, the first one and the file, when the config is loaded', () => {
  const file = siteFile({
    sources: [
      { type: 'microphone', device: 'plughw:CARD=Headset,DEV=0', channelCount: 2, channels: [{ id: 'desk-1' }, { id: 'desk-2', index: 1 }] },
      { type: 'file', path: 'a.wav', channels: [{ id: 'desk-2' }] },
    ],
  });
  const error = loadError(file);
  assert.equal(error.message.split('\n').length, 1);
  assert.ok(error.message.includes(`${file}: sources[1].channels[0].id: channel id "desk-2" is already used by sources[0].channels[1]`), error.message);
});

test('a channel id repeated in a profile is reported against the profile', () => {
  const profiles = join(dir, 'profiles-dup');
  mkdirSync(profiles, { recursive: true });
  writeFileSync(join(profiles, 'two.json'), JSON.stringify({ sources: [{ type: 'microphone', device: 'plughw:CARD=Headset,DEV=0', channelCount: 2, channels: [{ id: 'hs' }, { id: 'hs', index: 1 }] }] }));
  try {
    loadDaemonConfig({ file: siteFile({ extends: 'two' }), env: {}, profileDir: profiles });
    assert.fail('accepted');
  } catch (error) {
    assert.match((error as Error).message, /two\.json: sources\[0\]\.channels\[1\]\.id: channel id "hs" is already used/);
  }
});

test('requireTls with tls.rejectUnauthorized false is a config error naming the key and the file, unless tls.allowUntrusted says so', () => {
  const untrusted = { requireTls: true, url: 'mqtts://broker:8883', tls: { rejectUnauthorized: false } };
  const file = siteFile({ mqtt: untrusted });
  const error = loadError(file);
  assert.ok(error.message.includes(`${file}: mqtt.tls.rejectUnauthorized: false with mqtt.requireTls`), error.message);
  assert.match(error.message, /mqtt\.tls\.allowUntrusted: true/);
  const { config } = loadDaemonConfig({ file: siteFile({ mqtt: { ...untrusted, tls: { rejectUnauthorized: false, allowUntrusted: true } } }), env: {} });
  assert.equal(config.mqtt.tls?.allowUntrusted, true);
  // Without requireTls an unverified broker stays a development setting (warned about at start).
  assert.equal(loadDaemonConfig({ file: siteFile({ mqtt: { url: 'mqtts://broker:8883', tls: { rejectUnauthorized: false } } }), env: {} }).config.mqtt.tls?.rejectUnauthorized, false);
});

test('commands default to reply topics under the operators\' prefix and rate limits a PBX never reaches, and each can be set', () => {
  const defaults = loadDaemonConfig({ file: siteFile({}), env: {} }).config.commands;
  assert.deepEqual(defaults, { enabled: true, replyTopics: ['ser/v1/{site}/ops/replies/#'], call: { ratePerMinute: 6, burst: 6 }, other: { ratePerMinute: 60, burst: 20 } });
  const set = loadDaemonConfig({ file: siteFile({ commands: { replyTopics: ['noc/{gateway}/#'], call: { ratePerMinute: 20 } } }), env: {} }).config.commands;
  assert.deepEqual(set.replyTopics, ['noc/{gateway}/#']);
  assert.deepEqual(set.call, { ratePerMinute: 20, burst: 6 });
});

test('a reply topic filter that is not one is named with its key', () => {
  const file = siteFile({ commands: { replyTopics: ['ser/v1/{site}/ops/#/x'] } });
  const error = loadError(file);
  assert.ok(error.message.includes(`${file}: commands.replyTopics[0]: not a reply topic filter:`), error.message);
  assert.match(loadError(siteFile({ commands: { call: { burst: 0 } } })).message, /commands\.call\.burst/);
});

test('the config schema exports as JSON Schema that refuses unknown keys', () => {
  const schema = daemonConfigJsonSchema() as { properties: Record<string, unknown>; additionalProperties: unknown };
  assert.equal(schema.additionalProperties, false);
  for (const key of ['mqtt', 'sources', 'telemetry', 'calls', 'outbox']) assert.ok(key in schema.properties, key);
});

test('the committed schemas/config.schema.json is what the zod schema generates', () => {
  const committed = readFileSync(join(packageRoot(), 'schemas', CONFIG_SCHEMA_FILE), 'utf8');
  assert.equal(committed, configJsonSchemaText(), 'stale: run node dist/scripts/export-schemas.js');
});
