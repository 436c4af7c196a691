import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { defaultModelDir, packageRoot } from '../src/config/package-paths.js';
import { EmbeddedBroker } from '../src/daemon/embedded-broker.js';
import { MANIFEST_FILE } from '../src/model/bundle-manifest.js';
import { CommandError } from '../src/mqtt/mqtt-link.js';
import { ModelInstallCommand, ModelRollbackCommand, type ModelState } from '../src/mqtt/payload-schemas.js';
import { packBundle } from '../src/update/bundle-archive.js';
import { signBundleDir } from '../src/update/bundle-signature.js';
import { generateSigningKeys } from '../src/update/signing-keys.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { MOSQUITTO_MISSING, OPENSSL_MISSING, generateTestCertificates, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';
import { publishingGateway } from './helpers/publishing-gateway.js';
import { runSerEdge } from './helpers/program-process.js';

/*
 * The field tech's fleet commands against a real mosquitto. The gateways here are
 * responders written with mqtt.js: each publishes a retained status and model state as a
 * gateway does, records the commands that reach it, and answers per the contract, so the
 * tests say what the tool sends and how it reads what comes back.
 */

const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const TS = '2026-12-01T10:00:00.000Z';

let signedBundle: string;
let unsignedBundle: string;
let largeBundle: string;
let nearLimitBundle: string;

before(async () => {
  const dir = tempDir('ser-edge-fleet-');
  const keys = await generateSigningKeys(join(dir, 'keys'));
  const copy = (name: string) => {
    const to = join(dir, name);
    for (const file of ['manifest.json', ...Object.keys(JSON.parse(readFileSync(join(defaultModelDir(), MANIFEST_FILE), 'utf8')).files)]) cpSync(join(defaultModelDir(), file), join(to, file));
    return to;
  };
  unsignedBundle = copy('unsigned');
  signedBundle = copy('signed');
  await signBundleDir(signedBundle, keys.privateFile);
  const padded = async (name: string, bytes: number) => {
    const to = copy(name);
    const padding = randomBytes(bytes);
    writeFileSync(join(to, 'padding.bin'), padding);
    const manifest = JSON.parse(readFileSync(join(to, MANIFEST_FILE), 'utf8'));
    manifest.files['padding.bin'] = { sha256: sha256(padding), bytes: padding.length };
    writeFileSync(join(to, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
    await signBundleDir(to, keys.privateFile);
    return to;
  };
  // 9 MiB more than the shipped model: over what a command carries inline.
  largeBundle = await padded('large', 9 * 1024 * 1024);
  // The shipped model's half MiB and 7 MiB more: under it.
  nearLimitBundle = await padded('near-limit', 7 * 1024 * 1024);
});



interface Received {
  name: string;
  payload: Record<string, unknown>;
  responseTopic: string | undefined;
  correlationData: Buffer | undefined;
  at: number;
}

type Answer = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } } | null;

const ref = (version: string) => ({ name: 'ser-ensemble', version, sha256: 'a'.repeat(64) });

function modelState(site: string, gateway: string, overrides: Partial<ModelState> = {}): ModelState {
  return { schema: 1, ts: TS, site, gateway, active: { ...ref('1.0.0'), source: 'config' }, previous: null, staged: null, lastInstall: null, ...overrides };
}

/** A stand-in gateway: retained status and model, commands recorded, answered by `answer` (null: silent). */
class Responder {
  readonly received: Received[] = [];
  private client!: MqttClient;

  constructor(
    readonly site: string,
    readonly gateway: string,
    private readonly answer: (command: Received) => Answer,
    private readonly options: { state?: 'online' | 'offline'; model?: ModelState | null; protocolVersion?: 5 | 4 } = {},
  ) {}

