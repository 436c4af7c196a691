import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions } from 'mqtt';
import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import { MqttLink, redactUrl } from '../../mqtt/mqtt-link.js';
import { linkSettings } from '../link-settings.js';
import { errorCode, fail, pass, skip, warn, type CheckResult } from './check-result.js';

export interface BrokerCheckOptions {
  /** What `run` refuses before connecting (run-command's brokerSettingsProblem), or null. */
  settingsProblem: string | null;
  /** How long the connection may take. */
  timeoutMs: number;
}

/** CONNACK codes meaning "not this protocol version": 3.1.1's 0x01 and MQTT 5's 0x84. */
const UNSUPPORTED_PROTOCOL = new Set([1, 0x84]);

interface ProbeOutcome {
  protocol: 5 | 4;
  connectMs: number;
  /** The command subscription's SUBACK: null when granted, else the reason code; undefined when not tried. */
  commandSubscription?: number | null;
}

/**
 * Connects to the configured broker once, with the options the daemon's link builds from
 * the same config (TLS files, client certificate, credentials), and disconnects. A client
 * id of its own, so the running gateway is not thrown off; no will and no publish, so
 * nothing a central subscriber sees changes. With commands enabled it also asks for the
 * command subscription, which an ACL may refuse (MQTT 5 says so).
 */
export async function brokerCheck(config: ResolvedConfig, options: BrokerCheckOptions): Promise<CheckResult> {
  const check = 'broker';
  const url = config.mqtt.url;
  if (url === undefined) {
    return skip(check, { detail: 'no mqtt.url: `run` starts its embedded broker on 127.0.0.1 (the demo), so flags stay on this machine; set mqtt.url to the central broker on a gateway' });
  }
  const subject = redactUrl(url);
  if (options.settingsProblem !== null) return fail(check, { subject, detail: options.settingsProblem, fix: 'correct the mqtt settings named above in the config' });
  const settings = linkSettings(config, url);
  let clientOptions: IClientOptions;
  try {
    clientOptions = await new MqttLink({ ...settings, statusInfo: () => ({ version: 'doctor', model: null, backend: null }) }).connectionOptions();
  } catch (error) {
    return fail(check, { subject, detail: (error as Error).message, fix: 'correct the mqtt settings named above in the config' });
  }
  const commandFilter = `ser/v1/${config.site}/${config.gateway}/cmd/+`;
  let outcome: ProbeOutcome;
  try {
    outcome = await probe(url, clientOptions, options.timeoutMs, config.commands.enabled ? commandFilter : null);
  } catch (error) {
    const { detail, fix } = describeFailure(error, subject, config, options.timeoutMs);
    return fail(check, { subject, detail, fix });
  }
  const secure = /^(mqtts|wss):/i.test(url);
  const how = [
    `MQTT ${outcome.protocol === 5 ? '5' : '3.1.1'} in ${outcome.connectMs} ms`,
    secure ? (clientOptions.rejectUnauthorized === false ? 'TLS, broker certificate NOT verified' : `TLS, broker certificate verified${config.mqtt.tls?.ca ? ' against mqtt.tls.ca' : ' against the system CAs'}`) : 'no TLS',
    clientOptions.cert ? 'client certificate' : null,
    clientOptions.username !== undefined ? 'username from mqtt.usernameFile' : null,
  ].filter(Boolean);
  const detail = `connected to ${subject}: ${how.join(', ')}`;
  const data = { protocol: outcome.protocol === 5 ? '5' : '3.1.1', connectMs: outcome.connectMs, tls: secure };
  if (outcome.commandSubscription != null) {
    return warn(check, {
      subject,
      detail: `${detail}; but the broker refused the command subscription ${commandFilter} (reason 0x${outcome.commandSubscription.toString(16)})`,
      fix: `let this gateway's login read ${commandFilter.replace(/\+$/, '#')} in the broker's ACL (firmware-config/mosquitto-acl.conf), or set commands.enabled false to run without commands`,
      data,
    });
  }
  if (secure && clientOptions.rejectUnauthorized === false) {
    return warn(check, { subject, detail, fix: "give the broker's CA in mqtt.tls.ca and remove mqtt.tls.rejectUnauthorized: anyone on the path can pose as this broker", data });
  }
  if (!secure && !isLoopback(url)) {
    return warn(check, { subject, detail, fix: 'the link is not encrypted: flags and credentials cross the network in clear; use an mqtts:// broker URL with mqtt.tls.ca (and set mqtt.requireTls)', data });
  }
  return pass(check, { subject, detail, data });
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || /^127\./.test(host);
  } catch {
    return false;
  }
}

/** One connection (MQTT 5, then 3.1.1 if the broker refuses 5); resolves once connected (and subscribed), rejects with the error that stopped it. */
async function probe(url: string, base: IClientOptions, timeoutMs: number, commandFilter: string | null): Promise<ProbeOutcome> {
  try {
    return await probeWith(url, base, 5, timeoutMs, commandFilter);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number' && UNSUPPORTED_PROTOCOL.has(code)) return probeWith(url, base, 4, timeoutMs, commandFilter);
    throw error;
  }
}

