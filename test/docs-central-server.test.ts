import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { ulid } from 'ulid';
import type { ChannelState, StatusPayload, UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { labSiteConfig, spawnDaemon, writeSyntheticModel, writeVoiceWav, type DaemonProcess } from './helpers/daemon-process.js';
import { MOSQUITTO_MISSING, OPENSSL_MISSING, connectSubscriber, generateTestCertificates, startMosquitto, type Mosquitto, type TestSubscriber } from './helpers/mosquitto.js';
import { assertMatchesPublishedSchema } from './helpers/published-schemas.js';

/**
 * docs/central-server.md, run as the central team would, against a real mosquitto set up
 * with the guide's own broker config, ACL and logins, and a real ser-edge gateway that
 * raises flags. Every fenced block carries a `<!-- doc-check: KIND [ARG] -->` line saying
 * how it is checked, and the last test fails for a block nothing checked.
 *
 * The guide's placeholders stand for this test's machine: `mqtt.callcentre.example` is
 * localhost (the broker's certificate names it), port 8883 the broker's free loopback port,
 * `/etc/ssl/certs/callcentre-ca.pem` and `/etc/mosquitto/…` files in a temporary folder,
 * `~` a temporary home, `sudo` is dropped, `python3` is Debian's /usr/bin/python3 (not a
 * pyenv shim, whose Python may lack the Debian packages), and `ser-edge` is bin/ser-edge.js.
 * Commands that would run until stopped get bounds: `-C N -W S` for mosquitto_sub, SIGTERM
 * for the consumers.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const guidePath = join(repoRoot, 'docs', 'central-server.md');
/** Debian's Python, not a pyenv shim; SER_EDGE_DOCS_PYTHON runs the guide on another one (a venv with paho-mqtt 2, say). */
const PYTHON = process.env.SER_EDGE_DOCS_PYTHON || '/usr/bin/python3';

const has = (command: string, args: string[]) => spawnSync(command, args, { stdio: 'ignore' }).error === undefined;
const PYTHON_MISSING =
  spawnSync(PYTHON, ['-c', 'import paho.mqtt.client, jsonschema'], { stdio: 'ignore' }).status === 0
    ? false
    : `${PYTHON} lacks paho-mqtt or jsonschema: apt-get install -y python3-paho-mqtt python3-jsonschema (CI does) to run the guide's Python examples`;
const CLIENTS_MISSING = has('mosquitto_sub', ['--help']) && has('mosquitto_passwd', ['-h']) ? false : 'mosquitto_sub or mosquitto_passwd is not installed: apt-get install -y mosquitto mosquitto-clients (CI does)';
const skip = MOSQUITTO_MISSING || CLIENTS_MISSING || OPENSSL_MISSING || PYTHON_MISSING;

// ------------------------------------------------------------------ the guide's blocks

interface Block {
  line: number;
  kind: string;
  arg: string;
  text: string;
}

function blocksOf(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```/.test(lines[i]!)) continue;
    const marker = /^<!-- doc-check: ([a-z-]+)(?: (\S+))? -->$/.exec(lines[i - 1] ?? '');
    assert.ok(marker, `docs/central-server.md:${i + 1}: a block without a <!-- doc-check: … --> line above it; say how the test checks it`);
    const end = lines.findIndex((l, j) => j > i && l === '```');
    assert.ok(end > i, `docs/central-server.md:${i + 1}: the block is never closed`);
    blocks.push({ line: i + 1, kind: marker[1]!, arg: marker[2] ?? '', text: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return blocks;
}

const blocks = blocksOf(readFileSync(guidePath, 'utf8'));
const checked = new Set<Block>();

function block(kind: string, arg = ''): Block {
  const found = blocks.filter((b) => b.kind === kind && b.arg === arg);
  assert.equal(found.length, 1, `docs/central-server.md has ${found.length} blocks marked "doc-check: ${kind} ${arg}", expected one`);
  checked.add(found[0]!);
  return found[0]!;
}

/** A shell block's commands, `\` continuations joined, comments and blank lines dropped. */
function commandsOf(b: Block): string[] {
  const out: string[] = [];
  const lines = b.text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let command = lines[i]!;
    while (command.endsWith('\\')) command = `${command.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
    if (command.trim() !== '' && !command.trim().startsWith('#')) out.push(command.trim());
  }
  return out;
}

// ------------------------------------------------------------------ this test's machine

const work = tempDir('ser-edge-docs-central-');
const home = join(work, 'home');
const etc = join(work, 'etc');
let certs: ReturnType<typeof generateTestCertificates>;
let broker: Mosquitto;
let daemon: DaemonProcess;
let truth: TestSubscriber;
const passwords: Record<string, string> = { 'desk-row-a': 'gateway-password-for-the-test' };
const started: ShellProcess[] = [];

const brokerUrl = () => `mqtts://localhost:${broker.port}`;
const login = (user: string) => ({ username: user, password: passwords[user]!, ca: readFileSync(certs.caFile), reconnectPeriod: 200 });

/** The guide's text as it applies on this machine (see the file comment). */
function onThisMachine(text: string): string {
  let out = text
    .replaceAll('mqtt.callcentre.example', 'localhost')
    .replaceAll(/(-p |--port |:)8883\b/g, `$1${broker?.port ?? 8883}`)
    .replaceAll('/etc/ssl/certs/callcentre-ca.pem', certs.caFile)
    .replaceAll('/etc/mosquitto/certs/callcentre-ca.pem', certs.caFile)
    .replaceAll('/etc/mosquitto/certs/broker.crt', certs.serverCertFile)
    .replaceAll('/etc/mosquitto/certs/broker.key', certs.serverKeyFile)
    .replaceAll('/etc/mosquitto/', `${etc}/`);
  out = out.replace(/^sudo /, '');
  out = out.replaceAll(/(^|\| )python3 /g, `$1${PYTHON} `);
  out = out.replace(/^ser-edge /, `${process.execPath} ${join(repoRoot, 'bin', 'ser-edge.js')} `);
  return out;
}

interface ShellProcess {
  child: ChildProcess;
  what: string;
  stdout(): string;
  stderr(): string;
  /** stdout's JSON lines (the Python consumer's decisions). */
  records(): Record<string, unknown>[];
  waitFor(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** One command of the guide, through bash in the checkout with the test's home, as a user would type it. */
function runCommand(command: string, what: string, stdin?: string): ShellProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.XDG_CONFIG_HOME; // mosquitto_sub would read its defaults from there instead of ~/.config
  const piped = command.includes('|');
  const child = spawn('bash', ['-c', piped ? command : `exec ${command}`], { cwd: repoRoot, env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  if (stdin !== undefined) child.stdin!.on('error', () => {}).end(stdin); // a child that exits early must not fail the test with EPIPE
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal); // bash and what it started: a pipeline is more than one process
    } catch {
      // already gone
    }
  };
  process.once('exit', () => signalGroup('SIGKILL'));
  const proc: ShellProcess = {
    child,
    what,
    stdout: () => out,
    stderr: () => err,
    records: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    waitFor(check, waited, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const test = () => {
          if (!check()) return;
          listeners.delete(test);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          listeners.delete(test);
          reject(new Error(`${what}: timed out after ${timeoutMs} ms waiting for ${waited}\nstdout:\n${out.slice(-3000)}\nstderr:\n${err.slice(-2000)}`));
        }, timeoutMs);
        listeners.add(test);
        void exited.then(() => setTimeout(test, 20));
        test();
      });
    },
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) signalGroup('SIGTERM');
      return exited;
    },
  };
  started.push(proc);
  return proc;
}