  async start(url: string, connection: import('mqtt').IClientOptions = {}): Promise<this> {
    this.client = await mqtt.connectAsync(url, { protocolVersion: this.options.protocolVersion ?? 5, clientId: `responder-${this.site}-${this.gateway}`, reconnectPeriod: 0, ...connection });
    const base = `ser/v1/${this.site}/${this.gateway}`;
    const state = this.options.state ?? 'online';
    await this.client.publishAsync(
      `${base}/status`,
      JSON.stringify({ schema: 1, state, ts: TS, site: this.site, gateway: this.gateway, ...(state === 'offline' ? { reason: 'lost' } : {}), version: '0.1.0', model: { name: 'ser-ensemble', version: '1.0.0' }, backend: 'int8' }),
      { qos: 1, retain: true },
    );
    const model = this.options.model === undefined ? modelState(this.site, this.gateway) : this.options.model;
    if (model !== null) await this.client.publishAsync(`${base}/model`, JSON.stringify(model), { qos: 1, retain: true });
    if (state === 'offline') return this;
    this.client.on('message', (topic, payload, packet) => {
      const name = topic.slice(`${base}/cmd/`.length);
      const command: Received = {
        name,
        payload: JSON.parse(payload.toString('utf8')),
        responseTopic: packet.properties?.responseTopic,
        correlationData: packet.properties?.correlationData ? Buffer.from(packet.properties.correlationData) : undefined,
        at: Date.now(),
      };
      this.received.push(command);
      const body = this.answer(command);
      if (body === null) return;
      // As the daemon does: the response topic when it is an operators' inbox, else the command's own reply topic.
      const to = command.responseTopic?.startsWith(`ser/v1/${this.site}/ops/replies/`) ? command.responseTopic : `${base}/cmd/${name}/reply`;
      const reply = { schema: 1, command: name, correlationId: command.payload.correlationId, ts: new Date().toISOString(), ...body };
      void this.client.publishAsync(to, JSON.stringify(reply), { qos: 1, ...(command.correlationData ? { properties: { correlationData: command.correlationData } } : {}) });
    });
    await this.client.subscribeAsync(`${base}/cmd/+`, { qos: 1 });
    return this;
  }

  async stop(): Promise<void> {
    await this.client.endAsync(true);
  }
}

const installed = (version = '1.1.0'): Answer => ({ ok: true, result: { reason: 'installed', active: ref(version), previous: ref('1.0.0'), staged: null } });
const failed = (code: string, message: string): Answer => ({ ok: false, error: { code, message } });

let sites = 0;
/** A site of its own per test: retained messages of one test never reach another. */
const newSite = () => `fleet-${process.pid}-${++sites}`;

