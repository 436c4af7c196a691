import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CheckResult } from '../src/daemon/checks/check-result.js';
import { MANIFEST_FILE } from '../src/model/bundle-manifest.js';
import { CommandReply, commandBytesFor } from '../src/mqtt/payload-schemas.js';
import { loadTrustedKeys, signBundleDir } from '../src/update/bundle-signature.js';
import { checkBundleTrust } from '../src/update/bundle-trust.js';
import { generateSigningKeys } from '../src/update/signing-keys.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { spawnDaemon, writeSyntheticModel, type DaemonProcess } from './helpers/daemon-process.js';
import { tamperWeights } from './helpers/model-updates.js';
import { connectSubscriber, MOSQUITTO_MISSING, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

/**
 * A gateway's own model.dir bundle, judged by its signature when `run` starts and when
 * `doctor` checks it: signed by a trusted key it runs, a bad or untrusted signature stops
 * the start (exit 2), an unsigned bundle runs only under model.allowUnsigned, with a warning.
 */

const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));
const execute = promisify(execFile);
const dir = tempDir('ser-edge-model-trust-');
let unsignedDir: string;
let signedDir: string;
let keys: { privateFile: string; publicFile: string; keyId: string };
let stranger: { privateFile: string; publicFile: string; keyId: string };

before(async () => {
  unsignedDir = await writeSyntheticModel(dir);
  [keys, stranger] = await Promise.all([generateSigningKeys(join(dir, 'keys')), generateSigningKeys(join(dir, 'stranger'))]);
  signedDir = copyOf(unsignedDir, 'signed');
  await signBundleDir(signedDir, keys.privateFile);
});

let copies = 0;
function copyOf(bundle: string, name = `bundle-${copies++}`): string {
  const copy = join(dir, name);
  cpSync(bundle, copy, { recursive: true });
  return copy;
}

/** The signed bundle with one weight byte flipped and its sha256 updated in the manifest: it loads, but not as signed. */
function tampered(): string {
  const bundle = copyOf(signedDir);
  tamperWeights(bundle);
  return bundle;
}

describe('checkBundleTrust', () => {
  test('a bundle signed by a trusted key is trusted, naming the key and when it was signed', async () => {
    const trust = await checkBundleTrust(signedDir, await loadTrustedKeys([stranger.publicFile, keys.publicFile]), false);
    assert.ok(trust.ok && trust.signed, JSON.stringify(trust));
    assert.equal(trust.key.keyId, keys.keyId);
    assert.match(trust.signedAt, /^\d{4}-\d\d-\d\dT/);
  });

  test('an unsigned bundle passes only when unsigned bundles are allowed', async () => {
    assert.deepEqual(await checkBundleTrust(unsignedDir, [], true), { ok: true, signed: false });
    const refused = await checkBundleTrust(unsignedDir, await loadTrustedKeys([keys.publicFile]), false);
    assert.equal(refused.ok === false && refused.reason, 'unsigned');
  });

  test('allowing unsigned bundles never lets a bad or an untrusted signature through', async () => {
    const bad = await checkBundleTrust(tampered(), await loadTrustedKeys([keys.publicFile]), true);
    assert.equal(bad.ok === false && bad.reason, 'bad_signature');
    const unknown = await checkBundleTrust(signedDir, await loadTrustedKeys([stranger.publicFile]), true);
    assert.equal(unknown.ok === false && unknown.reason, 'unknown_key');
    assert.match(unknown.ok === false ? unknown.message : '', new RegExp(`signed by key ${keys.keyId}`));
  });

  test('the manifest JSON and signature text of an install from memory are judged the same way', async () => {
    const parts = { manifest: JSON.parse(readFileSync(join(signedDir, MANIFEST_FILE), 'utf8')) as unknown, signatureText: readFileSync(join(signedDir, 'signature.json')) };
    const trust = await checkBundleTrust(parts, await loadTrustedKeys([keys.publicFile]), false);
    assert.ok(trust.ok && trust.signed);
    const garbled = await checkBundleTrust({ ...parts, signatureText: '{"schema":1}' }, await loadTrustedKeys([keys.publicFile]), true);
    assert.equal(garbled.ok === false && garbled.reason, 'bad_signature');
  });
});

