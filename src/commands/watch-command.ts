import { readFile } from 'node:fs/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { z } from 'zod';
import { ChannelState, StatusPayload, TelemetryPayload, UrgencyEvent, describeIssues } from '../mqtt/payload-schemas.js';
import { redactUrl } from '../mqtt/mqtt-link.js';
import { TOPIC_ROOT } from '../mqtt/topics.js';
import { levelRank, type UrgencyLevel } from '../urgency/urgency-score.js';

export interface WatchOptions {
  broker: string;
  site?: string;
  /** Shared-subscription group: consumers with the same group split the urgency events between them. */
  group?: string;
  json: boolean;
  /** PEM files for an mqtts:// broker: the CA to trust, and a client certificate with its key. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Files holding the broker username and password (a trailing newline is ignored). Never printed. */
  usernameFile?: string;
  passwordFile?: string;
}

/** An option that cannot be used (a file that cannot be read, a certificate without its key); exit 2. */
export class WatchOptionError extends Error {
  override name = 'WatchOptionError';
}

/**
 * The TLS and credential part of the connection, read from the files the options name.
 * Errors name the option and the path, never a file's content.
 */
export async function watchConnectionOptions(options: Pick<WatchOptions, 'broker' | 'ca' | 'cert' | 'key' | 'usernameFile' | 'passwordFile'>): Promise<IClientOptions> {
  const tlsFiles = ([['--ca', options.ca], ['--cert', options.cert], ['--key', options.key]] as const).filter(([, path]) => path !== undefined);
  if (tlsFiles.length > 0 && !/^(mqtts|wss):/i.test(options.broker)) {
    throw new WatchOptionError(`${tlsFiles.map(([flag]) => flag).join(', ')} need a TLS broker URL: use mqtts://host:8883 (or wss://) for --broker, not ${redactUrl(options.broker)}`);
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new WatchOptionError(`${options.cert === undefined ? '--cert' : '--key'} is missing: a client certificate (--cert) and its key (--key) go together`);
  }
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new WatchOptionError(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); check the path and its permissions`);
    }
  };
  const secret = async (flag: string, path: string): Promise<string> => (await read(flag, path)).toString('utf8').replace(/\r?\n$/, '');
  const out: IClientOptions = {};
  if (options.ca !== undefined) out.ca = await read('--ca', options.ca);
  if (options.cert !== undefined) out.cert = await read('--cert', options.cert);
  if (options.key !== undefined) out.key = await read('--key', options.key);
  if (options.usernameFile !== undefined) out.username = await secret('--username-file', options.usernameFile);
  if (options.passwordFile !== undefined) out.password = await secret('--password-file', options.passwordFile);
  return out;
}

/** The topic filters `watch` subscribes to; urgency events go through `$share/{group}/` when a group is given. */
export function watchFilters(site: string | undefined, group: string | undefined): { status: string; state: string; urgency: string; telemetry: string } {
  const base = `${TOPIC_ROOT}/${site ?? '+'}/+`;
  return {
    status: `${base}/status`,
    state: `${base}/channel/+/state`,
    urgency: group === undefined ? `${base}/channel/+/urgency` : `$share/${group}/${base}/channel/+/urgency`,
    telemetry: `${base}/telemetry`,
  };
}

type Kind = 'status' | 'state' | 'urgency' | 'telemetry';
const SCHEMAS: Record<Kind, z.ZodType> = { status: StatusPayload, state: ChannelState, urgency: UrgencyEvent, telemetry: TelemetryPayload };

/** What one message did: a valid payload of a known kind, or a line saying what is wrong with it. */
export type WatchMessage =
  | { ok: true; kind: 'status'; topic: string; payload: StatusPayload }
  | { ok: true; kind: 'state'; topic: string; payload: ChannelState }
  | { ok: true; kind: 'urgency'; topic: string; payload: UrgencyEvent }
  | { ok: true; kind: 'telemetry'; topic: string; payload: TelemetryPayload }
  | { ok: false; topic: string; problem: string };

/** Classifies and validates a message; never throws, whatever the payload. */
export function readWatchMessage(topic: string, payload: Buffer): WatchMessage | null {
  const levels = topic.split('/');
  // ser/v1/{site}/{gateway}/status | …/telemetry | …/channel/{channel}/{state|urgency}
  const kind: Kind | null =
    levels.length === 5 && (levels[4] === 'status' || levels[4] === 'telemetry')
      ? levels[4]
      : levels.length === 7 && levels[4] === 'channel' && (levels[6] === 'state' || levels[6] === 'urgency')
        ? levels[6]
        : null;
  if (kind === null) return null;
  if (payload.length === 0) return null; // a cleared retained message
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (error) {
    return { ok: false, topic, problem: `not JSON (${(error as Error).message})` };
  }
  const parsed = SCHEMAS[kind].safeParse(json);
  if (!parsed.success) return { ok: false, topic, problem: describeIssues(parsed.error) };
  return { ok: true, kind, topic, payload: parsed.data } as WatchMessage;
}

interface GatewayRow {
  site: string;
  gateway: string;
  state: 'online' | 'offline';
  reason?: string;
  model: string;
  since: string;
  cpu?: number;
  outbox?: number;
}

interface ChannelRow {
  site: string;
  gateway: string;
  channel: string;
  level: UrgencyLevel;
  score: number;
  callId: string | null;
  emotion?: string;
  lastEventAt?: string;
}

/**
 * The operator's picture: every gateway seen, its channels and their present level,
 * built only from what the topics say (retained status and state give the present at
 * once; urgency events add the emotion behind a flag).
 */
export class UrgencyBoard {
  private readonly gateways = new Map<string, GatewayRow>();
  private readonly channels = new Map<string, ChannelRow>();
  private readonly problems: string[] = [];

  apply(message: WatchMessage): void {
    if (!message.ok) {
      this.problems.push(`${new Date().toISOString().slice(11, 19)} ${message.topic}: ${message.problem}`);
      if (this.problems.length > 5) this.problems.shift();
      return;
    }
    switch (message.kind) {
      case 'status': {
        const p = message.payload;
        const row = this.gateway(p.site, p.gateway);
        row.state = p.state;
        row.reason = p.reason;
        row.model = p.model ? `${p.model.name}@${p.model.version}` : '-';
        row.since = p.ts;
        break;
      }
      case 'telemetry': {
        const p = message.payload;
        const row = this.gateway(p.site, p.gateway);
        row.cpu = p.health.cpuLoad;
        row.outbox = p.pipeline.outboxDepth;
        break;
      }
      case 'state': {
        const p = message.payload;
        const row = this.channel(p.site, p.gateway, p.channel);
        row.level = p.level;
        row.score = p.score;
        row.callId = p.callId;
        if (p.callId === null) row.emotion = undefined;
        break;
      }
      case 'urgency': {
        const p = message.payload;
        const row = this.channel(p.site, p.gateway, p.channel);
        row.level = p.level;
        row.score = p.score;
        row.callId = p.callId;
        row.emotion = p.emotion;
        row.lastEventAt = p.ts;
        break;
      }
    }
  }

  /** Plain text table, most urgent channels first. */
  render(): string {
    const lines: string[] = [];
    lines.push(`GATEWAYS (${this.gateways.size})`);
    lines.push(`  ${'site/gateway'.padEnd(32)} ${'status'.padEnd(16)} ${'model'.padEnd(24)} ${'cpu%'.padStart(5)} ${'outbox'.padStart(6)}`);
    for (const g of [...this.gateways.values()].sort((a, b) => `${a.site}/${a.gateway}`.localeCompare(`${b.site}/${b.gateway}`))) {
      const status = g.state === 'online' ? 'online' : `OFFLINE${g.reason ? ` (${g.reason})` : ''}`;
      lines.push(`  ${`${g.site}/${g.gateway}`.padEnd(32)} ${status.padEnd(16)} ${g.model.padEnd(24)} ${(g.cpu?.toFixed(0) ?? '-').padStart(5)} ${String(g.outbox ?? '-').padStart(6)}`);
    }
    lines.push('');
    lines.push(`CHANNELS (${this.channels.size})`);
    lines.push(`  ${'site/gateway/channel'.padEnd(40)} ${'level'.padEnd(7)} ${'score'.padStart(5)}  ${'emotion'.padEnd(9)} call`);
    const rows = [...this.channels.values()].sort((a, b) => levelRank(b.level) - levelRank(a.level) || b.score - a.score);
    for (const c of rows) {
      const level = c.level === 'high' ? 'HIGH' : c.level === 'medium' ? 'MEDIUM' : 'low';
      lines.push(`  ${`${c.site}/${c.gateway}/${c.channel}`.padEnd(40)} ${level.padEnd(7)} ${c.score.toFixed(2).padStart(5)}  ${(c.emotion ?? '-').padEnd(9)} ${c.callId ?? '-'}`);
    }
    if (this.problems.length > 0) {
      lines.push('');
      lines.push('INVALID PAYLOADS (latest)');
      for (const p of this.problems) lines.push(`  ${p}`);
    }
    return lines.join('\n');
  }

  private gateway(site: string, gateway: string): GatewayRow {
    const key = `${site}/${gateway}`;
    let row = this.gateways.get(key);
    if (!row) this.gateways.set(key, (row = { site, gateway, state: 'online', model: '-', since: '' }));
    return row;
  }

  private channel(site: string, gateway: string, channel: string): ChannelRow {
    const key = `${site}/${gateway}/${channel}`;
    let row = this.channels.get(key);
    if (!row) this.channels.set(key, (row = { site, gateway, channel, level: 'low', score: 0, callId: null }));
    return row;
  }
}

/** Redraws at most this often: a burst of retained messages on connect is one frame. */
const REDRAW_MS = 200;

/**
 * `ser-edge watch`: subscribes to the gateways' status, channel state and urgency topics
 * and shows a live table (or, with --json, one JSON line per message). Runs until Ctrl-C.
 */
export async function runWatch(options: WatchOptions): Promise<number> {
  const filters = watchFilters(options.site, options.group);
  const board = new UrgencyBoard();
  const out = process.stdout;
  let redraw: NodeJS.Timeout | undefined;
  const draw = () => {
    redraw = undefined;
    const frame = board.render();
    out.write(out.isTTY ? `\x1b[H\x1b[2J${frame}\n` : `${frame}\n\n`);
  };

  let connection: IClientOptions;
  try {
    connection = await watchConnectionOptions(options);
  } catch (error) {
    process.stderr.write(`ser-edge watch: ${(error as Error).message}\n`);
    return 2;
  }
  let client: MqttClient;
  let protocolVersion: 5 | 4;
  try {
    ({ client, protocolVersion } = await connectWatcher(options.broker, connection));
  } catch (error) {
    process.stderr.write(`ser-edge watch: cannot connect to ${redactUrl(options.broker)}: ${(error as Error).message}; check --broker (mqtt://host:1883 or mqtts://host:8883)\n`);
    return 1;
  }
  if (protocolVersion === 4 && options.group !== undefined) {
    // A 3.1.1 broker may take "$share/…" as an ordinary topic that nothing is published to.
    process.stderr.write(
      `ser-edge watch: warning: the broker at ${redactUrl(options.broker)} only speaks MQTT 3.1.1, but --group ${options.group} is an MQTT 5 shared subscription ($share/${options.group}/…): ` +
        'urgency events may never arrive. Use an MQTT 5 broker (mosquitto, EMQX, HiveMQ) for --group, or leave --group out.\n',
    );
  }
  client.on('message', (topic, payload) => {
    const message = readWatchMessage(topic, payload);
    if (message === null) return;
    if (options.json) {
      if (message.ok) out.write(`${JSON.stringify({ type: message.kind, topic, payload: message.payload })}\n`);
      else process.stderr.write(`invalid payload on ${topic}: ${message.problem}\n`);
      return;
    }
    board.apply(message);
    redraw ??= setTimeout(draw, REDRAW_MS);
  });
  client.on('error', (error) => process.stderr.write(`ser-edge watch: ${error.message}\n`));
  try {
    await client.subscribeAsync([filters.status, filters.state, filters.urgency, filters.telemetry], { qos: 1 });
  } catch (error) {
    process.stderr.write(`ser-edge watch: subscribing failed (${(error as Error).message}); does the broker's ACL let this user read ser/v1/#?\n`);
    await client.endAsync(true);
    return 1;
  }
  if (!options.json) draw();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearTimeout(redraw);
  await client.endAsync();
  return 0;
}

/** MQTT 5 (shared subscriptions are a v5 feature), falling back to 3.1.1 for brokers without it; says which it got. */
async function connectWatcher(url: string, connection: IClientOptions): Promise<{ client: MqttClient; protocolVersion: 5 | 4 }> {
  const base: IClientOptions = { ...connection, clientId: `ser-edge-watch-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 2000, connectTimeout: 10_000 };
  try {
    return { client: await mqtt.connectAsync(url, { ...base, protocolVersion: 5 }, false), protocolVersion: 5 };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 0x84 || code === 1) return { client: await mqtt.connectAsync(url, { ...base, protocolVersion: 4 }, false), protocolVersion: 4 };
    throw error;
  }
}