describe('against a real mosquitto', { skip: MOSQUITTO_MISSING }, () => {
  let broker: Mosquitto;
  const responders: Responder[] = [];
  before(async () => {
    broker = await startMosquitto();
  });
  after(async () => {
    await Promise.all(responders.map((r) => r.stop()));
    await broker?.stop();
  });
  const gateways = async (site: string, specs: [string, (c: Received) => Answer, Responder['options']?][]) => {
    const started = await Promise.all(specs.map(([gw, answer, options]) => new Responder(site, gw, answer, options).start(broker.url)));
    responders.push(...started);
    return started;
  };

  test('publish --all --canary 1 stops after a failing canary: the rest are not sent and the exit code is 1', async () => {
    const site = newSite();
    const [a, b, c] = await gateways(site, [
      ['gw-a', () => failed('sha256_mismatch', 'the bundle does not match its sha256')],
      ['gw-b', () => installed()],
      ['gw-c', () => installed()],
    ]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--all', '--canary', '1', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.ok, false);
    assert.deepEqual(
      doc.gateways.map((g: { gateway: string; result: string; reason: string; canary: boolean }) => [g.gateway, g.result, g.reason, g.canary]),
      [
        ['gw-a', 'failed', 'sha256_mismatch', true],
        ['gw-b', 'not_sent', 'canary_failed', false],
        ['gw-c', 'not_sent', 'canary_failed', false],
      ],
    );
    assert.equal(doc.gateways[0].message, 'the bundle does not match its sha256');
    assert.equal(doc.gateways[0].active.version, '1.0.0', 'the active model after, from the retained …/model');
    assert.equal(a!.received.length, 1);
    assert.equal(b!.received.length + c!.received.length, 0, 'nothing reached the gateways after the failed canary');
  });

  test('the install command is a schema-valid model.install carrying the packed bundle inline, with a response topic in the operators\' inbox and correlation data', async () => {
    const site = newSite();
    const [gw] = await gateways(site, [['gw1', () => installed('1.2.0')]]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1']);
    assert.equal(run.code, 0, run.stderr);
    const command = gw!.received[0]!;
    assert.equal(command.name, 'model.install');
    const parsed = ModelInstallCommand.parse(command.payload);
    assert.ok('inline' in parsed.bundle);
    assert.ok(Buffer.from(parsed.bundle.inline, 'base64').equals(await packBundle(signedBundle)), 'the inline bundle is the packed directory');
    assert.equal(parsed.mode, 'activate');
    assert.equal(parsed.force, false);
    assert.match(command.responseTopic ?? '', new RegExp(`^ser/v1/${site}/ops/replies/[^/+#]+`));
    assert.equal(command.correlationData?.toString(), parsed.correlationId);
    assert.match(run.stdout, /gw1\s+ok\s+installed\s+ser-ensemble 1\.2\.0/);
    assert.match(run.stdout, /1 ok \(of 1\)/);
  });

  test('a bundle of nearly 8 MiB packed goes inline and arrives byte for byte', async () => {
    const site = newSite();
    const [gw] = await gateways(site, [['gw1', () => installed()]]);
    const run = await runSerEdge(['model', 'publish', nearLimitBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1']);
    assert.equal(run.code, 0, run.stderr);
    const parsed = ModelInstallCommand.parse(gw!.received[0]!.payload);
    assert.ok('inline' in parsed.bundle);
    const packed = await packBundle(nearLimitBundle);
    assert.ok(packed.length > 7 * 1024 * 1024 && packed.length <= 8 * 1024 * 1024, `${packed.length} bytes`);
    assert.ok(Buffer.from(parsed.bundle.inline, 'base64').equals(packed));
  });

  test('with healthy canaries the rest are sent only after every canary has replied', async () => {
    const site = newSite();
    const [a, b, c] = await gateways(site, [
      ['gw-3', () => installed()],
      ['gw-1', () => installed()],
      ['gw-2', () => installed()],
    ]);
    // Given out of order: the canaries are the first two as given.
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw-3,gw-1', '--gateway', 'gw-2', '--canary', '2', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.deepEqual(doc.gateways.map((g: { gateway: string; canary: boolean; result: string }) => [g.gateway, g.canary, g.result]), [
      ['gw-3', true, 'ok'],
      ['gw-1', true, 'ok'],
      ['gw-2', false, 'ok'],
    ]);
    const lastCanaryReply = Math.max(...[a!, b!].map((r) => Date.parse(doc.gateways.find((g: { gateway: string }) => g.gateway === r.gateway).repliedAt)));
    assert.ok(c!.received[0]!.at >= lastCanaryReply, 'gw-2 got the command after both canaries had answered');
  });

  test('a gateway that does not answer is a timeout, and the exit code is 1', async () => {
    const site = newSite();
    await gateways(site, [
      ['gw-ok', () => installed()],
      ['gw-silent', () => null],
    ]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--all', '--timeout', '2']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /gw-ok\s+ok\s+installed/);
    assert.match(run.stdout, /gw-silent\s+timeout\s+timeout\s+ser-ensemble 1\.0\.0\s+no reply within 2 s/);
    assert.match(run.stdout, /1 ok, 1 timeout \(of 2\)/);
  });

  test('--all finds the gateways from their retained status; an offline one is listed as offline and not sent to', async () => {
    const site = newSite();
    const [on, off] = await gateways(site, [
      ['gw-on', () => installed()],
      ['gw-off', () => installed(), { state: 'offline' }],
    ]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--all', '--json']);
    assert.equal(run.code, 1, 'not every gateway of the site got it');
    const doc = JSON.parse(run.stdout);
    assert.deepEqual(doc.gateways.map((g: { gateway: string; result: string; reason: string }) => [g.gateway, g.result, g.reason]), [
      ['gw-off', 'offline', 'offline'],
      ['gw-on', 'ok', 'installed'],
    ]);
    assert.match(doc.gateways[0].message, /^offline \(its connection was lost\), so it was not sent: the broker keeps no commands for an offline gateway\. Run this again once it is back online$/);
    assert.equal(on!.received.length, 1);
    assert.equal(off!.received.length, 0);
  });

  test('a --gateway the broker has no status for is reported at once, naming the gateways the site has', async () => {
    const site = newSite();
    await gateways(site, [['gw1', () => installed()]]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1', '--gateway', 'gw-typo']);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /gw-typo\s+offline\s+no_status\s+-\s+no retained .*is the gateway id right\? The site's gateways are gw1/);
  });

  test('--canary larger than the online gateways --all finds is a usage error (exit 2), and nothing is sent', async () => {
    const site = newSite();
    const [a] = await gateways(site, [
      ['gw1', () => installed()],
      ['gw2', () => installed(), { state: 'offline' }],
    ]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--all', '--canary', '2']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--canary 2 is more than the 1 gateway to send to \(1 of the 2 targeted is offline or unknown\)/);
    assert.equal(a!.received.length, 0);
  });

  test('--shadow, --force and --url go into the command: the url with the packed file\'s size and sha256', async () => {
    const site = newSite();
    const [gw] = await gateways(site, [['gw1', () => ({ ok: true, result: { reason: 'staged', active: ref('1.0.0'), previous: null, staged: ref('1.1.0') } })]]);
    const packed = join(tempDir('ser-edge-fleet-pack-'), 'bundle.tar');
    writeFileSync(packed, await packBundle(signedBundle));
    const run = await runSerEdge(['model', 'publish', packed, '--broker', broker.url, '--site', site, '--gateway', 'gw1', '--shadow', '30', '--force', '--url', 'https://models.example/bundle.tar']);
    assert.equal(run.code, 0, run.stderr);
    const parsed = ModelInstallCommand.parse(gw!.received[0]!.payload);
    const bytes = readFileSync(packed);
    assert.deepEqual(parsed.bundle, { url: 'https://models.example/bundle.tar', bytes: bytes.length, sha256: sha256(bytes) });
    assert.equal(parsed.mode, 'shadow');
    assert.equal(parsed.shadowMinutes, 30);
    assert.equal(parsed.force, true);
    assert.match(run.stdout, /gw1\s+ok\s+staged\s+ser-ensemble 1\.0\.0/);
  });

  test('a gateway that already runs the bundle counts as done', async () => {
    const site = newSite();
    await gateways(site, [['gw1', () => failed('already_active', 'command model.install failed: ser-ensemble 1.1.0 is the active model already; nothing to do')]]);
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1']);
    assert.equal(run.code, 0, run.stdout);
    assert.match(run.stdout, /gw1\s+ok\s+already_active\s+ser-ensemble 1\.0\.0\s+ser-ensemble 1\.1\.0 is the active model already; nothing to do\n/);
  });

  test('status shows a last install answered already_active as ok, not as a failure', async () => {
    const site = newSite();
    await gateways(site, [['gw1', () => null, { model: modelState(site, 'gw1', { lastInstall: { ok: false, reason: 'already_active', ts: TS, message: 'ser-ensemble 1.0.0 is the active model already; nothing to do' } }) }]]);
    const run = await runSerEdge(['model', 'status', '--broker', broker.url, '--site', site]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /gw1\s+online\s+ser-ensemble 1\.0\.0\s+-\s+-\s+ok already_active, /);
    assert.doesNotMatch(run.stdout, /FAILED|last install failed/);
  });

  test('a refused response topic is answered on the gateway\'s own reply topic, and the tool reads it there', async () => {
    const site = newSite();
    const [gw] = await gateways(site, [['gw1', () => null]]);
    // As a gateway whose commands.replyTopics leaves out the operators' inbox: the refusal goes to …/cmd/{name}/reply.
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    try {
      const answered = new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const command = gw!.received[0];
          if (!command) return;
          clearInterval(timer);
          const reply = { schema: 1, command: 'model.rollback', correlationId: command.payload.correlationId, ts: new Date().toISOString(), ok: false, error: { code: 'reply_topic_refused', message: 'response topic refused' } };
          void client.publishAsync(`ser/v1/${site}/gw1/cmd/model.rollback/reply`, JSON.stringify(reply), { qos: 1, properties: { correlationData: command.correlationData! } }).then(() => resolve());
        }, 20);
      });
      const [run] = await Promise.all([runSerEdge(['model', 'rollback', '--broker', broker.url, '--site', site, '--gateway', 'gw1', '--timeout', '30']), answered]);
      assert.equal(run.code, 1);
      assert.match(run.stdout, /gw1\s+failed\s+reply_topic_refused\s+ser-ensemble 1\.0\.0\s+response topic refused/);
    } finally {
      await client.endAsync(true);
    }
  });

  test('rollback, promote and discard send their schema-valid commands and report each gateway\'s answer', async () => {
    const site = newSite();
    const [a, b] = await gateways(site, [
      ['gw1', (c) => (c.name === 'model.rollback' ? { ok: true, result: { reason: 'rolled_back', active: ref('0.9.0'), previous: ref('1.0.0'), staged: null } } : { ok: true, result: { reason: c.name === 'model.promote' ? 'promoted' : 'discarded', active: ref('1.0.0'), previous: null, staged: null } })],
      ['gw2', () => failed('no_previous', 'there is no previous model to return to')],
    ]);
    const run = await runSerEdge(['model', 'rollback', '--broker', broker.url, '--site', site, '--all']);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /gw1\s+ok\s+rolled_back\s+ser-ensemble 0\.9\.0/);
    assert.match(run.stdout, /gw2\s+failed\s+no_previous\s+ser-ensemble 1\.0\.0\s+there is no previous model to return to/);
    ModelRollbackCommand.parse(a!.received[0]!.payload);
    assert.equal(b!.received[0]!.name, 'model.rollback');
    for (const verb of ['promote', 'discard']) {
      const r = await runSerEdge(['model', verb, '--broker', broker.url, '--site', site, '--gateway', 'gw1', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.command, `model.${verb}`);
      assert.equal(doc.gateways[0].reason, verb === 'promote' ? 'promoted' : 'discarded');
    }
    assert.deepEqual(a!.received.map((c) => c.name), ['model.rollback', 'model.promote', 'model.discard']);
  });

  test('Ctrl-C while waiting stops at once: the table says which replies were not awaited, and nothing more is sent', async () => {
    const site = newSite();
    const [a, b] = await gateways(site, [
      ['gw1', () => null],
      ['gw2', () => installed()],
    ]);
    const child = spawn(process.execPath, [cli, 'model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--all', '--canary', '1', '--timeout', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (a!.received.length === 0) {
      assert.ok(Date.now() < deadline, 'the canary never got the command');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 1);
    assert.match(stdout, /gw1 \(canary\)\s+timeout\s+interrupted\s+ser-ensemble 1\.0\.0\s+stopped waiting for its reply \(interrupted\)/);
    assert.match(stdout, /gw2\s+not_sent\s+interrupted/);
    assert.equal(b!.received.length, 0);
  });

  test('status reads every gateway\'s retained model: active, previous, staged with its shadow trial, last install', async () => {
    const site = newSite();
    await gateways(site, [
      [
        'gw1',
        () => null,
        {
          model: modelState(site, 'gw1', {
            previous: ref('0.9.0'),
            staged: {
              ...ref('1.1.0'),
              stagedAt: TS,
              mode: 'shadow',
              shadow: { startedAt: TS, endsAt: '2026-12-01T11:00:00.000Z', done: true, windows: 1200, agreement: { emotion: 0.93, level: 0.975 }, flagsPerHour: { active: 4, shadow: 5.5 }, flags: { active: 4, shadow: 6 } },
            },
            lastInstall: { ok: true, reason: 'staged', ts: TS, name: 'ser-ensemble', version: '1.1.0' },
          }),
        },
      ],
      ['gw2', () => null, { state: 'offline', model: modelState(site, 'gw2', { lastInstall: { ok: false, reason: 'bad_signature', ts: TS, version: '1.1.0', message: 'the signature does not match the manifest' } }) }],
    ]);
    const run = await runSerEdge(['model', 'status', '--broker', broker.url, '--site', site]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`site ${site}: 2 gateways, 1 online`));
    assert.match(run.stdout, /gw1\s+online\s+ser-ensemble 1\.0\.0\s+ser-ensemble 0\.9\.0\s+ser-ensemble 1\.1\.0 \(shadow\)\s+ok staged 1\.1\.0/);
    assert.match(run.stdout, /shadow trial of 1\.1\.0: done \(60 min.*1200 windows; agreement emotion 93%, level 98%; flags\/h active 4\.0, shadow 5\.5; promote or discard it/);
    assert.match(run.stdout, /gw2\s+OFFLINE \(lost\)\s+ser-ensemble 1\.0\.0\s+-\s+-\s+FAILED bad_signature 1\.1\.0/);
    assert.match(run.stdout, /last install failed \(bad_signature\): the signature does not match the manifest/);
    const json = await runSerEdge(['model', 'status', '--broker', broker.url, '--site', site, '--json']);
    const doc = JSON.parse(json.stdout);
    assert.deepEqual(doc.gateways.map((g: { gateway: string; state: string }) => [g.gateway, g.state]), [['gw1', 'online'], ['gw2', 'offline']]);
    assert.equal(doc.gateways[0].model.staged.shadow.windows, 1200);
  });

  test('status of a site with no gateway on the broker says so and exits 1', async () => {
    const run = await runSerEdge(['model', 'status', '--broker', broker.url, '--site', newSite()]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no gateway of site fleet-\S+ has a retained status or model .*is --site right/);
  });
});

const PASSWD_MISSING = MOSQUITTO_MISSING || (spawnSync('mosquitto_passwd', ['-h']).error ? 'mosquitto_passwd is not installed (Debian package mosquitto)' : false);

test('under the example ACL, with the operator\'s login from files, the commands reach real gateway links and the replies come back to the operator\'s own inbox', { skip: PASSWD_MISSING, timeout: 60_000 }, async () => {
  const dir = tempDir('ser-edge-fleet-acl-');
  const passwd = join(dir, 'passwd');
  for (const [i, user] of ['desk-row-a', 'desk-row-b', 'model-operator'].entries()) {
    const made = spawnSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwd, user, `password-${user}`], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    writeFileSync(join(dir, `${user}.username`), `${user}\n`);
    writeFileSync(join(dir, `${user}.password`), `password-${user}\n`);
  }
  const broker = await startMosquitto({ extraConfig: ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${join(packageRoot(), 'firmware-config', 'mosquitto-acl.conf')}`] });
  const site = 'lyon-2';
  const links = await Promise.all(
    ['desk-row-a', 'desk-row-b'].map((gateway) => publishingGateway(broker.url, gateway, { site, usernameFile: join(dir, `${gateway}.username`), passwordFile: join(dir, `${gateway}.password`) })),
  );
  const seen: { gateway: string; name: string; payload: unknown }[] = [];
  const login = ['--username-file', join(dir, 'model-operator.username'), '--password-file', join(dir, 'model-operator.password')];
  try {
    for (const [i, gw] of links.entries()) {
      const gateway = i === 0 ? 'desk-row-a' : 'desk-row-b';
      gw.link.onCommand((command) => {
        seen.push({ gateway, name: command.name, payload: command.payload });
        if (command.name === 'model.install' && gateway === 'desk-row-b') throw new CommandError('bad_signature', 'the signature does not match the manifest');
        return { reason: command.name === 'model.install' ? 'installed' : 'promoted', active: ref('1.1.0'), previous: ref('1.0.0'), staged: null };
      });
      await gw.start();
      await gw.link.publishModelState(modelState(site, gateway));
    }
    const publish = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--all', '--canary', '1', ...login]);
    assert.equal(publish.code, 1, publish.stderr);
    assert.match(publish.stdout, /desk-row-a \(canary\)\s+ok\s+installed\s+ser-ensemble 1\.1\.0/);
    assert.match(publish.stdout, /desk-row-b\s+failed\s+bad_signature\s+ser-ensemble 1\.0\.0\s+command model\.install failed: the signature does not match the manifest/);
    assert.deepEqual(seen.map((s) => [s.gateway, s.name]), [['desk-row-a', 'model.install'], ['desk-row-b', 'model.install']]);
    ModelInstallCommand.parse(seen[0]!.payload);

    const promote = await runSerEdge(['model', 'promote', '--broker', broker.url, '--site', site, '--gateway', 'desk-row-a', ...login]);
    assert.equal(promote.code, 0, promote.stderr);
    const status = await runSerEdge(['model', 'status', '--broker', broker.url, '--site', site, ...login]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /desk-row-a\s+online\s+ser-ensemble 1\.0\.0/);
    assert.match(status.stdout, /desk-row-b\s+online/);
  } finally {
    await Promise.all(links.map((l) => l.stop()));
    await broker.stop();
  }
});

test('over TLS with a client certificate, the replies come to the inbox of the certificate\'s name', { skip: MOSQUITTO_MISSING || OPENSSL_MISSING, timeout: 60_000 }, async () => {
  const certs = generateTestCertificates();
  const broker = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, requireCertificate: true } });
  const site = newSite();
  const gw = await new Responder(site, 'gw1', () => installed()).start(broker.url, { ca: readFileSync(certs.caFile), cert: readFileSync(certs.clientCertFile), key: readFileSync(certs.clientKeyFile) });
  try {
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1', '--ca', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile]);
    assert.equal(run.code, 0, run.stderr);
    // mosquitto's use_identity_as_username makes the certificate's CN (gw-test) the username the ACL's %u reads.
    assert.match(gw.received[0]!.responseTopic ?? '', new RegExp(`^ser/v1/${site}/ops/replies/gw-test/ser-edge-model-`));
  } finally {
    await gw.stop();
    await broker.stop();
  }
});

test('a broker that takes smaller packets than the install command is named before anything is sent, with --url as the way out', { skip: MOSQUITTO_MISSING, timeout: 60_000 }, async () => {
  const broker = await startMosquitto({ extraConfig: ['max_packet_size 100000'] });
  const site = newSite();
  const gw = await new Responder(site, 'gw1', () => installed()).start(broker.url);
  try {
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /the broker takes packets of at most 100000 bytes and this install command is about \d+: serve the packed bundle over http\(s\) and give --url URL/);
    assert.equal(gw.received.length, 0);
    const byUrl = await runSerEdge(['model', 'publish', signedBundle, '--broker', broker.url, '--site', site, '--gateway', 'gw1', '--url', 'https://models.example/b.tar']);
    assert.equal(byUrl.code, 0, byUrl.stderr);
  } finally {
    await gw.stop();
    await broker.stop();
  }
});

test('against an MQTT 3.1.1 broker the replies are read on the gateways\' own reply topics, matched by correlationId', { timeout: 60_000 }, async () => {
  const aedes = new EmbeddedBroker({ port: 0 });
  await aedes.start();
  const site = newSite();
  const gw = await new Responder(site, 'gw1', () => installed('1.3.0'), { protocolVersion: 4 }).start(aedes.url);
  try {
    const run = await runSerEdge(['model', 'publish', signedBundle, '--broker', aedes.url, '--site', site, '--gateway', 'gw1']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(gw.received[0]!.responseTopic, undefined);
    assert.match(run.stdout, /gw1\s+ok\s+installed\s+ser-ensemble 1\.3\.0/);
  } finally {
    await gw.stop();
    await aedes.stop();
  }
});

describe('command lines that cannot run are refused before connecting, with exit 2', () => {
  // Nothing listens on port 9 of loopback: any attempt to connect would fail with exit 1, not 2.
  const broker = 'mqtt://127.0.0.1:9';
  const cases: [string, () => string[], RegExp][] = [
    ['no such bundle', () => ['publish', '/nonexistent/bundle', '--broker', broker, '--site', 's', '--gateway', 'g'], /BUNDLE \/nonexistent\/bundle: no such file or directory/],
    ['an unsigned bundle', () => ['publish', unsignedBundle, '--broker', broker, '--site', 's', '--gateway', 'g'], /is not signed.*sign it with ser-edge model sign/],
    ['a file that is not a packed bundle', () => ['publish', join(unsignedBundle, MANIFEST_FILE), '--broker', broker, '--site', 's', '--gateway', 'g'], /is not a packed model bundle/],
    ['a bundle over 8 MiB inline', () => ['publish', largeBundle, '--broker', broker, '--site', 's', '--gateway', 'g'], /is 9\.\d MiB packed, more than the 8\.0 MiB a command carries inline.*--url URL/],
    ['a --url that is not http(s)', () => ['publish', signedBundle, '--broker', broker, '--site', 's', '--gateway', 'g', '--url', 'ftp://x/b.tar'], /--url ftp:\/\/x\/b\.tar is not http\(s\)/],
    ['a broker URL without a scheme', () => ['publish', signedBundle, '--broker', '127.0.0.1:1883', '--site', 's', '--gateway', 'g'], /--broker 127\.0\.0\.1:1883 has no scheme/],
    ['neither --gateway nor --all', () => ['publish', signedBundle, '--broker', broker, '--site', 's'], /name the gateways: --gateway G/],
    ['both --gateway and --all', () => ['rollback', '--broker', broker, '--site', 's', '--gateway', 'g', '--all'], /either --gateway G \(one or more\) or --all, not both/],
    ['--canary larger than the gateways named', () => ['publish', signedBundle, '--broker', broker, '--site', 's', '--gateway', 'g1,g2', '--canary', '3'], /--canary 3 is more than the 2 gateways named/],
    ['a gateway named twice', () => ['promote', '--broker', broker, '--site', 's', '--gateway', 'g1', '--gateway', 'g1'], /--gateway g1 is given twice/],
    ['a gateway id with a wildcard', () => ['discard', '--broker', broker, '--site', 's', '--gateway', 'gw+'], /--gateway "gw\+" is not a site or gateway id/],
    ['a site id with a slash', () => ['status', '--broker', broker, '--site', 'a/b'], /--site "a\/b" is not a site or gateway id/],
    ['a certificate without its key', () => ['status', '--broker', 'mqtts://127.0.0.1:9', '--site', 's', '--cert', '/etc/hostname'], /--key is missing/],
    ['--shadow of no minutes', () => ['publish', signedBundle, '--broker', broker, '--site', 's', '--gateway', 'g', '--shadow', '0'], /--shadow.*expected minutes above 0/],
    ['--canary 0', () => ['publish', signedBundle, '--broker', broker, '--site', 's', '--gateway', 'g', '--canary', '0'], /--canary.*at least 1/],
    ['no --site', () => ['status', '--broker', broker], /required option '-s, --site <site>' not specified/],
  ];
  for (const [what, args, message] of cases) {
    test(`${what}`, async () => {
      const run = await runSerEdge(['model', ...args()]);
      assert.equal(run.code, 2, `${what}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, '');
    });
  }
});

