import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UrgencyBoard, readWatchMessage, watchFilters } from '../src/commands/watch-command.js';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddedBroker } from '../src/daemon/embedded-broker.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { MOSQUITTO_MISSING, OPENSSL_MISSING, connectSubscriber, generateTestCertificates, sampleEvent, startMosquitto, type Mosquitto } from './helpers/mosquitto.js';

const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const state = (channel: string, level: 'low' | 'medium' | 'high', score: number) => ({
  schema: 1,
  ts: '2025-01-01T12:00:00.000Z',
  site: 'lab',
  gateway: 'gw1',
  channel,
  callId: 'call-1',
  level,
  score,
  eventId: null,
});

test('the board lists gateways and channels, the most urgent channel first', () => {
  const board = new UrgencyBoard();
  board.apply(readWatchMessage('ser/v1/lab/gw1/status', json({ schema: 1, state: 'online', ts: '2025-01-01T12:00:00.000Z', site: 'lab', gateway: 'gw1', version: '0.1.0', model: { name: 'knn', version: '1' }, backend: 'cpu' }))!);
  board.apply(readWatchMessage('ser/v1/lab/gw1/channel/calm-desk/state', json(state('calm-desk', 'low', 0.1)))!);
  board.apply(readWatchMessage('ser/v1/lab/gw1/channel/hs1/urgency', json(sampleEvent(1)))!);
  const table = board.render();
  assert.match(table, /lab\/gw1\s+online\s+knn@1/);
  assert.ok(table.indexOf('lab/gw1/hs1') < table.indexOf('lab/gw1/calm-desk'), table);
  assert.match(table, /lab\/gw1\/hs1\s+HIGH\s+0\.80\s+angry\s+call-1/);
});

test('a payload that breaks the schema becomes a line naming the topic and what is wrong', () => {
  const message = readWatchMessage('ser/v1/lab/gw1/channel/hs1/urgency', json({ ...sampleEvent(2), level: 'urgent' }));
  assert.equal(message?.ok, false);
  const board = new UrgencyBoard();
  board.apply(message!);
  assert.match(board.render(), /ser\/v1\/lab\/gw1\/channel\/hs1\/urgency: level: /);
  assert.equal(readWatchMessage('ser/v1/lab/gw1/status', Buffer.from('{ oops'))?.ok, false);
});

test('other topics and cleared retained messages are ignored', () => {
  assert.equal(readWatchMessage('ser/v1/lab/gw1/cmd/ping', json({})), null);
  assert.equal(readWatchMessage('ser/v1/lab/gw1/status', Buffer.alloc(0)), null);
});

test('--group puts only the urgency events behind an MQTT 5 shared subscription', () => {
  assert.deepEqual(watchFilters('lab', 'ops'), {
    status: 'ser/v1/lab/+/status',
    state: 'ser/v1/lab/+/channel/+/state',
    urgency: '$share/ops/ser/v1/lab/+/channel/+/urgency',
    telemetry: 'ser/v1/lab/+/telemetry',
  });
  assert.equal(watchFilters(undefined, undefined).urgency, 'ser/v1/+/+/channel/+/urgency');
});

let broker: Mosquitto;
before(async () => {
  if (!MOSQUITTO_MISSING) broker = await startMosquitto();
});
after(async () => {
  await broker?.stop();
});

function spawnWatch(...args: string[]) {
  return spawnWatchOn(broker.url, ...args);
}

