import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../src/config/package-paths.js';
import { backoffDelay, redactUrl } from '../src/mqtt/mqtt-link.js';
import { CallCommand, EXPORTED_SCHEMAS, ModelInstallCommand, UrgencyEvent, jsonSchemaText } from '../src/mqtt/payload-schemas.js';
import { commandNameOf, gatewayTopics } from '../src/mqtt/topics.js';
import { sampleEvent } from './helpers/mosquitto.js';

describe('MQTT topics', () => {
  test('every topic of a gateway lives under ser/v1/{site}/{gateway}', () => {
    const t = gatewayTopics('lisbon', 'gw-7');
    assert.equal(t.base, 'ser/v1/lisbon/gw-7');
    assert.equal(t.status, 'ser/v1/lisbon/gw-7/status');
    assert.equal(t.telemetry, 'ser/v1/lisbon/gw-7/telemetry');
    assert.equal(t.model, 'ser/v1/lisbon/gw-7/model');
    assert.equal(t.urgency('hs1'), 'ser/v1/lisbon/gw-7/channel/hs1/urgency');
    assert.equal(t.state('hs1'), 'ser/v1/lisbon/gw-7/channel/hs1/state');
    assert.equal(t.command('model.install'), 'ser/v1/lisbon/gw-7/cmd/model.install');
    assert.equal(t.commandFilter, 'ser/v1/lisbon/gw-7/cmd/+');
    assert.equal(t.reply('ping'), 'ser/v1/lisbon/gw-7/cmd/ping/reply');
  });

  test('a site, gateway or channel id with a wildcard, a slash or nothing in it is refused with the field named', () => {
    assert.throws(() => gatewayTopics('', 'gw'), /site id is empty/);
    assert.throws(() => gatewayTopics('a/b', 'gw'), /site id "a\/b" is not topic-safe/);
    assert.throws(() => gatewayTopics('site', 'gw+'), /gateway id "gw\+" is not topic-safe/);
    assert.throws(() => gatewayTopics('site', 'gw').urgency('#'), /channel id "#" is not topic-safe/);
    assert.throws(() => gatewayTopics('$SYS', 'gw'), /site id/);
  });

  test('only a command topic (not its reply) yields a command name', () => {
    const t = gatewayTopics('s', 'g');
    assert.equal(commandNameOf(t, 'ser/v1/s/g/cmd/ping'), 'ping');
    assert.equal(commandNameOf(t, 'ser/v1/s/g/cmd/ping/reply'), null);
    assert.equal(commandNameOf(t, 'ser/v1/s/g/status'), null);
  });
});

describe('MQTT payload schemas', () => {
  test('the committed JSON Schema files are exactly what the zod schemas generate', async () => {
    const dir = join(packageRoot(), 'schemas');
    // The daemon config's and the bundle manifest's schemas are checked by their own tests.
    const committed = (await readdir(dir)).filter((f) => f.endsWith('.schema.json') && f !== 'config.schema.json' && f !== 'model-manifest.schema.json').sort();
    assert.deepEqual(committed, Object.keys(EXPORTED_SCHEMAS).sort(), 'schemas/ lists other files: run node dist/scripts/export-schemas.js');
    for (const file of committed) {
      assert.equal(await readFile(join(dir, file), 'utf8'), jsonSchemaText(file), `schemas/${file} is stale: run node dist/scripts/export-schemas.js`);
    }
  });

  test('an urgency event carries every field the contract lists', () => {
    const event = sampleEvent(1);
    assert.deepEqual(UrgencyEvent.parse(event), event);
    const schema = JSON.parse(jsonSchemaText('urgency-event.schema.json')) as { required: string[] };
    for (const field of ['schema', 'id', 'seq', 'ts', 'site', 'gateway', 'channel', 'callId', 'level', 'score', 'emotion', 'probabilities', 'model', 'window']) {
      assert.ok(schema.required.includes(field), `${field} is required`);
    }
  });

  test('an urgency event with a score above 1 or a non-ULID id is refused', () => {
    assert.equal(UrgencyEvent.safeParse({ ...sampleEvent(1), score: 1.2 }).success, false);
    assert.equal(UrgencyEvent.safeParse({ ...sampleEvent(1), id: 'not-a-ulid' }).success, false);
  });

  test('commands refuse unknown fields, so a misspelt one is not silently ignored', () => {
    assert.equal(CallCommand.safeParse({ schema: 1, action: 'start', channel: 'hs1', callId: 'c1' }).success, true);
    assert.equal(CallCommand.safeParse({ schema: 1, action: 'start', chanel: 'hs1', callId: 'c1' }).success, false);
  });

  test('a model install carries its bundle inline or as an http(s) url with its size and sha256, never both', () => {
    const sha256 = 'a'.repeat(64);
    assert.equal(ModelInstallCommand.safeParse({ schema: 1, bundle: { inline: 'AAAA' } }).success, true);
    assert.equal(ModelInstallCommand.safeParse({ schema: 1, bundle: { url: 'https://models.example/m.tar', bytes: 10, sha256 } }).success, true);
    assert.equal(ModelInstallCommand.safeParse({ schema: 1, bundle: { url: 'https://models.example/m.tar', sha256 } }).success, false, 'no size');
    assert.equal(ModelInstallCommand.safeParse({ schema: 1, bundle: { url: 'ftp://models.example/m.tar', bytes: 10, sha256 } }).success, false, 'not http(s)');
    assert.equal(ModelInstallCommand.safeParse({ schema: 1, bundle: { inline: 'AAAA', url: 'https://models.example/m.tar', bytes: 10, sha256 } }).success, false, 'both');
    assert.equal(ModelInstallCommand.safeParse({ schema: 1, bundle: { inline: 'AAAA' }, shadowMinutes: 5 }).success, false, 'a trial length without shadow mode');
  });
});

describe('MQTT link helpers', () => {
  test('reconnect delays double from minMs to maxMs and each lies in the upper half of its step', () => {
    const backoff = { minMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(0, backoff, () => 0), 50);
    assert.equal(backoffDelay(0, backoff, () => 1), 100);
    assert.equal(backoffDelay(3, backoff, () => 1), 800);
    assert.equal(backoffDelay(10, backoff, () => 1), 1000);
    assert.equal(backoffDelay(10, backoff, () => 0), 500);
  });

  test('a URL with credentials is logged without them', () => {
    assert.equal(redactUrl('mqtts://user:secret@broker:8883'), 'mqtts://***@broker:8883');
  });
});