test('a broker that cannot be reached exits 1, saying which', async () => {
  const run = await runSerEdge(['model', 'status', '--broker', 'mqtt://127.0.0.1:9', '--site', 's']);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /ser-edge model status: cannot connect to mqtt:\/\/127\.0\.0\.1:9/);
});

after(() => {
  for (const dir of [signedBundle, unsignedBundle, largeBundle, nearLimitBundle]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the site roster and its report', () => {
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const status = (gateway: string, state: 'online' | 'offline') => ({ schema: 1, state, ts: TS, site: 'lab', gateway, version: '0.1.0', model: { name: 'ser-ensemble', version: '1.0.0' }, backend: 'int8' });

  test('a retained payload that breaks the contract is listed with its topic and leaves the gateway out; other sites and topics are not taken', async () => {
    const { SiteRoster } = await import('../src/commands/fleet/site-roster.js');
    const { renderSiteStatus } = await import('../src/commands/fleet/fleet-report.js');
    const roster = new SiteRoster('lab');
    assert.equal(roster.apply('ser/v1/lab/gw1/status', json(status('gw1', 'online'))), true);
    assert.equal(roster.apply('ser/v1/lab/gw2/status', json({ schema: 1, state: 'sleeping' })), true);
    assert.equal(roster.apply('ser/v1/lab/gw3/model', Buffer.from('{not json')), true);
    assert.equal(roster.apply('ser/v1/other/gw9/status', json(status('gw9', 'online'))), false);
    assert.equal(roster.apply('ser/v1/lab/gw1/telemetry', json({})), false);
    assert.deepEqual(roster.withStatus, ['gw1']);
    const text = renderSiteStatus(roster);
    assert.match(text, /INVALID RETAINED PAYLOADS\n {2}ser\/v1\/lab\/gw2\/status: state: .*\n {2}ser\/v1\/lab\/gw3\/model: not JSON/);
  });

  test('an empty retained publish (a cleared topic) forgets what the topic said', async () => {
    const { SiteRoster } = await import('../src/commands/fleet/site-roster.js');
    const roster = new SiteRoster('lab');
    roster.apply('ser/v1/lab/gw1/status', json(status('gw1', 'online')));
    roster.apply('ser/v1/lab/gw1/status', Buffer.alloc(0));
    assert.deepEqual(roster.gateways, []);
  });

  test('a running shadow trial shows how far it is, and agreement before any window is a dash', async () => {
    const { shadowText } = await import('../src/commands/fleet/fleet-report.js');
    const now = Date.parse('2026-12-01T10:20:00.000Z');
    const text = shadowText('1.1.0', { startedAt: TS, endsAt: '2026-12-01T11:00:00.000Z', done: false, windows: 0, agreement: { emotion: null, level: null }, flagsPerHour: { active: 0, shadow: 0 }, flags: { active: 0, shadow: 0 } }, now);
    assert.equal(text, 'shadow trial of 1.1.0: 20 of 60 min, 0 windows; agreement emotion -, level -; flags/h active 0.0, shadow 0.0');
  });
});
