import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { brokerUrlProblem } from '../mqtt/broker-url.js';
import { redactUrl } from '../mqtt/mqtt-link.js';

/**
 * How an operator's tool (`watch`, `model publish|rollback|status…`) reaches the broker:
 * the URL, and for an mqtts:// broker the CA, a client certificate with its key, and the
 * credentials, each from a file so they never appear in the process list or the history.
 */
export interface BrokerConnectionFlags {
  broker: string;
  /** PEM files for an mqtts:// broker: the CA to trust, and a client certificate with its key. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Files holding the broker username and password (a trailing newline is ignored). Never printed. */
  usernameFile?: string;
  passwordFile?: string;
}

/** An option that cannot be used (a file that cannot be read, a certificate without its key); exit 2. */
export class BrokerOptionError extends Error {
  override name = 'BrokerOptionError';
}

/**
 * The TLS and credential part of the connection, read from the files the options name.
 * Errors name the option and the path, never a file's content.
 */
export async function brokerConnectionOptions(flags: BrokerConnectionFlags): Promise<IClientOptions> {
  const problem = brokerUrlProblem(flags.broker, '--broker');
  if (problem !== null) throw new BrokerOptionError(problem);
  const tlsFiles = ([['--ca', flags.ca], ['--cert', flags.cert], ['--key', flags.key]] as const).filter(([, path]) => path !== undefined);
  if (tlsFiles.length > 0 && !/^(mqtts|wss):/i.test(flags.broker)) {
    throw new BrokerOptionError(`${tlsFiles.map(([flag]) => flag).join(', ')} need a TLS broker URL: use mqtts://host:8883 (or wss://) for --broker, not ${redactUrl(flags.broker)}`);
  }
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new BrokerOptionError(`${flags.cert === undefined ? '--cert' : '--key'} is missing: a client certificate (--cert) and its key (--key) go together`);
  }
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new BrokerOptionError(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); check the path and its permissions`);
    }
  };
  const secret = async (flag: string, path: string): Promise<string> => (await read(flag, path)).toString('utf8').replace(/\r?\n$/, '');
  const out: IClientOptions = {};
  if (flags.ca !== undefined) out.ca = await read('--ca', flags.ca);
  if (flags.cert !== undefined) out.cert = await read('--cert', flags.cert);
  if (flags.key !== undefined) out.key = await read('--key', flags.key);
  if (flags.usernameFile !== undefined) out.username = await secret('--username-file', flags.usernameFile);
  if (flags.passwordFile !== undefined) out.password = await secret('--password-file', flags.passwordFile);
  return out;
}

/**
 * Who the broker will take this connection for: the username, else the common name of the
 * client certificate (what mosquitto's `use_identity_as_username` makes the username), else
 * null. The example ACL lets each operator read only `ser/v1/+/ops/replies/{username}/#`.
 */
export function brokerIdentity(connection: IClientOptions): string | null {
  if (typeof connection.username === 'string' && connection.username.length > 0) return connection.username;
  const cert = connection.cert;
  if (cert !== undefined && (typeof cert === 'string' || Buffer.isBuffer(cert))) {
    try {
      const cn = /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(cert).subject)?.[1];
      if (cn) return cn;
    } catch {
      // Not a PEM the tool can read: the TLS handshake will say so.
    }
  }
  return null;
}

/**
 * MQTT 5 (shared subscriptions and request/response are v5 features), falling back to 3.1.1
 * for brokers without it (the embedded aedes broker); says which it got. `options` adds to
 * the connection (client id, reconnect period, session); on 3.1.1 the v5-only properties are
 * dropped and the session is clean.
 */
export async function connectOperatorClient(url: string, connection: IClientOptions, options: IClientOptions): Promise<{ client: MqttClient; protocolVersion: 5 | 4 }> {
  const base: IClientOptions = { connectTimeout: 10_000, ...connection, ...options };
  try {
    return { client: await mqtt.connectAsync(url, { ...base, protocolVersion: 5 }, false), protocolVersion: 5 };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 0x84 || code === 1) {
      // 3.1.1 has no session expiry: a session kept for this run would stay on the broker for good.
      const { properties: _v5Only, ...v4 } = base;
      return { client: await mqtt.connectAsync(url, { ...v4, clean: true, protocolVersion: 4 }, false), protocolVersion: 4 };
    }
    throw error;
  }
}

/** A client id no other run shares: `{prefix}-{pid}-{6 hex}`. */
export function operatorClientId(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`;
}
