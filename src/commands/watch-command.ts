import type { IClientOptions, MqttClient } from 'mqtt';
import type { z } from 'zod';
import { table } from './text-table.js';
import { brokerConnectionOptions, connectOperatorClient, operatorClientId, type BrokerConnectionFlags } from './broker-connection.js';
import { ChannelState, ModelState, StatusPayload, TelemetryPayload, UrgencyEvent, describeIssues } from '../mqtt/payload-schemas.js';
import { redactUrl } from '../mqtt/mqtt-link.js';
import { TOPIC_ROOT } from '../mqtt/topics.js';
import { levelRank, type UrgencyLevel } from '../urgency/urgency-score.js';
import { scoreText } from '../urgency/score-text.js';

export interface WatchOptions extends BrokerConnectionFlags {
  site?: string;
  /** Shared-subscription group: consumers with the same group split the urgency events between them. */
  group?: string;
  json: boolean;
}

/** The topic filters `watch` subscribes to; urgency events go through `$share/{group}/` when a group is given. */
export function watchFilters(site: string | undefined, group: string | undefined): { status: string; state: string; urgency: string; telemetry: string; model: string } {
  const base = `${TOPIC_ROOT}/${site ?? '+'}/+`;
  return {
    status: `${base}/status`,
    state: `${base}/channel/+/state`,
    urgency: group === undefined ? `${base}/channel/+/urgency` : `$share/${group}/${base}/channel/+/urgency`,
    telemetry: `${base}/telemetry`,
    model: `${base}/model`,
  };
}

type Kind = 'status' | 'state' | 'urgency' | 'telemetry' | 'model';
const SCHEMAS: Record<Kind, z.ZodType> = { status: StatusPayload, state: ChannelState, urgency: UrgencyEvent, telemetry: TelemetryPayload, model: ModelState };

/** What one message did: a valid payload of a known kind, or a line saying what is wrong with it. */
export type WatchMessage =
  | { ok: true; kind: 'status'; topic: string; payload: StatusPayload }
  | { ok: true; kind: 'state'; topic: string; payload: ChannelState }
  | { ok: true; kind: 'urgency'; topic: string; payload: UrgencyEvent }
  | { ok: true; kind: 'telemetry'; topic: string; payload: TelemetryPayload }
  | { ok: true; kind: 'model'; topic: string; payload: ModelState }
  | { ok: false; topic: string; problem: string };

/** Classifies and validates a message; never throws, whatever the payload. */
export function readWatchMessage(topic: string, payload: Buffer): WatchMessage | null {
  const levels = topic.split('/');
  // ser/v1/{site}/{gateway}/status | …/telemetry | …/model | …/channel/{channel}/{state|urgency}
  const kind: Kind | null =
    levels.length === 5 && (levels[4] === 'status' || levels[4] === 'telemetry' || levels[4] === 'model')
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
  emotion?: string | null;
  lastEventAt?: string;
}

/** The broker link as the board shows it: `retrying` while mqtt.js reconnects after losing it. */
export type BrokerLink = { state: 'connected' } | { state: 'retrying'; attempts: number; lastError?: string; since: string };

const LEVEL_TEXT: Record<UrgencyLevel, string> = { high: 'HIGH', medium: 'MEDIUM', low: 'low' };

/**
 * The operator's picture: every gateway seen, its channels and their present level,
 * built only from what the topics say (retained status, state and model give the present
 * at once; urgency events keep it current). A channel of a gateway that went offline is
 * shown as stale with what it last said, never as a live HIGH: nobody is listening there.
 */
export class UrgencyBoard {
  private readonly gateways = new Map<string, GatewayRow>();
  private readonly channels = new Map<string, ChannelRow>();
  private readonly problems: string[] = [];
  private broker: { url: string; link: BrokerLink } | undefined;