function probeWith(url: string, base: IClientOptions, protocol: 5 | 4, timeoutMs: number, commandFilter: string | null): Promise<ProbeOutcome> {
  const started = performance.now();
  return new Promise<ProbeOutcome>((resolve, reject) => {
    const client = mqtt.connect(url, {
      ...base,
      clientId: `${base.clientId ?? 'ser-edge'}-doctor-${randomBytes(3).toString('hex')}`,
      protocolVersion: protocol,
      connectTimeout: timeoutMs,
      reconnectPeriod: 0,
      clean: true,
      ...(protocol === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
    });
    let settled = false;
    const settle = (outcome: ProbeOutcome | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end(true);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => settle(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })), timeoutMs + 500);
    client.on('connect', () => {
      const connectMs = Math.round(performance.now() - started);
      if (commandFilter === null) return settle({ protocol, connectMs });
      client.subscribe(commandFilter, { qos: 1 }, (error) => {
        const code = (error as { code?: unknown } | null)?.code;
        settle({ protocol, connectMs, commandSubscription: error ? (typeof code === 'number' ? code : 0x80) : null });
      });
    });
    client.on('error', (error) => settle(error));
    // Closed before CONNACK: a TLS handshake the broker broke off, or a listener that hung up.
    client.on('close', () => settle(Object.assign(new Error('the broker closed the connection before accepting it'), { code: 'CLOSED' })));
  });
}

/** The failure, and the fix for it, in the config's terms. */
function describeFailure(error: unknown, url: string, config: ResolvedConfig, timeoutMs: number): { detail: string; fix: string } {
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  const at = `cannot connect to ${url}`;
  const hostPort = (() => {
    try {
      const u = new URL(config.mqtt.url!);
      return `${u.hostname}:${u.port || (/^(mqtts|wss):/.test(u.protocol) ? '8883' : '1883')}`;
    } catch {
      return url;
    }
  })();
  if (typeof code === 'number') {
    if (code === 4 || code === 0x86) return { detail: `${at}: bad username or password`, fix: 'check mqtt.usernameFile and mqtt.passwordFile (one line each) against the broker\'s password file' };
    if (code === 5 || code === 0x87) {
      // mosquitto answers a wrong password (or an unknown user) this way, not with "bad username or password".
      if (config.mqtt.usernameFile !== undefined) {
        return {
          detail: `${at}: not authorised (CONNACK ${code}): the broker refused the login of mqtt.usernameFile and mqtt.passwordFile`,
          fix: "check mqtt.usernameFile and mqtt.passwordFile (one line each) against the broker's password file (mosquitto_passwd); if they match it, the broker's auth plugin or ACL refuses this gateway",
        };
      }
      return { detail: `${at}: not authorised (CONNACK ${code})`, fix: 'the broker refuses this login: give the gateway an account (a username and password, or a client certificate) and check the broker\'s ACL' };
    }
    if (code === 2 || code === 0x85) return { detail: `${at}: client id refused (CONNACK ${code})`, fix: 'set mqtt.clientId to an id the broker accepts' };
    return { detail: `${at}: the broker refused the connection (CONNACK ${code}: ${message})`, fix: "check the broker's log for why it refused this client" };
  }
  switch (code) {
    case 'ECONNREFUSED':
      return { detail: `${at}: nothing listens on ${hostPort} (ECONNREFUSED)`, fix: `check mqtt.url's host and port, that the broker runs, and that no firewall rejects ${hostPort}` };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { detail: `${at}: the host name does not resolve (${code})`, fix: "check mqtt.url's host name and this gateway's DNS (`getent hosts HOST`)" };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { detail: `${at}: no route to the broker (${code})`, fix: "check this gateway's network connection and mqtt.url's host" };
    case 'TIMEOUT':
    case 'ETIMEDOUT':
      return { detail: `${at}: no answer within ${timeoutMs} ms`, fix: `a firewall drops the packets, or the port is wrong: check that ${hostPort} is open from this gateway (\`nc -vz HOST PORT\`)` };
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return { detail: `${at}: the broker's certificate is not trusted (${code})`, fix: "set mqtt.tls.ca to the CA certificate (PEM) that signed the broker's certificate" };
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return { detail: `${at}: the broker's certificate is outside its validity (${code})`, fix: "renew the broker's certificate; if it is valid, this gateway's clock is wrong (see the clock row)" };
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return { detail: `${at}: the broker's certificate does not name this host (${message})`, fix: "use the host name the certificate names in mqtt.url, or reissue the certificate with this name" };
    case 'CLOSED':
    case 'ECONNRESET':
    case 'EPIPE':
      return {
        detail: `${at}: the broker closed the connection before accepting it (${code})`,
        fix: /^(mqtts|wss):/i.test(config.mqtt.url!)
          ? config.mqtt.tls?.cert
            ? "the broker refused the TLS handshake: check that it trusts the CA of mqtt.tls.cert, and the broker's log"
            : 'a broker that requires client certificates closes the handshake: set mqtt.tls.cert and mqtt.tls.key'
          : 'is this a TLS port? use mqtts:// for it; otherwise check the broker\'s log',
      };
    default: {
      if (code === undefined && /header flag|packet|protocol/i.test(message)) {
        // mqtt.js's parser on bytes that are not MQTT: something else answers on that port.
        return {
          detail: `${at}: what answers on ${hostPort} does not speak MQTT (${message})`,
          fix: "check mqtt.url's port (1883 is usual for mqtt://, 8883 for mqtts://) and that no proxy or other service sits on it",
        };
      }
      if (typeof code === 'string' && /CERTIFICATE_REQUIRED/.test(code)) {
        return { detail: `${at}: the broker requires a client certificate (${code})`, fix: 'set mqtt.tls.cert and mqtt.tls.key to this gateway\'s certificate and key' };
      }
      const tls = typeof code === 'string' && /^ERR_SSL|^ERR_TLS/.test(code);
      return {
        detail: `${at}: ${message}${code !== undefined ? ` (${errorCode(error)})` : ''}`,
        fix: tls ? 'a TLS handshake failure: check mqtt.tls.ca, mqtt.tls.cert and mqtt.tls.key against the broker\'s TLS settings' : "check mqtt.url and the broker's log",
      };
    }
  }
}