/** A gateway config on the embedded broker with one demo channel: the model is what is under test. */
function gatewayConfig(name: string, model: Record<string, unknown>): Record<string, unknown> {
  return {
    site: 'lab',
    gateway: name,
    stateDir: join(dir, `state-${name}`),
    mqtt: { embedded: { port: 0 } },
    ...(Object.keys(model).length > 0 ? { model } : {}),
    sources: [{ type: 'demo', channels: [{ id: 'desk-1', role: 'customer' }] }],
  };
}

async function stop(daemon: DaemonProcess): Promise<number | null> {
  daemon.child.kill('SIGTERM');
  return (await daemon.exited).code;
}

/** Starts a gateway that must refuse to start: its exit code, its one plain stderr line, and its log. */
async function refusedStart(name: string, model: Record<string, unknown>): Promise<{ code: number | null; line: string; logs: Record<string, unknown>[] }> {
  const daemon = spawnDaemon(join(dir, `${name}.json`), gatewayConfig(name, model));
  const { code } = await daemon.exited;
  const line = daemon.stderr().split('\n').find((l) => l.startsWith('ser-edge run: ')) ?? `(no ser-edge run line in:\n${daemon.stderr()})`;
  return { code, line, logs: daemon.logs() };
}

describe('ser-edge run with a model.dir bundle', () => {
  test('a bundle signed by a key in model.trustedKeys starts, and the log names the key', { timeout: 60_000 }, async () => {
    const daemon = spawnDaemon(join(dir, 'gw-signed.json'), gatewayConfig('gw-signed', { dir: signedDir, trustedKeys: [keys.publicFile] }));
    try {
      const verified = await daemon.waitForLog((l) => l.msg === 'model bundle signature verified', 30_000, 'the signature check');
      assert.equal(verified.keyId, keys.keyId);
      assert.equal(verified.keyFile, keys.publicFile);
      await daemon.waitForLog((l) => l.msg === 'ser-edge running', 30_000, 'the daemon to run');
      assert.equal(daemon.logs().filter((l) => (l.level as number) >= 40).length, 0, 'no warning about the model');
    } finally {
      assert.equal(await stop(daemon), 0);
    }
  });

  test('a bundle changed after it was signed stops the start: exit 2, naming the bundle, the key and what to do', { timeout: 60_000 }, async () => {
    const bundle = tampered();
    const { code, line, logs } = await refusedStart('gw-tampered', { dir: bundle, trustedKeys: [keys.publicFile] });
    assert.equal(code, 2, line);
    assert.ok(line.includes(bundle), line);
    assert.match(line, new RegExp(`the signature by key ${keys.keyId} does not match the manifest.*copy the bundle again from its release`));
    assert.ok(logs.some((l) => l.msg === 'ser-edge could not start' && l.level === 60), 'the fatal line');
    assert.ok(!logs.some((l) => l.msg === 'model loaded' || l.msg === 'ser-edge running'), 'nothing ran on it');
  });

  test('a bundle signed by a key model.trustedKeys does not list stops the start: exit 2, naming both keys', { timeout: 60_000 }, async () => {
    const { code, line } = await refusedStart('gw-stranger', { dir: signedDir, trustedKeys: [stranger.publicFile] });
    assert.equal(code, 2, line);
    assert.match(line, new RegExp(`model bundle ${signedDir}: signed by key ${keys.keyId}, .*trusted: ${stranger.keyId} .*add the signer's public key .* to model\\.trustedKeys`));
  });

  test('a signed bundle with no model.trustedKeys at all stops the start, even with model.allowUnsigned', { timeout: 60_000 }, async () => {
    const { code, line } = await refusedStart('gw-nokeys', { dir: signedDir, allowUnsigned: true });
    assert.equal(code, 2, line);
    assert.match(line, new RegExp(`signed by key ${keys.keyId}, .*no key is trusted \\(model\\.trustedKeys is empty\\)`));
  });

  test('an unsigned bundle of ours stops the start by default: exit 2, naming model.allowUnsigned and model.trustedKeys', { timeout: 60_000 }, async () => {
    const { code, line } = await refusedStart('gw-unsigned', { dir: unsignedDir, trustedKeys: [keys.publicFile] });
    assert.equal(code, 2, line);
    assert.match(line, new RegExp(`model bundle ${unsignedDir}: it is unsigned \\(it has no signature\\.json\\) and model\\.allowUnsigned is false`));
    assert.match(line, /ser-edge model sign .* --key model-signing\.key.* model\.trustedKeys, or set model\.allowUnsigned: true/);
  });

  test('a model.trustedKeys file that cannot be read, or is not a key, stops the start: exit 2, naming the file', { timeout: 60_000 }, async () => {
    const missing = await refusedStart('gw-nokeyfile', { dir: signedDir, trustedKeys: [join(dir, 'nowhere.pub')] });
    assert.equal(missing.code, 2, missing.line);
    assert.match(missing.line, /cannot read trusted model key .*nowhere\.pub \(ENOENT\): check model\.trustedKeys/);
    const notKey = join(dir, 'not-a-key.pub');
    writeFileSync(notKey, 'not a key\n');
    const bad = await refusedStart('gw-notkey', { dir: signedDir, trustedKeys: [keys.publicFile, notKey] });
    assert.equal(bad.code, 2, bad.line);
    assert.match(bad.line, /trusted model key .*not-a-key\.pub is not a PEM public key/);
  });

  test('an unsigned bundle under model.allowUnsigned starts, with a warning', { timeout: 60_000 }, async () => {
    const daemon = spawnDaemon(join(dir, 'gw-allowed.json'), gatewayConfig('gw-allowed', { dir: unsignedDir, allowUnsigned: true }));
    try {
      const warning = await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('model bundle is unsigned'), 30_000, 'the unsigned warning');
      assert.equal(warning.level, 40);
      assert.equal(warning.msg, 'model bundle is unsigned: loaded because model.allowUnsigned is true');
      assert.equal(warning.dir, unsignedDir);
      await daemon.waitForLog((l) => l.msg === 'ser-edge running', 30_000, 'the daemon to run');
    } finally {
      assert.equal(await stop(daemon), 0);
    }
  });

  test('the shipped models/default, unsigned, starts as it always has, with the warning at every start', { timeout: 60_000 }, async () => {
    const daemon = spawnDaemon(join(dir, 'gw-shipped.json'), gatewayConfig('gw-shipped', {}));
    try {
      const warning = await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('model bundle is unsigned'), 30_000, 'the unsigned warning');
      assert.match(String(warning.msg), /because it is the shipped models\/default \(model\.allowUnsigned defaults to true for it alone\)$/);
      assert.match(String(warning.dir), /models\/default$/);
      await daemon.waitForLog((l) => l.msg === 'ser-edge running', 30_000, 'the daemon to run');
    } finally {
      assert.equal(await stop(daemon), 0);
    }
  });

  test('model.allowUnsigned false refuses even the shipped bundle', { timeout: 60_000 }, async () => {
    const { code, line } = await refusedStart('gw-strict', { allowUnsigned: false });
    assert.equal(code, 2, line);
    assert.match(line, /models\/default: it is unsigned .* and model\.allowUnsigned is false/);
  });
});

