import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after } from 'node:test';

/**
 * A real mosquitto for the MQTT tests, on a free loopback port with its own config in a
 * temp dir. CI installs Debian's mosquitto (.ci/run); elsewhere the tests skip with
 * MOSQUITTO_MISSING as the reason.
 */

export function findMosquitto(): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'mosquitto');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Pass as a test's `skip` option: false when mosquitto is installed, else why the test is skipped. */
export const MOSQUITTO_MISSING: string | false = findMosquitto()
  ? false
  : 'mosquitto is not installed: apt-get install -y mosquitto (CI does) to run the MQTT broker tests';

export const OPENSSL_MISSING: string | false =
  spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed: apt-get install -y openssl to run the TLS tests';

export interface MosquittoOptions {
  tls?: { caFile: string; certFile: string; keyFile: string; requireCertificate?: boolean };
  /** Keep retained messages across restarts (as a production broker would). */
  persistence?: boolean;
  /** A password file (writeMosquittoPasswords): clients must log in with one of its users; no anonymous clients. */
  passwordFile?: string;
  /** Extra mosquitto.conf lines for the listener. */
  extraConfig?: string[];
}

export interface Mosquitto {
  /** mqtt://127.0.0.1:port, or mqtts://127.0.0.1:port with tls. */
  url: string;
  port: number;
  dir: string;
  /** Graceful stop (SIGTERM); resolves when the process has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** What the broker printed, for failure messages. */
  output(): string;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const binary = findMosquitto();
  if (!binary) throw new Error(MOSQUITTO_MISSING || 'mosquitto not found');
  const dir = mkdtempSync(join(tmpdir(), 'ser-edge-mosquitto-'));
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    ...(opts.passwordFile ? ['allow_anonymous false', `password_file ${opts.passwordFile}`] : ['allow_anonymous true']),
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    `persistence ${opts.persistence ? 'true' : 'false'}`,
    `persistence_location ${dir}/`,
  ];
  if (opts.tls) {
    lines.push(`cafile ${opts.tls.caFile}`, `certfile ${opts.tls.certFile}`, `keyfile ${opts.tls.keyFile}`);
    lines.push(`require_certificate ${opts.tls.requireCertificate ? 'true' : 'false'}`);
  }
  // Run as root (CI), mosquitto drops to user "mosquitto", which cannot read our 0700 temp dirs.
  if (process.getuid?.() === 0) lines.push('user root');
  lines.push(...(opts.extraConfig ?? []));
  const configFile = join(dir, 'mosquitto.conf');
  writeFileSync(configFile, `${lines.join('\n')}\n`);

  let child: ChildProcess | null = null;
  let log = '';
  const launch = async () => {
    const proc = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    // A test that fails before stop() must not hang the runner on a live broker; the exit hook kills it.
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void }).unref?.();
    (proc.stderr as unknown as { unref?: () => void }).unref?.();
    proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`mosquitto exited (code ${code}) before accepting connections:\n${log}`))),
    );
    await Promise.race([waitForPort(port, 5000), exited]);
  };
  const signal = async (sig: NodeJS.Signals) => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.ref(); // waiting for its exit is what keeps the test alive now
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(sig);
    });
  };
  await launch();
  // Tests that forget stop() must not leave a broker behind.
  process.once('exit', () => (child as ChildProcess | null)?.kill('SIGKILL'));
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    dir,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    start: launch,
    output: () => log,
  };
}