/** Resolves once `check` holds, looked at every 50 ms: for conditions over several processes' output. */
async function eventually(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The guide's mosquitto_sub command with bounds added in front of its own options. */
const bounded = (command: string, bounds: string) => command.replace(/^mosquitto_sub /, `mosquitto_sub ${bounds} `);

type ConsumerRecord = Record<string, unknown> & { type: string };
interface QueueRow {
  gateway: string;
  channel: string;
  callId: string | null;
  level: string;
  emotion: string | null;
  score: number;
  since: string;
  stale: boolean;
}
const recordsOf = (p: ShellProcess) => p.records() as ConsumerRecord[];
const lastQueue = (p: ShellProcess): QueueRow[] | undefined => (recordsOf(p).filter((r) => r.type === 'queue').at(-1)?.calls as QueueRow[] | undefined);
/** The latest queue a consumer printed, as `channel level` pairs. */
const queueShown = (p: ShellProcess) => lastQueue(p)?.map((r) => `${r.channel} ${r.level}`).join(', ');
const eventIds = (p: ShellProcess, types = ['event']) => recordsOf(p).filter((r) => types.includes(r.type)).map((r) => r.id as string);

const truthEvents = () => truth.messages.filter((m) => m.topic.endsWith('/urgency') && !m.retain).map((m) => m.json<UrgencyEvent>());
const channelEvents = (channel: string) => truthEvents().filter((e) => e.channel === channel);

async function publishAs(user: string, topic: string, payload: string, retain = false): Promise<void> {
  const { default: mqtt } = await import('mqtt');
  const client: MqttClient = await mqtt.connectAsync(brokerUrl(), { ...login(user), protocolVersion: 5 });
  try {
    await client.publishAsync(topic, payload, { qos: 1, retain });
  } finally {
    await client.endAsync();
  }
}

// ------------------------------------------------------------------ the run

let feed: ShellProcess;
let validateOne: ShellProcess;
let consumer: ShellProcess;
let groupMembers: ShellProcess[];
const GATEWAY = 'lyon-2/desk-row-a';
/** Calls replayed fast (each raises a flag and ends, clearing it) while desk-1 stays angry and desk-5 calm. */
const FAST_CHANNELS = ['desk-2', 'desk-3', 'desk-4'];

describe('docs/central-server.md', () => {
  before(async () => {
    if (skip) return;
    mkdirSync(join(home, '.config', 'ser-edge'), { recursive: true });
    mkdirSync(join(etc, 'certs'), { recursive: true });
    certs = generateTestCertificates(join(etc, 'certs'));
    const modelReady = writeSyntheticModel(work);

    // The consumers' login, as section 5 writes it (and the same password in the consumer's files).
    const clientConfig = block('client-config');
    writeFileSync(join(home, '.config', 'mosquitto_sub'), `${clientConfig.text}\n`, { mode: 0o600 });
    const defaults = Object.fromEntries([...clientConfig.text.matchAll(/^(-[uP]) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    assert.ok(defaults['-u'] && defaults['-P'], 'the mosquitto_sub defaults give -u and -P');
    passwords[defaults['-u']!] = defaults['-P']!;
    writeFileSync(join(home, '.config', 'ser-edge', `${defaults['-u']}.username`), `${defaults['-u']}\n`, { mode: 0o600 });
    writeFileSync(join(home, '.config', 'ser-edge', `${defaults['-u']}.password`), `${defaults['-P']}\n`, { mode: 0o600 });

    // Section 8: the broker's config, then its setup commands (the restart starts this test's broker).
    const config = block('broker-config').text.split('\n');
    assert.ok(config.includes('listener 8883'), 'the broker config has the TLS listener');
    const brokerLines = config.filter((l) => l !== 'listener 8883' && !l.startsWith('#')).map(onThisMachine);
    for (const command of commandsOf(block('broker-setup'))) {
      const here = onThisMachine(command);
      const passwd = /^mosquitto_passwd (?:-c )?\S+ (\S+)$/.exec(here);
      if (passwd) {
        const user = passwd[1]!;
        assert.ok(passwords[user], `${command}: the test has no password for ${user}`);
        const run = runCommand(here, command, `${passwords[user]}\n${passwords[user]}\n`);
        assert.equal(await run.exited, 0, `${command}: ${run.stderr()}`);
      } else if (here.startsWith('cp ')) {
        const run = runCommand(here, command);
        assert.equal(await run.exited, 0, `${command}: ${run.stderr()}`);
      } else if (here === 'systemctl restart mosquitto') {
        // This test's broker: its own listener on a free loopback port, then the guide's lines, which apply to it.
        broker = await startMosquitto({ extraConfig: [...brokerLines, 'log_type subscribe'] });
      } else {
        assert.fail(`docs/central-server.md: no check for the broker setup command \`${command}\``);
      }
    }
    assert.ok(broker, 'the broker setup restarts mosquitto');

    truth = await connectSubscriber(brokerUrl(), ['ser/v1/#'], login('central-queue'));
    feed = runCommand(bounded(onThisMachine(commandsOf(block('run', 'urgency-feed'))[0]!), '-C 3 -W 40'), 'the urgency feed');
    validateOne = runCommand(bounded(onThisMachine(commandsOf(block('run', 'validate-one'))[0]!), '-W 40'), 'validating one event');
    consumer = runCommand(onThisMachine(commandsOf(block('run', 'queue-consumer'))[0]!), 'the queue consumer');
    groupMembers = commandsOf(block('run', 'queue-group')).map((c, i) => runCommand(onThisMachine(c), `group member ${i + 1}`));
    assert.equal(groupMembers.length, 2, 'the group example starts two consumers');
    // Every consumer subscribed before the gateway says a word: the broker logs each subscription.
    const subscribed = () => broker.output().split('\n').filter((l) => l.endsWith('/channel/+/urgency')).length;
    const deadline = Date.now() + 30_000;
    while (subscribed() < 5) {
      for (const p of [consumer, ...groupMembers]) if (p.child.exitCode !== null) assert.fail(`${p.what} exited: ${p.stderr()}`);
      assert.ok(Date.now() < deadline, `only ${subscribed()} of 5 urgency subscriptions after 30 s:\n${broker.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const modelDir = await modelReady;
    const angry = await writeVoiceWav(join(work, 'angry.wav'), [['angry', 10]]);
    const calm = await writeVoiceWav(join(work, 'calm.wav'), [['calm', 10]], 300);
    const file = (path: string, id: string, realtime: boolean) => ({ type: 'file', path, realtime, loop: realtime, channels: [{ id, role: 'customer' }] });
    writeFileSync(join(work, 'gateway.username'), 'desk-row-a\n');
    writeFileSync(join(work, 'gateway.password'), `${passwords['desk-row-a']}\n`);
    daemon = spawnDaemon(
      join(work, 'gateway.json'),
      labSiteConfig({ dir: work, brokerUrl: brokerUrl(), modelDir }, 'desk-row-a', [file(angry, 'desk-1', true), file(calm, 'desk-5', true), ...FAST_CHANNELS.map((id) => file(angry, id, false))], {
        site: 'lyon-2',
        mqtt: { tls: { ca: certs.caFile }, usernameFile: join(work, 'gateway.username'), passwordFile: join(work, 'gateway.password') },
      }),
    );
    // The gateway's work: desk-1 flagged high and kept so, each fast call raised and cleared.
    await truth.waitFor(
      () => channelEvents('desk-1').some((e) => e.level === 'high') && FAST_CHANNELS.every((c) => channelEvents(c).some((e) => e.kind === 'clear')),
      30_000,
      'desk-1 flagged high and every fast call cleared',
    );
    const ids = () => truthEvents().map((e) => e.id);
    // Received is what is waited for here, taken or judged late: how the consumer judged
    // each event is what the tests below check.
    const missing = () => truthEvents().filter((e) => !eventIds(consumer, ['event', 'late']).includes(e.id)).map((e) => `${e.channel} seq ${e.seq}`);
    await eventually(() => missing().length === 0, 'every event at the queue consumer', 10_000).catch((error: Error) => {
      throw new Error(`${error.message}; missing ${missing().join(', ')}\nconsumer stdout:\n${consumer.stdout()}\nstderr:\n${consumer.stderr()}`);
    });
    await eventually(() => groupMembers.flatMap((g) => eventIds(g, ['event', 'late'])).length >= ids().length, "the group's events", 10_000);
  });

  after(async () => {
    await Promise.all(started.map((p) => p.stop()));
    if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
    await truth?.end();
    await broker?.stop();
  });

  test('the packages the guide installs are the ones .ci/run installs', () => {
    const [command, ...more] = commandsOf(block('packages'));
    assert.equal(more.length, 0);
    const packages = /^sudo apt-get install (.+)$/.exec(command!)?.[1]?.split(' ');
    assert.ok(packages, `not an apt-get install: ${command}`);
    const ci = readFileSync(join(repoRoot, '.ci', 'run'), 'utf8');
    const ciLine = /^\s*apt-get install -y --no-install-recommends (.+)$/m.exec(ci)?.[1]?.split(' ') ?? [];
    for (const p of packages) assert.ok(ciLine.includes(p), `.ci/run does not install ${p}`);
  });

  test('the consumer in full is docs/examples/central_queue.py, byte for byte', () => {
    const b = block('file', 'docs/examples/central_queue.py');
    assert.equal(`${b.text}\n`, readFileSync(join(repoRoot, b.arg), 'utf8'), 'copy docs/examples/central_queue.py into the block at the end of the guide');
  });

  test('the example payloads match their schemas', () => {
    for (const b of blocks.filter((x) => x.kind === 'payload')) {
      checked.add(b);
      assertMatchesPublishedSchema(b.arg, JSON.parse(b.text));
    }
  });

  test("the ACL lines shown are firmware-config/mosquitto-acl.conf's", () => {
    const acl = readFileSync(join(repoRoot, 'firmware-config', 'mosquitto-acl.conf'), 'utf8').split('\n');
    for (const line of block('acl').text.split('\n').filter((l) => l.trim() !== '')) assert.ok(acl.includes(line), `not in the example ACL: ${line}`);
  });

  test("mosquitto_sub, as the guide runs it, prints the gateway's urgency events, each valid against its schema", { skip }, async () => {
    assert.equal(await feed.exited, 0, `mosquitto_sub: ${feed.stderr()}`);
    const lines = feed.stdout().trim().split('\n');
    assert.equal(lines.length, 3, 'the three messages -C 3 asked for');
    for (const line of lines) {
      const [topic, ...rest] = line.split(' ');
      const event = JSON.parse(rest.join(' ')) as UrgencyEvent;
      assert.equal(topic, `ser/v1/lyon-2/desk-row-a/channel/${event.channel}/urgency`);
      assertMatchesPublishedSchema('urgency-event.schema.json', event);
      assert.ok(truthEvents().some((e) => e.id === event.id), 'an event the gateway published');
    }
  });

  test("the command-line check passes a real event against schemas/urgency-event.schema.json", { skip }, async () => {
    assert.equal(await validateOne.exited, 0, validateOne.stderr());
    assert.equal(validateOne.stdout().trim(), 'valid');
  });

  test('the Python consumer takes every event once, in the order the gateway numbered them, with no gap', { skip }, () => {
    // Taken, none judged late: a channel's state reaches the broker after the events stored
    // before it, so a fast call's raise and clear come before the state of its end.
    const taken = recordsOf(consumer).filter((r) => r.type === 'event');
    assert.deepEqual(
      taken.map((r) => r.id),
      truthEvents().map((e) => e.id),
    );
    const seqs = taken.map((r) => r.seq as number);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.deepEqual(recordsOf(consumer).filter((r) => ['late', 'invalid', 'duplicate', 'seq-gap'].includes(r.type)), []);
    assert.ok(taken.every((r) => r.gateway === GATEWAY));
  });

  test('the Python consumer queues the angry caller first, above a calm call in progress, and drops finished calls', { skip }, async () => {
    await consumer.waitFor(() => queueShown(consumer) === 'desk-1 high, desk-5 low', 'desk-1 high above desk-5 low');
    const queue = lastQueue(consumer)!;
    assert.equal(queue[0]!.emotion, 'angry');
    assert.equal(queue[0]!.callId, channelEvents('desk-1').at(-1)!.callId);
    assert.ok(queue.every((r) => !r.stale));
    // Each fast call was queued high while it was flagged, and is gone now that it has ended.
    const queues = recordsOf(consumer).filter((r) => r.type === 'queue').map((r) => r.calls as QueueRow[]);
    for (const channel of FAST_CHANNELS) {
      const { callId } = channelEvents(channel)[0]!;
      assert.ok(queues.some((calls) => calls.some((r) => r.channel === channel && r.callId === callId && r.level === 'high')), `${channel}'s call was never queued high`);
    }
  });

  test('two consumers in one shared-subscription group get each event exactly once between them', { skip }, () => {
    const shares = groupMembers.map((m) => eventIds(m, ['event', 'late']));
    for (const [i, share] of shares.entries()) assert.ok(share.length > 0, `member ${i + 1} got none of the events`);
    const all = shares.flat();
    assert.deepEqual([...all].sort(), truthEvents().map((e) => e.id).sort(), 'every event, and none twice');
  });

  test('each member of the group queues every call, from the channel states it does not share', { skip }, async () => {
    for (const member of groupMembers) {
      await member.waitFor(() => queueShown(member) === 'desk-1 high, desk-5 low', 'desk-1 high above desk-5 low');
      assert.deepEqual(recordsOf(member).filter((r) => r.type === 'late'), [], `${member.what} judged none of its share late`);
    }
  });

  test('a payload that breaks its schema is reported with its topic, and the consumer goes on', { skip }, async () => {
    const topic = 'ser/v1/lyon-2/desk-row-a/channel/desk-9/urgency';
    const bad = { ...channelEvents('desk-2')[0]!, channel: 'desk-9', level: 'urgent' };
    await publishAs('desk-row-a', topic, JSON.stringify(bad));
    await consumer.waitFor(() => recordsOf(consumer).some((r) => r.type === 'invalid'), 'the invalid line');
    const line = recordsOf(consumer).find((r) => r.type === 'invalid')!;
    assert.equal(line.topic, topic);
    assert.match(String(line.problem), /^level: 'urgent' is not one of/);
    assert.equal(consumer.child.exitCode, null, 'still running');
  });

  test('an event the gateway publishes again with the same id is dropped by the consumer, and reaches one member of the group', { skip }, async () => {
    const original = truth.messages.find((m) => m.topic.endsWith('/urgency'))!;
    const id = original.json<UrgencyEvent>().id;
    await publishAs('desk-row-a', original.topic, original.payload.toString());
    await consumer.waitFor(() => recordsOf(consumer).some((r) => r.type === 'duplicate' && r.id === id), 'the duplicate line');
    assert.equal(eventIds(consumer, ['event', 'late']).filter((x) => x === id).length, 1, 'taken once');
    const copies = () => groupMembers.flatMap((m) => eventIds(m, ['event', 'late', 'duplicate'])).filter((x) => x === id).length;
    await eventually(() => copies() === 2, 'the copy at one member of the group');
  });

  test('a state that arrives before its event, a clear older than the call\'s end, and a seq gap: the consumer sorts them out', { skip }, async () => {
    const base = 'ser/v1/lyon-2/desk-row-a/channel/desk-7';
    const template = channelEvents('desk-2')[0]!;
    const lastSeq = Math.max(...truthEvents().map((e) => e.seq));
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const raise: UrgencyEvent = { ...template, id: ulid(), seq: lastSeq + 3, ts: at(0), channel: 'desk-7', callId: 'pbx-7', kind: 'raise', level: 'medium', previousLevel: 'low', score: 0.6, emotion: 'sad' };
    const state = (overrides: Partial<ChannelState>): ChannelState => ({ schema: 1, ts: at(5), site: 'lyon-2', gateway: 'desk-row-a', channel: 'desk-7', callId: 'pbx-7', level: 'medium', score: 0.6, eventId: raise.id, ...overrides });
    const records = () => recordsOf(consumer).filter((r) => r.id === raise.id || r.type === 'seq-gap');

    // The state of the raise first, then the raise itself (as gateways before the state waited for
    // its events could send them): the event behind the present, not a late one.
    await publishAs('desk-row-a', `${base}/state`, JSON.stringify(state({})), true);
    await publishAs('desk-row-a', `${base}/urgency`, JSON.stringify(raise));
    await consumer.waitFor(() => records().length === 2, 'the gap and the raise');
    assert.deepEqual(
      records().map((r) => r.type),
      ['seq-gap', 'event'],
    );
    assert.deepEqual(records()[0], { type: 'seq-gap', gateway: GATEWAY, after: lastSeq, next: lastSeq + 3, outboxDropped: { low: 0, medium: 0, high: 0 } });
    // The queue line follows the event's line: wait for the queue the event made, desk-7
    // between the calls around it: every high call above it, every low one below.
    const placed = () => {
      const rows = lastQueue(consumer) ?? [];
      const at = rows.findIndex((r) => r.channel === 'desk-7');
      return at >= 0 && rows[at]!.level === 'medium' && rows[at]!.emotion === 'sad' && rows.every((r, i) => (i < at ? r.level === 'high' : i > at ? r.level === 'low' : true));
    };
    await consumer.waitFor(placed, 'desk-7 medium with the emotion of its event, between the high and the low calls');
    const others = lastQueue(consumer)!.filter((r) => r.channel !== 'desk-7').map((r) => r.channel);

    // The call ends (idle state), then a clear made before that end arrives: late, and the call stays gone.
    await publishAs('desk-row-a', `${base}/state`, JSON.stringify(state({ ts: at(2000), callId: null, level: 'low', score: 0.2, eventId: null })), true);
    await consumer.waitFor(() => lastQueue(consumer)?.every((r) => r.channel !== 'desk-7') === true, 'desk-7 gone');
    const clear: UrgencyEvent = { ...raise, id: ulid(), seq: lastSeq + 4, ts: at(1000), kind: 'clear', level: 'low', previousLevel: 'medium', score: 0.3 };
    await publishAs('desk-row-a', `${base}/urgency`, JSON.stringify(clear));
    await consumer.waitFor(() => recordsOf(consumer).some((r) => r.id === clear.id), 'the clear');
    assert.equal(recordsOf(consumer).find((r) => r.id === clear.id)!.type, 'late');
    assert.deepEqual(
      lastQueue(consumer)!.map((r) => r.channel),
      others,
      'the late clear brought desk-7 back into no queue',
    );
  });

  test("the consumer's output looks like the guide's example", { skip }, () => {
    const real = recordsOf(consumer);
    for (const example of block('output', 'queue-consumer').text.split('\n').map((l) => JSON.parse(l) as ConsumerRecord)) {
      const seen = real.find((r) => r.type === example.type && (r.type !== 'queue' || (r.calls as QueueRow[]).length > 0));
      assert.ok(seen, `the consumer printed no "${example.type}" line`);
      assert.deepEqual(Object.keys(example), Object.keys(seen), `keys of a "${example.type}" line`);
      if (example.type === 'queue') {
        const row = (seen.calls as QueueRow[])[0]!;
        for (const call of example.calls as QueueRow[]) assert.deepEqual(Object.keys(call), Object.keys(row), 'keys of a queue row');
      }
    }
  });

  test('a late subscriber sees the retained status, channel states, telemetry and model', { skip }, async () => {
    const snapshot = runCommand(onThisMachine(commandsOf(block('run', 'retained-snapshot'))[0]!), 'the retained snapshot');
    const code = await snapshot.exited;
    // 0: it stopped at the first live message; 27: -W ran out first.
    assert.ok(code === 0 || code === 27, `mosquitto_sub exited ${code}: ${snapshot.stderr()}`);
    const messages = new Map(
      snapshot
        .stdout()
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf(' ')), JSON.parse(line.slice(line.indexOf(' ') + 1)) as Record<string, unknown>]),
    );
    const base = 'ser/v1/lyon-2/desk-row-a';
    const schemaOf = (topic: string) => (topic.endsWith('/status') ? 'status' : topic.endsWith('/state') ? 'channel-state' : topic.endsWith('/telemetry') ? 'telemetry' : 'model-state');
    for (const [topic, payload] of messages) assertMatchesPublishedSchema(`${schemaOf(topic)}.schema.json`, payload);
    assert.equal((messages.get(`${base}/status`) as StatusPayload | undefined)?.state, 'online');
    assert.ok(messages.has(`${base}/telemetry`) && messages.has(`${base}/model`), `telemetry and model among ${[...messages.keys()].join(', ')}`);
    const state = (channel: string) => messages.get(`${base}/channel/${channel}/state`) as ChannelState | undefined;
    assert.deepEqual([state('desk-1')?.level, state('desk-1')?.callId], ['high', channelEvents('desk-1').at(-1)!.callId]);
    for (const channel of FAST_CHANNELS) assert.deepEqual([state(channel)?.level, state(channel)?.callId], ['low', null], `${channel} is between calls`);
  });

  test('a consumer that starts late builds the queue from the retained state alone', { skip }, async () => {
    const late = runCommand(onThisMachine(commandsOf(block('run', 'queue-consumer'))[0]!), 'the late consumer');
    await late.waitFor(() => queueShown(late) === 'desk-1 high, desk-5 low', 'desk-1 high above desk-5 low');
    assert.deepEqual(eventIds(late), [], 'no event needed');
    await late.stop();
  });

  test('ser-edge watch, as the guide runs it, shows the gateway and its channels', { skip }, async () => {
    const watch = runCommand(onThisMachine(commandsOf(block('run', 'watch'))[0]!), 'ser-edge watch');
    await watch.waitFor(() => watch.stdout().includes(`${GATEWAY}/desk-1`) && watch.stdout().includes(GATEWAY), 'the gateway and desk-1 in the table');
    assert.equal(await watch.stop(), 0, watch.stderr());
  });

  test('the consumer stops with exit code 1 and says why when the broker refuses its login or its CA does not match', { skip }, async () => {
    const command = onThisMachine(commandsOf(block('run', 'queue-consumer'))[0]!);
    writeFileSync(join(home, 'wrong.password'), 'not-the-password\n');
    const refused = runCommand(command.replace('~/.config/ser-edge/central-queue.password', '~/wrong.password'), 'the consumer with a wrong password');
    assert.equal(await refused.exited, 1);
    assert.match(refused.stderr(), /the broker refused the login \(.+\); check --username and --password-file/);
    const untrusted = runCommand(command.replace(certs.caFile, certs.clientCertFile), 'the consumer trusting another CA');
    assert.equal(await untrusted.exited, 1);
    assert.match(untrusted.stderr(), /cannot connect to localhost:\d+ \(.*certificate verify failed.*\); check --host, --port and, for TLS, --cafile/);
  });

  test('consumers may read but not publish: no flag, no command', { skip }, async () => {
    const refused = (error: Error & { code?: number }) => error.code === 0x87;
    await assert.rejects(publishAs('central-queue', 'ser/v1/lyon-2/desk-row-a/channel/desk-1/urgency', JSON.stringify(channelEvents('desk-1')[0])), refused);
    await assert.rejects(publishAs('central-queue', 'ser/v1/lyon-2/desk-row-a/cmd/call', JSON.stringify({ schema: 1, action: 'end', channel: 'desk-1', callId: 'x' })), refused);
    await assert.rejects(publishAs('desk-row-a', 'ser/v1/lyon-2/desk-row-b/channel/desk-1/urgency', JSON.stringify(channelEvents('desk-1')[0])), refused, "a gateway cannot speak for another");
  });

  test('a gateway that dies is marked offline by its last will, and the consumer marks its channels stale', { skip }, async () => {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    await consumer.waitFor(() => recordsOf(consumer).some((r) => r.type === 'gateway' && r.state === 'offline'), 'the offline line');
    assert.equal(recordsOf(consumer).findLast((r) => r.type === 'gateway')!.reason, 'lost');
    await consumer.waitFor(() => lastQueue(consumer)?.every((r) => r.stale) === true, 'a stale queue');
    assert.deepEqual(lastQueue(consumer)![0]!.channel, 'desk-1', 'the flag stays, marked stale');
  });

  test('every block of the guide was checked', { skip }, () => {
    const unchecked = blocks.filter((b) => !checked.has(b));
    assert.deepEqual(
      unchecked.map((b) => `docs/central-server.md:${b.line} (${b.kind} ${b.arg})`),
      [],
      'blocks no test checked',
    );
  });
});