describe('ser-edge doctor on the model trust rows', () => {
  interface Report {
    ok: boolean;
    checks: CheckResult[];
  }
  async function doctor(name: string, model: Record<string, unknown>): Promise<{ code: number; rows: (check: string) => CheckResult[] }> {
    const file = join(dir, `doctor-${name}.json`);
    writeFileSync(file, JSON.stringify(gatewayConfig(`doctor-${name}`, model)));
    const env = { ...process.env, SER_EDGE_MQTT_URL: '', SER_EDGE_STATE_DIR: '', SER_EDGE_MODEL_DIR: '' };
    const { code, stdout } = await execute(process.execPath, [cli, 'doctor', '--config', file, '--json', '--measure-seconds', '0.2'], { env }).then(
      (r) => ({ code: 0, ...r }),
      (error: { code: number; stdout: string }) => error,
    );
    const report = JSON.parse(stdout) as Report;
    return { code, rows: (check) => report.checks.filter((c) => c.check === check) };
  }

  test('a bundle signed by a trusted key passes, naming the key; each trusted key file passes with its key id', { timeout: 60_000 }, async () => {
    const { rows } = await doctor('signed', { dir: signedDir, trustedKeys: [stranger.publicFile, keys.publicFile] });
    const [signature] = rows('model-signature');
    assert.equal(signature?.status, 'pass', JSON.stringify(signature));
    assert.match(signature!.detail, new RegExp(`^synthetic 0\\.0\\.1 is signed by trusted key ${keys.keyId} \\(${keys.publicFile}\\), on \\d{4}-`));
    assert.deepEqual(
      rows('model-keys').map((r) => [r.subject, r.status, r.data?.keyId]),
      [
        [stranger.publicFile, 'pass', stranger.keyId],
        [keys.publicFile, 'pass', keys.keyId],
      ],
    );
  });

  test('a refused bundle fails its row with the reason and exits 1, while the model row says it loads', { timeout: 60_000 }, async () => {
    const { code, rows } = await doctor('tampered', { dir: tampered(), trustedKeys: [keys.publicFile] });
    assert.equal(code, 1);
    assert.equal(rows('model')[0]?.status, 'pass', 'the files match the (edited) manifest and the self-test passes');
    const [signature] = rows('model-signature');
    assert.equal(signature?.status, 'fail');
    assert.match(signature!.detail, /is refused \(bad_signature\): the signature by key .* does not match the manifest.*`ser-edge run` would exit 2/);
    assert.match(signature!.fix ?? '', /copy the bundle again from its release/);
  });

  test('an unsigned bundle allowed by model.allowUnsigned warns; the shipped one passes; a refused one fails', { timeout: 90_000 }, async () => {
    const allowed = await doctor('allowed', { dir: unsignedDir, allowUnsigned: true });
    assert.equal(allowed.rows('model-signature')[0]?.status, 'warn');
    assert.match(allowed.rows('model-signature')[0]!.fix ?? '', /ser-edge model sign .* model\.trustedKeys and remove model\.allowUnsigned/);
    const shipped = await doctor('shipped', {});
    assert.equal(shipped.rows('model-signature')[0]?.status, 'pass');
    assert.match(shipped.rows('model-signature')[0]!.detail, /is unsigned, and loads: it is the shipped models\/default/);
    const refused = await doctor('unsigned', { dir: unsignedDir });
    assert.equal(refused.rows('model-signature')[0]?.status, 'fail');
    assert.match(refused.rows('model-signature')[0]!.detail, /refused \(unsigned\): it is unsigned \(it has no signature\.json\) and model\.allowUnsigned is false/);
    assert.equal(refused.code, 1);
  });

  test('a trusted key file that cannot be read fails its own row; one others can write warns; none configured is skipped', { timeout: 60_000 }, async () => {
    const writable = join(dir, 'writable.pub');
    cpSync(keys.publicFile, writable);
    chmodSync(writable, 0o666);
    const { rows } = await doctor('keys', { dir: signedDir, trustedKeys: [join(dir, 'nowhere.pub'), writable] });
    const [missing, open] = rows('model-keys');
    assert.equal(missing?.status, 'fail');
    assert.match(missing!.detail, /cannot read trusted model key .*nowhere\.pub \(ENOENT\)/);
    assert.equal(open?.status, 'warn');
    assert.match(open!.detail, /writable by anyone \(mode 666\)/);
    assert.equal(open!.fix, `chmod go-w ${writable}`);
    assert.equal(rows('model-signature')[0]?.status, 'pass', 'the key that reads still verifies the bundle');
    const none = await doctor('nokeys', {});
    assert.equal(none.rows('model-keys')[0]?.status, 'skip');
    assert.match(none.rows('model-keys')[0]!.detail, /no model\.trustedKeys: .*every remote model install is refused/);
  });

  test('a bundle that does not load skips its signature row rather than guess', { timeout: 60_000 }, async () => {
    const { rows } = await doctor('noload', { dir: join(dir, 'no-bundle-here'), trustedKeys: [keys.publicFile] });
    assert.equal(rows('model')[0]?.status, 'fail');
    assert.equal(rows('model-signature')[0]?.status, 'skip');
    assert.equal(rows('model-keys')[0]?.status, 'pass', 'the keys are checked all the same');
  });
});