/** A mosquitto password file with these users, made by mosquitto_passwd (Debian's mosquitto package has it). */
export function writeMosquittoPasswords(file: string, users: Record<string, string>): string {
  for (const [at, [user, password]] of Object.entries(users).entries()) {
    const r = spawnSync('mosquitto_passwd', [...(at === 0 ? ['-c'] : []), '-b', file, user, password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mosquitto_passwd failed for ${user}: ${r.stderr || r.error?.message}`);
  }
  chmodSync(file, 0o600);
  return file;
}

export interface TestCertificates {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
export function generateTestCertificates(dir = mkdtempSync(join(tmpdir(), 'ser-edge-certs-'))): TestCertificates {
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  };
  // EC keys: generating three RSA keys would cost most of a second each on a Pi-class CI machine.
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ser-edge test CA']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', '127.0.0.1'],
    ['client', 'gw-test'],
  ] as const) {
    run(['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  }
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not accept connections on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  properties: Record<string, unknown> | undefined;
  json<T = unknown>(): T;
}

export interface TestSubscriber {
  client: import('mqtt').MqttClient;
  messages: ReceivedMessage[];
  /** Resolves with the first message (already received or coming) that matches. */
  waitFor(match: (m: ReceivedMessage) => boolean, timeoutMs?: number, what?: string): Promise<ReceivedMessage>;
  end(): Promise<void>;
}

/**
 * Subscribers a test left open when it failed: their reconnect timers would keep the test
 * file's process alive after its last test, so `npm test` would hang instead of failing.
 */
const openSubscribers = new Set<TestSubscriber>();
// Only in a test file (under the runner, or run directly): the benchmark imports these
// helpers too, and a hook would make node:test print its report into the benchmark's JSON.
if (process.env.NODE_TEST_CONTEXT || /\.test\.js$/.test(process.argv[1] ?? '')) {
  after(async () => {
    await Promise.all([...openSubscribers].map((s) => s.end()));
  });
}

/** A central-side consumer: connects, subscribes to `filters` and records every message. */
export async function connectSubscriber(
  url: string,
  filters: string[],
  options: import('mqtt').IClientOptions = {},
): Promise<TestSubscriber> {
  const { default: mqtt } = await import('mqtt');
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200, ...options });
  client.on('error', () => {});
  const messages: ReceivedMessage[] = [];
  const listeners = new Set<() => void>();
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      payload,
      retain: packet.retain,
      properties: packet.properties as Record<string, unknown> | undefined,
      json: () => JSON.parse(payload.toString('utf8')),
    });
    for (const l of listeners) l();
  });
  if (filters.length) {
    try {
      await client.subscribeAsync(filters, { qos: 1 });
    } catch (error) {
      await client.endAsync(true);
      throw error;
    }
  }
  const subscriber: TestSubscriber = {
    client,
    messages,
    waitFor(match, timeoutMs = 5000, what = 'a matching message') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(match);
          if (found) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${messages.map((m) => m.topic).join(', ') || 'nothing'}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    end: () => {
      openSubscribers.delete(subscriber);
      return client.endAsync(true);
    },
  };
  openSubscribers.add(subscriber);
  return subscriber;
}

/** A valid urgency event for the tests (the ULID is derived from seq, so ids are stable). */
export function sampleEvent(seq: number, overrides: Partial<import('../../src/mqtt/payload-schemas.js').UrgencyEvent> = {}) {
  const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let n = seq;
  let tail = '';
  for (let i = 0; i < 10; i++) {
    tail = crockford[n % 32] + tail;
    n = Math.floor(n / 32);
  }
  const event: import('../../src/mqtt/payload-schemas.js').UrgencyEvent = {
    schema: 1,
    id: `01J0000000000000${tail}`,
    seq,
    ts: new Date(Date.UTC(2025, 0, 1, 12, 0, 0, seq)).toISOString(),
    site: 'lab',
    gateway: 'gw1',
    channel: 'hs1',
    callId: 'call-1',
    kind: 'raise',
    level: 'high',
    previousLevel: 'medium',
    score: 0.8,
    emotion: 'angry',
    probabilities: { angry: 0.7, sad: 0.1, neutral: 0.2 },
    model: { name: 'knn-ravdess', version: '1.0.0' },
    window: { start: '2025-01-01T12:00:00.000Z', end: '2025-01-01T12:00:02.000Z' },
    ...overrides,
  };
  return event;
}

/** Splits a byte stream into whole MQTT packets (fixed header, remaining length, body). */
function mqttPacketSplitter(onPacket: (packet: Buffer) => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      let length = 0, multiplier = 1, at = 1;
      for (; at < buffered.length && at <= 4; at++) {
        length += (buffered[at]! & 0x7f) * multiplier;
        multiplier *= 128;
        if ((buffered[at]! & 0x80) === 0) break;
      }
      if (at >= buffered.length || buffered.length < at + 1 + length) return;
      const packet = buffered.subarray(0, at + 1 + length);
      buffered = buffered.subarray(at + 1 + length);
      onPacket(Buffer.from(packet));
    }
  };
}

interface RelayHooks {
  /** A whole packet from a client: return false to keep it from the broker; `reply` writes to that client. */
  fromClient?: (packet: Buffer, reply: (packet: Buffer) => void) => boolean;
  /** Whether the broker's packets still reach the clients. */
  passToClients?: () => boolean;
}

/** A loopback relay to a real broker that passes whole MQTT packets both ways, through `hooks`. */
async function startMqttRelay(brokerPort: number, hooks: RelayHooks): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((client) => {
    const upstream = connect(brokerPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    // Whole packets only, so a packet the relay writes never lands inside one of the broker's.
    upstream.on('data', mqttPacketSplitter((packet) => (hooks.passToClients?.() ?? true) && client.write(packet)));
    client.on('data', mqttPacketSplitter((packet) => (hooks.fromClient?.(packet, (p) => client.write(p)) ?? true) && upstream.write(packet)));
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', close);
      s.on('error', close);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A relay to a broker that can stop passing anything back: a broker that takes packets and never answers. */
export interface StallingProxy {
  /** mqtt://127.0.0.1:port of the relay. */
  url: string;
  /** From now on nothing the broker sends (PUBACKs, PINGRESPs) reaches the clients; what they send still reaches it. */
  stall(): void;
  close(): Promise<void>;
}

export async function startStallingProxy(brokerPort: number): Promise<StallingProxy> {
  let stalled = false;
  const relay = await startMqttRelay(brokerPort, { passToClients: () => !stalled });
  return { ...relay, stall: () => void (stalled = true) };
}

/**
 * A relay to a broker that refuses some publishes as a loaded or picky broker would: a
 * QoS 1 PUBLISH (MQTT 5) whose topic matches `topic` is kept from the broker and answered
 * with a PUBACK carrying `reasonCode` (e.g. 0x97 quota exceeded), until `accept()`.
 */
export interface RefusingProxy {
  url: string;
  /** Each refused publish: its topic and when (performance.now()). */
  refused: { topic: string; at: number }[];
  accept(): void;
  close(): Promise<void>;
}

export async function startRefusingProxy(brokerPort: number, topic: RegExp, reasonCode: number): Promise<RefusingProxy> {
  let accepting = false;
  const refused: { topic: string; at: number }[] = [];
  const relay = await startMqttRelay(brokerPort, {
    fromClient(packet, reply) {
      const type = packet[0]! >> 4, qos = (packet[0]! >> 1) & 3;
      if (accepting || type !== 3 || qos !== 1) return true;
      let at = 1;
      while (packet[at]! & 0x80) at++;
      const topicLength = packet.readUInt16BE(at + 1);
      const name = packet.toString('utf8', at + 3, at + 3 + topicLength);
      if (!topic.test(name)) return true;
      const packetId = packet.readUInt16BE(at + 3 + topicLength);
      refused.push({ topic: name, at: performance.now() });
      reply(Buffer.from([0x40, 3, packetId >> 8, packetId & 0xff, reasonCode]));
      return false;
    },
  });
  return { ...relay, refused, accept: () => void (accepting = true) };
}