  /**
   * `liveAt`: when the message arrived, if it was published while watch was subscribed (not a
   * retained one replayed at subscribe). A last will carries the time it was registered, not
   * the moment the gateway was lost, so only a will seen live says when that was.
   */
  apply(message: WatchMessage, liveAt?: string): void {
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
        row.since = p.reason === 'lost' ? (liveAt ?? '') : p.ts;
        break;
      }
      case 'telemetry': {
        const p = message.payload;
        const row = this.gateway(p.site, p.gateway);
        row.cpu = p.health.cpuLoad;
        row.outbox = p.pipeline.outboxDepth;
        break;
      }
      case 'model': {
        const p = message.payload;
        this.gateway(p.site, p.gateway).model = p.active ? `${p.active.name}@${p.active.version}` : '-';
        break;
      }
      case 'state': {
        const p = message.payload;
        const row = this.channel(p.site, p.gateway, p.channel);
        row.level = p.level;
        row.score = p.score;
        row.callId = p.callId;
        // A gateway older than the emotion in its state says nothing about it: keep what its events said.
        if (p.emotion !== undefined) row.emotion = p.emotion;
        else if (p.callId === null) row.emotion = undefined;
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

  /** The broker connection, shown above the tables (nothing is shown until this is called). */
  setBroker(url: string, link: BrokerLink): void {
    this.broker = { url, link };
  }

  /** Plain text table, most urgent live channels first, stale ones after them. */
  render(): string {
    const lines: string[] = [];
    if (this.broker) {
      const { url, link } = this.broker;
      lines.push(
        link.state === 'connected'
          ? `BROKER ${url} connected`
          : `BROKER ${url} unreachable, retrying${link.attempts > 0 ? ` (${link.attempts})` : ''}…${link.lastError ? ` ${link.lastError}` : ''}; the tables are as of ${clock(link.since)}`,
        '',
      );
    }
    const gateways = [...this.gateways.values()].sort((a, b) => `${a.site}/${a.gateway}`.localeCompare(`${b.site}/${b.gateway}`));
    lines.push(`GATEWAYS (${gateways.length})`);
    lines.push(
      ...table(
        // cpu% is what the gateway's telemetry reports: the load of the whole host, not of ser-edge alone.
        ['site/gateway', 'status', 'since', 'model', 'host cpu%', 'outbox'],
        gateways.map((g) => [
          `${g.site}/${g.gateway}`,
          g.state === 'online' ? 'online' : `OFFLINE${g.reason ? ` (${g.reason})` : ''}`,
          g.since ? clock(g.since) : '-',
          g.model,
          g.cpu?.toFixed(0) ?? '-',
          String(g.outbox ?? '-'),
        ]),
        'llllrr',
      ),
    );
    lines.push('');
    const stale = (c: ChannelRow) => this.gateways.get(`${c.site}/${c.gateway}`)?.state === 'offline';
    const channels = [...this.channels.values()].sort(
      (a, b) => Number(stale(a)) - Number(stale(b)) || levelRank(b.level) - levelRank(a.level) || b.score - a.score || `${a.site}/${a.gateway}/${a.channel}`.localeCompare(`${b.site}/${b.gateway}/${b.channel}`),
    );
    lines.push(`CHANNELS (${channels.length})`);
    lines.push(
      ...table(
        ['site/gateway/channel', 'level', 'score', 'emotion', 'call', ''],
        channels.map((c) => {
          const gone = stale(c) ? this.gateways.get(`${c.site}/${c.gateway}`)! : undefined;
          return [
            `${c.site}/${c.gateway}/${c.channel}`,
            gone ? 'stale' : LEVEL_TEXT[c.level],
            scoreText(c.score),
            c.emotion ?? '-',
            c.callId ?? '-',
            gone ? `gateway offline${gone.since ? ` since ${clock(gone.since)}` : ''}; last level ${LEVEL_TEXT[c.level]}` : '',
          ];
        }),
        'llrlll',
      ),
    );
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

/** Local wall-clock time of an ISO timestamp, as the operator's own clock reads. */
function clock(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? '-' : t.toLocaleTimeString('en-GB', { hour12: false });
}

/** Redraws at most this often: a burst of retained messages on connect is one frame. */
const REDRAW_MS = 200;

/** mqtt.js's pause between reconnect attempts once a connection is lost. */
const RECONNECT_MS = 2000;

/**
 * `ser-edge watch`: subscribes to the gateways' status, channel state, urgency, telemetry
 * and model topics and shows a live table (or, with --json, one JSON line per message).
 * Runs until Ctrl-C. A broker lost after the start is retried every 2 s: the table stays
 * on screen with one line saying so, and --json says it once on stderr, not at each retry.
 */
export async function runWatch(options: WatchOptions): Promise<number> {
  const filters = watchFilters(options.site, options.group);
  const board = new UrgencyBoard();
  const out = process.stdout;
  let redraw: NodeJS.Timeout | undefined;
  const draw = () => {
    clearTimeout(redraw);
    redraw = undefined;
    const frame = board.render();
    out.write(out.isTTY ? `\x1b[H\x1b[2J${frame}\n` : `${frame}\n\n`);
  };

  let connection: IClientOptions;
  try {
    connection = await brokerConnectionOptions(options);
  } catch (error) {
    process.stderr.write(`ser-edge watch: ${(error as Error).message}\n`);
    return 2;
  }
  const shownUrl = redactUrl(options.broker);
  let client: MqttClient;
  let protocolVersion: 5 | 4;
  try {
    ({ client, protocolVersion } = await connectOperatorClient(options.broker, connection, { clientId: operatorClientId('ser-edge-watch'), reconnectPeriod: RECONNECT_MS }));
  } catch (error) {
    process.stderr.write(`ser-edge watch: cannot connect to ${shownUrl}: ${(error as Error).message}; check --broker (mqtt://host:1883 or mqtts://host:8883)\n`);
    return 1;
  }
  if (protocolVersion === 4 && options.group !== undefined) {
    // A 3.1.1 broker may take "$share/…" as an ordinary topic that nothing is published to.
    process.stderr.write(
      `ser-edge watch: warning: the broker at ${shownUrl} only speaks MQTT 3.1.1, but --group ${options.group} is an MQTT 5 shared subscription ($share/${options.group}/…): ` +
        'urgency events may never arrive. Use an MQTT 5 broker (mosquitto, EMQX, HiveMQ) for --group, or leave --group out.\n',
    );
  }
  client.on('message', (topic, payload, packet) => {
    const message = readWatchMessage(topic, payload);
    if (message === null) return;
    if (options.json) {
      if (message.ok) out.write(`${JSON.stringify({ type: message.kind, topic, payload: message.payload })}\n`);
      else process.stderr.write(`invalid payload on ${topic}: ${message.problem}\n`);
      return;
    }
    board.apply(message, packet.retain ? undefined : new Date().toISOString());
    redraw ??= setTimeout(draw, REDRAW_MS);
  });

  // One account of an outage, not a line per failed attempt: the table must stay on screen.
  let link: BrokerLink = { state: 'connected' };
  let stopping = false;
  const showLink = (next: BrokerLink) => {
    if (stopping) return; // our own disconnect at Ctrl-C is no outage
    const changed = next.state !== link.state;
    link = next;
    board.setBroker(shownUrl, link);
    if (options.json) {
      if (changed && next.state === 'retrying') process.stderr.write(`ser-edge watch: lost the broker at ${shownUrl}${next.lastError ? ` (${next.lastError})` : ''}; retrying every ${RECONNECT_MS / 1000} s\n`);
      if (changed && next.state === 'connected') process.stderr.write(`ser-edge watch: connected to ${shownUrl} again\n`);
    } else if (changed || out.isTTY) {
      // A pipe gets a frame when the link changes, a terminal also each retry's count.
      draw();
    }
  };
  board.setBroker(shownUrl, link);
  const lost = (error?: Error) =>
    showLink(link.state === 'retrying' ? { ...link, ...(error ? { lastError: error.message } : {}) } : { state: 'retrying', attempts: 0, since: new Date().toISOString(), ...(error ? { lastError: error.message } : {}) });
  client.on('close', () => lost());
  client.on('error', (error) => lost(error));
  client.on('reconnect', () => showLink(link.state === 'retrying' ? { ...link, attempts: link.attempts + 1 } : { state: 'retrying', attempts: 1, since: new Date().toISOString() }));
  client.on('connect', () => showLink({ state: 'connected' }));

  try {
    await client.subscribeAsync([filters.status, filters.state, filters.urgency, filters.telemetry, filters.model], { qos: 1 });
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
  stopping = true;
  clearTimeout(redraw);
  // Not waiting for a broker that is away: nothing is in flight that needs it.
  await client.endAsync(link.state !== 'connected');
  return 0;
}