describe('the command size limit', { skip: MOSQUITTO_MISSING }, () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await broker?.stop();
  });

  /** Sends pings of `sizes` bytes, one after the other, to a gateway with the given update section, and returns their replies. */
  async function pingReplies(name: string, update: Record<string, unknown>, sizes: number[]): Promise<CommandReply[]> {
    const base = `ser/v1/lab/${name}`;
    const sub = await connectSubscriber(broker.url, [`${base}/#`]);
    const daemon = spawnDaemon(join(dir, `${name}.json`), { ...gatewayConfig(name, { dir: signedDir, trustedKeys: [keys.publicFile] }), mqtt: { url: broker.url }, update });
    try {
      await sub.waitFor((m) => m.topic === `${base}/status` && m.json<{ state: string }>().state === 'online', 30_000, 'the gateway online');
      const replies: CommandReply[] = [];
      for (const [i, bytes] of sizes.entries()) {
        const payload = JSON.stringify({ schema: 1, pad: 'x'.repeat(bytes) });
        await sub.client.publishAsync(`${base}/cmd/ping`, payload, { qos: 1 });
        // One at a time, so the i-th reply is this ping's (a refusal before parsing carries no correlationId).
        const answered = () => sub.messages.filter((m) => m.topic === `${base}/cmd/ping/reply`);
        await sub.waitFor(() => answered().length > i, 30_000, `the reply to ping ${i}`);
        replies.push(CommandReply.parse(answered()[i]!.json()));
      }
      return replies;
    } finally {
      await stop(daemon);
      await sub.end();
    }
  }

  test('a command over what update.maxInlineBytes allows gets payload_too_large, naming the limit; under the default it is read', { timeout: 90_000 }, async () => {
    const [limited] = await pingReplies('gw-small-inline', { maxInlineBytes: 1024 }, [100_000]);
    assert.equal(limited!.error?.code, 'payload_too_large', JSON.stringify(limited));
    assert.match(limited!.error!.message, new RegExp(`exceeds the ${commandBytesFor(1024)}-byte limit`));
    const [read] = await pingReplies('gw-default-inline', {}, [100_000]);
    assert.notEqual(read!.error?.code, 'payload_too_large', JSON.stringify(read));
  });

  test('a larger update.maxInlineBytes lets commands past the 16 MiB the broker was told before, and still answers one over it', { timeout: 120_000 }, async () => {
    const limit = commandBytesFor(16 * 1024 * 1024);
    const [within, over] = await pingReplies('gw-large-inline', { maxInlineBytes: 16 * 1024 * 1024 }, [limit - 1024, limit + 1024]);
    assert.notEqual(within!.error?.code, 'payload_too_large', 'read, and refused for what it is');
    assert.equal(over!.error?.code, 'payload_too_large');
  });
});