function spawnWatchOn(url: string, ...args: string[]) {
  const child = spawn(process.execPath, [cli, 'watch', '--broker', url, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out, exited };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** watch has subscribed once it has the retained marker published before it started. */
async function ready(watch: ReturnType<typeof spawnWatch>, publisher: Awaited<ReturnType<typeof connectSubscriber>>, gateway: string) {
  await publisher.client.publishAsync(`ser/v1/lab/${gateway}/channel/marker/state`, JSON.stringify({ ...state('marker', 'low', 0), gateway }), { qos: 1, retain: true });
  await until(() => watch.out.stdout.includes('"marker"'), 10_000, 'watch to subscribe');
}

test('watch --json prints one line per valid message and reports a malformed one without stopping', { skip: MOSQUITTO_MISSING }, async () => {
  const publisher = await connectSubscriber(broker.url, []);
  const watch = spawnWatch('--site', 'lab', '--json');
  try {
    await ready(watch, publisher, 'gw-json');
    await publisher.client.publishAsync('ser/v1/lab/gw-json/channel/hs1/urgency', JSON.stringify({ ...sampleEvent(6, { gateway: 'gw-json' }), level: 'furious' }), { qos: 1 });
    await publisher.client.publishAsync('ser/v1/lab/gw-json/channel/hs1/urgency', JSON.stringify(sampleEvent(7, { gateway: 'gw-json' })), { qos: 1 });
    await until(() => watch.out.stdout.includes('"seq":7'), 5000, 'the valid event');
    assert.match(watch.out.stderr, /invalid payload on ser\/v1\/lab\/gw-json\/channel\/hs1\/urgency: .*level/);
    const line = watch.out.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.type === 'urgency');
    assert.equal(line.topic, 'ser/v1/lab/gw-json/channel/hs1/urgency');
    assert.equal(line.payload.seq, 7);
    assert.equal(watch.child.exitCode, null, 'still running');
  } finally {
    watch.child.kill('SIGINT');
    assert.equal(await watch.exited, 0);
    await publisher.end();
  }
});

test('two watchers in one --group split the urgency events between them', { skip: MOSQUITTO_MISSING }, async () => {
  const publisher = await connectSubscriber(broker.url, []);
  const a = spawnWatch('--site', 'lab', '--group', 'ops', '--json');
  const b = spawnWatch('--site', 'lab', '--group', 'ops', '--json');
  try {
    await ready(a, publisher, 'gw-share');
    await until(() => b.out.stdout.includes('"marker"'), 10_000, 'the second watcher');
    for (let seq = 1; seq <= 20; seq++) {
      await publisher.client.publishAsync('ser/v1/lab/gw-share/channel/hs1/urgency', JSON.stringify(sampleEvent(seq, { gateway: 'gw-share' })), { qos: 1 });
    }
    const count = (out: string) => out.split('\n').filter((l) => l.includes('"type":"urgency"')).length;
    await until(() => count(a.out.stdout) + count(b.out.stdout) >= 20, 5000, 'all 20 events');
    assert.equal(count(a.out.stdout) + count(b.out.stdout), 20, 'each event reaches exactly one of the group');
    assert.ok(count(a.out.stdout) > 0 && count(b.out.stdout) > 0, `split ${count(a.out.stdout)}/${count(b.out.stdout)}`);
  } finally {
    a.child.kill('SIGINT');
    b.child.kill('SIGINT');
    await Promise.all([a.exited, b.exited]);
    await publisher.end();
  }
});

test('watch against an unreachable broker says so and exits 1', { skip: MOSQUITTO_MISSING }, async () => {
  const child = spawn(process.execPath, [cli, 'watch', '--broker', 'mqtt://127.0.0.1:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /cannot connect to mqtt:\/\/127\.0\.0\.1:1/);
});

describe('watch against an MQTT 3.1.1-only broker (aedes)', () => {
  let aedes: EmbeddedBroker;
  before(async () => {
    aedes = new EmbeddedBroker({ port: 0 });
    await aedes.start();
  });
  after(async () => {
    await aedes?.stop();
  });

  /** watch is connected and subscribed once it prints the retained marker published before it started. */
  async function readyOn3(watch: ReturnType<typeof spawnWatchOn>, gateway: string) {
    const publisher = await connectSubscriber(aedes.url, [], { protocolVersion: 4 });
    await publisher.client.publishAsync(`ser/v1/lab/${gateway}/channel/marker/state`, JSON.stringify({ ...state('marker', 'low', 0), gateway }), { qos: 1, retain: true });
    await until(() => watch.out.stdout.includes('"marker"'), 10_000, 'watch to subscribe');
    await publisher.end();
  }

  test('with --group, watch warns on stderr that the broker fell back to MQTT 3.1.1 and urgency events may never arrive', { timeout: 20_000 }, async () => {
    const watch = spawnWatchOn(aedes.url, '--site', 'lab', '--group', 'ops', '--json');
    try {
      await readyOn3(watch, 'gw-v3-group');
      assert.match(watch.out.stderr, /warning: the broker at mqtt:\/\/127\.0\.0\.1:\d+\/? only speaks MQTT 3\.1\.1, but --group ops is an MQTT 5 shared subscription/);
      assert.match(watch.out.stderr, /urgency events may never arrive/);
    } finally {
      watch.child.kill('SIGINT');
      assert.equal(await watch.exited, 0);
    }
  });

  test('without --group, watch on an MQTT 3.1.1 broker prints no warning', { timeout: 20_000 }, async () => {
    const watch = spawnWatchOn(aedes.url, '--site', 'lab', '--json');
    try {
      await readyOn3(watch, 'gw-v3-plain');
      assert.equal(watch.out.stderr, '');
    } finally {
      watch.child.kill('SIGINT');
      assert.equal(await watch.exited, 0);
    }
  });
});

describe('watch over TLS with a client certificate and credentials from files', { skip: MOSQUITTO_MISSING || OPENSSL_MISSING }, () => {
  const credentials = { username: 'central-ops', password: 'wAtch-s3cret-99' };
  let certs: ReturnType<typeof generateTestCertificates>;
  let tlsBroker: Mosquitto;
  let files: { user: string; pass: string };
  before(async () => {
    certs = generateTestCertificates();
    const dir = tempDir('ser-edge-watch-tls-');
    const passwordFile = join(dir, 'mosquitto.passwd');
    const made = spawnSync('mosquitto_passwd', ['-b', '-c', passwordFile, credentials.username, credentials.password], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    files = { user: join(dir, 'user'), pass: join(dir, 'pass') };
    await writeFile(files.user, `${credentials.username}\n`);
    await writeFile(files.pass, `${credentials.password}\n`);
    tlsBroker = await startMosquitto({
      tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, requireCertificate: true },
      extraConfig: ['allow_anonymous false', `password_file ${passwordFile}`],
    });
  });
  after(async () => {
    await tlsBroker?.stop();
  });

  test('--ca, --cert, --key, --username-file and --password-file reach an mqtts broker that requires them all, and the secrets are never printed', { timeout: 20_000 }, async () => {
    const { readFileSync } = await import('node:fs');
    const publisher = await connectSubscriber(tlsBroker.url, [], {
      ca: readFileSync(certs.caFile),
      cert: readFileSync(certs.clientCertFile),
      key: readFileSync(certs.clientKeyFile),
      ...credentials,
    });
    const watch = spawnWatchOn(
      tlsBroker.url,
      ...['--site', 'lab', '--json', '--ca', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile],
      ...['--username-file', files.user, '--password-file', files.pass],
    );
    try {
      await publisher.client.publishAsync('ser/v1/lab/gw-tls/channel/marker/state', JSON.stringify({ ...state('marker', 'low', 0), gateway: 'gw-tls' }), { qos: 1, retain: true });
      await until(() => watch.out.stdout.includes('"marker"'), 10_000, `watch to read the broker; stderr: ${watch.out.stderr}`);
      await publisher.client.publishAsync('ser/v1/lab/gw-tls/channel/hs1/urgency', JSON.stringify(sampleEvent(3, { gateway: 'gw-tls' })), { qos: 1 });
      await until(() => watch.out.stdout.includes('"seq":3'), 5000, 'the urgency event');
    } finally {
      watch.child.kill('SIGINT');
      assert.equal(await watch.exited, 0);
      await publisher.end();
    }
    for (const text of [watch.out.stdout, watch.out.stderr]) {
      assert.ok(!text.includes(credentials.password) && !text.includes(credentials.username), 'no credential is printed');
    }
  });

  test('without the password the broker refuses watch, which says so without printing the username', { timeout: 20_000 }, async () => {
    const watch = spawnWatchOn(tlsBroker.url, '--ca', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile, '--username-file', files.user);
    const code = await watch.exited;
    assert.equal(code, 1);
    assert.match(watch.out.stderr, /cannot connect to mqtts:\/\/127\.0\.0\.1:\d+/);
    assert.ok(!watch.out.stderr.includes(credentials.username));
  });

  test('a TLS file that cannot be read is named with its option, and watch exits 2 before connecting', async () => {
    const missing = join(certs.dir, 'no-such-ca.crt');
    const watch = spawnWatchOn(tlsBroker.url, '--ca', missing);
    assert.equal(await watch.exited, 2);
    assert.equal(watch.out.stderr, `ser-edge watch: --ca ${missing}: cannot read it (ENOENT); check the path and its permissions\n`);
  });

  test('--cert without --key says which one is missing, and watch exits 2', async () => {
    const watch = spawnWatchOn(tlsBroker.url, '--ca', certs.caFile, '--cert', certs.clientCertFile);
    assert.equal(await watch.exited, 2);
    assert.match(watch.out.stderr, /--key is missing: a client certificate \(--cert\) and its key \(--key\) go together/);
  });
});
