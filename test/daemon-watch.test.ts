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
  assert.match(table, /lab\/gw1\s+online\s+\d\d:\d\d:\d\d\s+knn@1/);
  assert.ok(table.indexOf('lab/gw1/hs1') < table.indexOf('lab/gw1/calm-desk'), table);
  assert.match(table, /lab\/gw1\/hs1\s+HIGH\s+0\.800\s+angry\s+call-1/);
});

const status = (gateway: string, state: 'online' | 'offline', reason?: 'shutdown' | 'lost') => ({
  schema: 1,
  state,
  ts: '2025-01-01T12:00:00.000Z',
  site: 'lab',
  gateway,
  ...(reason ? { reason } : {}),
  version: '0.1.0',
  model: { name: 'knn', version: '1' },
  backend: 'cpu',
});

test('the board shows the emotion the retained channel state carries, before any urgency event arrives', () => {
  const board = new UrgencyBoard();
  board.apply(readWatchMessage('ser/v1/lab/gw1/channel/hs1/state', json({ ...state('hs1', 'high', 0.81), emotion: 'angry' }))!);
  assert.match(board.render(), /lab\/gw1\/hs1\s+HIGH\s+0\.810\s+angry\s+call-1/);
  // A state from an older gateway, which carries no emotion, keeps what its events said.
  board.apply(readWatchMessage('ser/v1/lab/gw1/channel/hs2/urgency', json(sampleEvent(1, { channel: 'hs2', emotion: 'sad' })))!);
  board.apply(readWatchMessage('ser/v1/lab/gw1/channel/hs2/state', json(state('hs2', 'high', 0.8)))!);
  assert.match(board.render(), /lab\/gw1\/hs2\s+HIGH\s+0\.800\s+sad/);
});

test("an offline gateway's channels are shown as stale, after the live ones, with the level they last had", () => {
  const board = new UrgencyBoard();
  board.apply(readWatchMessage('ser/v1/lab/gw-live/status', json(status('gw-live', 'online')))!);
  board.apply(readWatchMessage('ser/v1/lab/gw-live/channel/calm/state', json({ ...state('calm', 'low', 0.1), gateway: 'gw-live' }))!);
  board.apply(readWatchMessage('ser/v1/lab/gw-gone/channel/hs1/state', json({ ...state('hs1', 'high', 0.9), gateway: 'gw-gone' }))!);
  board.apply(readWatchMessage('ser/v1/lab/gw-gone/status', json(status('gw-gone', 'offline', 'lost')))!);
  const table = board.render();
  const row = table.split('\n').find((l) => l.includes('lab/gw-gone/hs1'))!;
  assert.doesNotMatch(row, /HIGH\s+0\.9/, 'not shown as a live high flag');
  assert.match(row, /lab\/gw-gone\/hs1\s+stale\s+0\.900\s+-\s+call-1\s+gateway offline; last level HIGH/);
  assert.ok(table.indexOf('lab/gw-live/calm') < table.indexOf('lab/gw-gone/hs1'), 'live channels first, even a calm one');
  // A retained last will carries when it was registered, not when the gateway was lost: no time is made up for it.
  assert.match(row, /gateway offline; last level HIGH/);
  board.apply(readWatchMessage('ser/v1/lab/gw-gone/status', json(status('gw-gone', 'offline', 'lost')))!, '2025-01-01T12:34:56.000Z');
  assert.match(board.render(), /lab\/gw-gone\/hs1\s+stale .*gateway offline since \d\d:\d\d:\d\d; last level HIGH/, 'a will seen live says when');
  // Back online: live again.
  board.apply(readWatchMessage('ser/v1/lab/gw-gone/status', json(status('gw-gone', 'online')))!);
  assert.match(board.render(), /lab\/gw-gone\/hs1\s+HIGH\s+0\.900/);
});

test('every column of the gateway table starts at the same place on every line, OFFLINE (shutdown) included', () => {
  const board = new UrgencyBoard();
  board.apply(readWatchMessage('ser/v1/lab/a-very-long-gateway-name-for-row-7/status', json(status('a-very-long-gateway-name-for-row-7', 'offline', 'shutdown')))!);
  board.apply(readWatchMessage('ser/v1/lab/gw1/status', json(status('gw1', 'online')))!);
  board.apply(readWatchMessage('ser/v1/lab/gw2/status', json(status('gw2', 'offline', 'lost')))!);
  const lines = board.render().split('\n');
  const header = lines.find((l) => l.includes('site/gateway') && l.includes('status'))!;
  const rows = lines.slice(lines.indexOf(header) + 1, lines.indexOf(header) + 4);
  assert.ok(rows.some((r) => r.includes('OFFLINE (shutdown)')), rows.join('\n'));
  for (const column of ['since', 'model']) {
    const at = header.indexOf(column);
    for (const r of rows) assert.match(r.slice(at), /^(\d\d:\d\d:\d\d |- |knn@1)/, `"${column}" at column ${at} in:\n${header}\n${r}`);
  }
  assert.match(header, /host cpu%/, "cpu% is the host's load, and says so");
});

test('the retained model state names the active model of its gateway', () => {
  const board = new UrgencyBoard();
  const model = { schema: 1, ts: '2025-01-01T12:00:00.000Z', site: 'lab', gateway: 'gw1', active: { name: 'ens3', version: '2.0.0' }, previous: null, lastInstall: null };
  const message = readWatchMessage('ser/v1/lab/gw1/model', json(model));
  assert.equal(message?.ok && message.kind, 'model');
  board.apply(message!);
  assert.match(board.render(), /lab\/gw1\s+online\s+-\s+ens3@2\.0\.0/);
  assert.equal(readWatchMessage('ser/v1/lab/gw1/model', json({ ...model, active: 'ens3' }))?.ok, false);
});

test('a lost broker is one line above the tables, which stay as they were', () => {
  const board = new UrgencyBoard();
  board.apply(readWatchMessage('ser/v1/lab/gw1/channel/hs1/urgency', json(sampleEvent(1)))!);
  board.setBroker('mqtt://127.0.0.1:1883', { state: 'retrying', attempts: 3, lastError: 'connect ECONNREFUSED 127.0.0.1:1883', since: '2025-01-01T12:00:00.000Z' });
  const lines = board.render().split('\n');
  assert.match(lines[0]!, /^BROKER mqtt:\/\/127\.0\.0\.1:1883 unreachable, retrying \(3\)… connect ECONNREFUSED 127\.0\.0\.1:1883; the tables are as of \S+$/);
  assert.ok(lines.some((l) => /lab\/gw1\/hs1\s+HIGH/.test(l)));
  board.setBroker('mqtt://127.0.0.1:1883', { state: 'connected' });
  assert.equal(board.render().split('\n')[0], 'BROKER mqtt://127.0.0.1:1883 connected');
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
    model: 'ser/v1/lab/+/model',
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

test('a --broker without a scheme is refused before connecting, saying which scheme to add (exit 2)', async () => {
  for (const [given, shown] of [['127.0.0.1:1883', '127.0.0.1:1883'], ['ops:s3cret@broker.example:1883', 'broker.example:1883']] as const) {
    const watch = spawnWatchOn(given);
    assert.equal(await watch.exited, 2);
    assert.equal(watch.out.stderr, `ser-edge watch: --broker ${shown} has no scheme; add the scheme: mqtt://${shown} (mqtts://${shown} for TLS)\n`);
    assert.ok(!watch.out.stderr.includes('s3cret'));
  }
  const http = spawnWatchOn('http://127.0.0.1:1883');
  assert.equal(await http.exited, 2);
  assert.match(http.out.stderr, /--broker http:\/\/127\.0\.0\.1:1883\/? is not an MQTT URL \(http:\/\/\): use mqtt:\/\/host:1883/);
});

test('watch --json includes the retained model state', { skip: MOSQUITTO_MISSING }, async () => {
  const publisher = await connectSubscriber(broker.url, []);
  const model = { schema: 1, ts: '2025-01-01T12:00:00.000Z', site: 'lab', gateway: 'gw-model', active: { name: 'ens3', version: '2.0.0' }, previous: null, lastInstall: null };
  await publisher.client.publishAsync('ser/v1/lab/gw-model/model', JSON.stringify(model), { qos: 1, retain: true });
  const watch = spawnWatch('--site', 'lab', '--json');
  try {
    await ready(watch, publisher, 'gw-model');
    await until(() => watch.out.stdout.includes('"type":"model"'), 5000, 'the model line');
    const line = watch.out.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.type === 'model');
    assert.equal(line.topic, 'ser/v1/lab/gw-model/model');
    assert.deepEqual(line.payload, model);
  } finally {
    watch.child.kill('SIGINT');
    assert.equal(await watch.exited, 0);
    await publisher.client.publishAsync('ser/v1/lab/gw-model/model', '', { qos: 1, retain: true });
    await publisher.end();
  }
});

test('while the broker is away, watch keeps its table and says once that it is retrying; it carries on when the broker is back', { skip: MOSQUITTO_MISSING, timeout: 60_000 }, async () => {
  const own = await startMosquitto();
  const watch = spawnWatchOn(own.url, '--site', 'lab');
  try {
    const publisher = await connectSubscriber(own.url, []);
    // Retained, so it does not matter whether watch has subscribed yet.
    await publisher.client.publishAsync('ser/v1/lab/gw-away/channel/hs1/state', JSON.stringify({ ...state('hs1', 'high', 0.8), gateway: 'gw-away' }), { qos: 1, retain: true });
    await until(() => /lab\/gw-away\/hs1\s+HIGH/.test(watch.out.stdout), 10_000, 'the flag in the table');
    await publisher.end();
    await own.stop();
    await until(() => watch.out.stdout.includes('unreachable, retrying'), 10_000, 'the retrying line');
    // Several reconnect attempts (one every 2 s) go by without a line each.
    await new Promise((r) => setTimeout(r, 7000));
    assert.equal(watch.out.stderr, '', 'no ECONNREFUSED per attempt');
    const frames = watch.out.stdout.split(/^(?=BROKER )/m).filter((f) => f.includes('unreachable, retrying'));
    assert.equal(frames.length, 1, 'one frame for the outage on a pipe');
    assert.match(frames[0]!, /lab\/gw-away\/hs1\s+HIGH/, 'the table is still there');
    await own.start();
    await until(() => watch.out.stdout.lastIndexOf('connected') > watch.out.stdout.lastIndexOf('unreachable'), 15_000, 'the reconnection');
    const again = await connectSubscriber(own.url, []);
    await again.client.publishAsync('ser/v1/lab/gw-away/channel/hs2/state', JSON.stringify({ ...state('hs2', 'high', 0.8), gateway: 'gw-away' }), { qos: 1, retain: true });
    await until(() => /lab\/gw-away\/hs2\s+HIGH/.test(watch.out.stdout), 10_000, 'an event after the reconnection (subscribed again)');
    await again.end();
  } finally {
    watch.child.kill('SIGINT');
    assert.equal(await watch.exited, 0);
    await own.stop();
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
