import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import type { CommandReply } from '../mqtt/payload-schemas.js';
import { redactUrl } from '../mqtt/mqtt-link.js';
import { TOPIC_ROOT, assertTopicId } from '../mqtt/topics.js';
import { BrokerOptionError, brokerConnectionOptions, brokerIdentity, connectOperatorClient, operatorClientId, type BrokerConnectionFlags } from './broker-connection.js';
import { BundleInputError, installCommands, installProblem, mebibytes, readBundleToPublish, type BundleToPublish } from './fleet/bundle-to-publish.js';
import { renderOutcomes, renderSiteStatus, siteStatusDocument, summaryText } from './fleet/fleet-report.js';
import { InboxError, ReplyInbox } from './fleet/reply-inbox.js';
import { GATEWAY_RESULTS, TargetError, checkCanary, gatewayOutcomes, planTargets, rollOut, type GatewayOutcome, type TargetPlan, type TargetSelection } from './fleet/rollout.js';
import { SiteRoster } from './fleet/site-roster.js';

/** The options every fleet command shares: the broker (and its TLS and credentials, as `watch` has them), the site, the output. */
export interface FleetOptions extends BrokerConnectionFlags {
  site: string;
  json: boolean;
  /** Seconds: how long to wait for each gateway's reply (status: for the retained messages). */
  timeout?: number;
}

/** A command for chosen gateways: `--gateway G` (repeatable, or comma-separated) or `--all`. */
export interface TargetedOptions extends FleetOptions {
  gateway?: string[];
  all?: boolean;
}

export interface PublishOptions extends TargetedOptions {
  /** Minutes of shadow trial: the gateways stage the bundle and run it beside the active model. */
  shadow?: number;
  canary?: number;
  force: boolean;
  /** The gateways download the packed bundle from here (http/https) instead of receiving it inline. */
  url?: string;
}

/** The fleet commands that carry nothing but a correlation id. */
export type PlainModelCommand = 'model.rollback' | 'model.promote' | 'model.discard';

/** An inline install takes a while on a Pi (unpack, verify, self-test, load); a rollback or a shadow decision much less. */
export const DEFAULT_PUBLISH_TIMEOUT_SECONDS = 120;
export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 60;
export const DEFAULT_STATUS_TIMEOUT_SECONDS = 10;

/** mqtt.js's pause between reconnect attempts, should the broker drop the tool while it waits. */
const RECONNECT_MS = 2000;

/** A command line that cannot run as written; exit 2. */
class UsageError extends Error {
  override name = 'UsageError';
}

function topicSafe(option: string, value: string): string {
  try {
    return assertTopicId(option === '--site' ? 'site' : 'gateway', value);
  } catch {
    throw new UsageError(`${option} ${JSON.stringify(value)} is not a site or gateway id: ids contain no '+', '#', '/', whitespace or NUL and do not start with '$'`);
  }
}

/** The gateways asked for, checked before anything connects. */
function selectionOf(options: TargetedOptions): TargetSelection {
  const given = options.gateway ?? [];
  if (options.all && given.length > 0) throw new UsageError('give either --gateway G (one or more) or --all, not both');
  if (!options.all && given.length === 0) throw new UsageError('name the gateways: --gateway G (repeat it, or G1,G2), or --all for every gateway of the site');
  if (options.all) return { all: true };
  const seen = new Set<string>();
  for (const gateway of given) {
    topicSafe('--gateway', gateway);
    if (seen.has(gateway)) throw new UsageError(`--gateway ${gateway} is given twice`);
    seen.add(gateway);
  }
  return { all: false, gateways: given };
}

/** A connected tool: the broker link, the site's retained state and the reply inbox. */
interface FleetSession {
  client: MqttClient;
  protocolVersion: 5 | 4;
  roster: SiteRoster;
  inbox: ReplyInbox;
  close(): Promise<void>;
}

/** Something that stops the run after the command line was accepted: exit code and the line to print. */
class RunStop extends Error {
  constructor(
    readonly exitCode: 1 | 2,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Connects, opens the inbox and reads the site's retained status and model. The session
 * is kept on the broker for the length of the run (MQTT 5 session expiry), so a reply
 * published while the link is briefly down is delivered when it is back, and ended with
 * the run.
 */
async function openSession(options: FleetOptions, command: string, timeoutSeconds: number, signal?: AbortSignal): Promise<FleetSession> {
  let connection: IClientOptions;
  try {
    connection = await brokerConnectionOptions(options);
  } catch (error) {
    if (error instanceof BrokerOptionError) throw new RunStop(2, error.message);
    throw error;
  }
  const clientId = operatorClientId('ser-edge-model');
  let client: MqttClient;
  let protocolVersion: 5 | 4;
  try {
    ({ client, protocolVersion } = await connectOperatorClient(options.broker, connection, {
      clientId,
      reconnectPeriod: RECONNECT_MS,
      clean: false,
      properties: { sessionExpiryInterval: Math.ceil(timeoutSeconds) + 60 },
    }));
  } catch (error) {
    throw new RunStop(1, `cannot connect to ${redactUrl(options.broker)}: ${(error as Error).message}; check --broker (mqtt://host:1883 or mqtts://host:8883) and the credentials`);
  }
  client.on('error', () => {}); // a lost link is retried; what it cost shows as timeouts
  // The operators' inboxes are per user (the example ACL lets each read only its own), then per run.
  const identity = brokerIdentity(connection);
  const inboxLevel = identity !== null && isTopicLevel(identity) ? `${identity}/${clientId}` : clientId;
  const roster = new SiteRoster(options.site);
  const inbox = new ReplyInbox({ client, protocolVersion, site: options.site, responseTopic: `${TOPIC_ROOT}/${options.site}/ops/replies/${inboxLevel}`, command, ...(signal ? { signal } : {}) });
  client.on('message', (topic, payload, packet) => {
    if (!inbox.handle(topic, payload, packet)) roster.apply(topic, payload);
  });
  const close = async () => {
    // Not waiting for a broker that is away: the session then ends at its expiry.
    if (!client.connected) return client.endAsync(true);
    // The session was kept for the run only; DISCONNECT ends it now rather than at its expiry.
    await client.endAsync(false, protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}).catch(() => client.endAsync(true));
  };
  try {
    await inbox.open({ gatewayReplies: command !== '' });
    await client.subscribeAsync([roster.filters.status, roster.filters.model], { qos: 1 }).catch((error: Error) => {
      throw new InboxError(`the broker refused the subscription to ${roster.filters.status} and ${roster.filters.model} (${error.message}): its ACL must let this user read them`);
    });
    await inbox.sync(Math.min(timeoutSeconds, DEFAULT_STATUS_TIMEOUT_SECONDS) * 1000);
  } catch (error) {
    await close();
    if (error instanceof InboxError) throw new RunStop(1, error.message);
    throw error;
  }
  return { client, protocolVersion, roster, inbox, close };
}

function isTopicLevel(value: string): boolean {
  try {
    assertTopicId('user', value);
    return true;
  } catch {
    return false;
  }
}

/** The largest packet the broker said it takes (MQTT 5 CONNACK), if it said. */
function brokerMaximumPacketSize(client: MqttClient): number | undefined {
  // mqtt.js keeps the CONNACK without a public accessor.
  return (client as unknown as { connackPacket?: IConnackPacket }).connackPacket?.properties?.maximumPacketSize;
}

interface CommandRun {
  tool: string;
  command: string;
  options: TargetedOptions;
  timeoutSeconds: number;
  canary?: number;
  /** Checked after connecting, before sending (e.g. the broker's packet size). */
  beforeSending?(session: FleetSession, plan: TargetPlan): string | null;
  build(correlationId: string): object;
  succeeded(reply: CommandReply): boolean;
  title(plan: TargetPlan): string;
  /** Fields of the --json document besides the gateways. */
  document: Record<string, unknown>;
}

/** Sends one command to the chosen gateways (canaries first), waits, prints the table or the JSON document. */
async function runTargeted(run: CommandRun): Promise<number> {
  const { tool, options } = run;
  const aborted = new AbortController();
  let session: FleetSession;
  try {
    session = await openSession(options, run.command, run.timeoutSeconds, aborted.signal);
  } catch (error) {
    if (error instanceof RunStop) {
      process.stderr.write(`${tool}: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
  const { roster, inbox } = session;
  try {
    const plan = planTargets(roster, selectionOf(options));
    if (plan.order.length === 0) {
      process.stderr.write(`${tool}: no gateway of site ${options.site} has a retained status on ${redactUrl(options.broker)}: is --site right, and may this user read ${roster.filters.status}?\n`);
      return 1;
    }
    checkCanary(plan, run.canary);
    const refusal = run.beforeSending?.(session, plan) ?? null;
    if (refusal !== null) {
      process.stderr.write(`${tool}: ${refusal}\n`);
      return 1;
    }
    const before = new Map(roster.gateways.map((r) => [r.gateway, roster.activeOf(r.gateway)] as const));
    const onSignal = () => {
      process.stderr.write(`${tool}: stopping; commands already sent may still be carried out\n`);
      aborted.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let outcomes;
    try {
      outcomes = await rollOut({
        inbox,
        plan,
        ...(run.canary !== undefined ? { canary: run.canary } : {}),
        timeoutMs: run.timeoutSeconds * 1000,
        build: (_gateway, correlationId) => run.build(correlationId),
        succeeded: run.succeeded,
        progress: (line) => process.stderr.write(`${tool}: ${line}\n`),
        signal: aborted.signal,
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    // A gateway publishes its …/model around its reply: let what the broker already has arrive.
    if (!aborted.signal.aborted) await inbox.sync(2000);
    const rows = gatewayOutcomes(plan, outcomes, {
      ...(run.canary !== undefined ? { canary: run.canary } : {}),
      timeoutSeconds: run.timeoutSeconds,
      command: run.command,
      site: options.site,
      succeeded: run.succeeded,
      active: (gateway) => roster.activeOf(gateway),
      activeBefore: (gateway) => before.get(gateway) ?? null,
    });
    const ok = rows.every((r) => r.result === 'ok');
    if (options.json) process.stdout.write(`${JSON.stringify(outcomeDocument(run, rows, ok))}\n`);
    else process.stdout.write(renderOutcomes(run.title(plan), rows));
    return ok ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError || error instanceof TargetError) {
      process.stderr.write(`${tool}: ${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    await session.close();
  }
}

function outcomeDocument(run: CommandRun, rows: GatewayOutcome[], ok: boolean): object {
  return {
    command: run.command,
    site: run.options.site,
    ok,
    ...run.document,
    canary: run.canary ?? null,
    timeoutSeconds: run.timeoutSeconds,
    gateways: rows,
    summary: Object.fromEntries(GATEWAY_RESULTS.map((r) => [r, rows.filter((row) => row.result === r).length])),
    text: summaryText(rows),
  };
}

/** Checks what needs no broker: the site, the selection and numbers that do not fit together. */
function checkCommandLine(tool: string, options: TargetedOptions, canary?: number): number | null {
  try {
    topicSafe('--site', options.site);
    const selection = selectionOf(options);
    if (canary !== undefined && !selection.all && canary > selection.gateways.length) {
      throw new UsageError(`--canary ${canary} is more than the ${selection.gateways.length} gateway${selection.gateways.length === 1 ? '' : 's'} named with --gateway`);
    }
    return null;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${tool}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/**
 * `ser-edge model publish BUNDLE`: sends `cmd/model.install` with the packed bundle (inline,
 * or `--url` with its size and sha256) to the chosen gateways, canaries first, and prints
 * what each answered. Exit 0 only when every targeted gateway installed (or staged) it.
 */
export async function runModelPublish(bundlePath: string, options: PublishOptions): Promise<number> {
  const tool = 'ser-edge model publish';
  const early = checkCommandLine(tool, options, options.canary);
  if (early !== null) return early;
  let bundle: BundleToPublish;
  try {
    bundle = await readBundleToPublish(bundlePath);
  } catch (error) {
    if (error instanceof BundleInputError) {
      process.stderr.write(`${tool}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const install = { ...(options.url !== undefined ? { url: options.url } : {}), ...(options.shadow !== undefined ? { shadowMinutes: options.shadow } : {}), force: options.force };
  const problem = installProblem(bundle, install);
  if (problem !== null) {
    process.stderr.write(`${tool}: ${problem}\n`);
    return 2;
  }
  const build = installCommands(bundle, install);
  const transport = options.url !== undefined ? `from ${options.url}` : `${mebibytes(bundle.packed.length)} inline`;
  const mode = options.shadow !== undefined ? `shadow trial of ${options.shadow} min` : 'activate';
  return runTargeted({
    tool,
    command: 'model.install',
    options,
    timeoutSeconds: options.timeout ?? DEFAULT_PUBLISH_TIMEOUT_SECONDS,
    ...(options.canary !== undefined ? { canary: options.canary } : {}),
    build,
    // A gateway that already runs this very bundle is where the rollout wants it: publishing again to a site after a gateway missed it is safe.
    succeeded: (reply) => reply.ok || reply.error?.code === 'already_active',
    beforeSending(session) {
      const limit = brokerMaximumPacketSize(session.client);
      // The payload is the bulk of the packet; 1 KiB covers the topic, properties and header.
      const bytes = Buffer.byteLength(JSON.stringify(build('x'.repeat(32)))) + 1024;
      if (limit !== undefined && bytes > limit) {
        return `the broker takes packets of at most ${limit} bytes and this install command is about ${bytes}: serve the packed bundle over http(s) and give --url URL`;
      }
      return null;
    },
    title: (plan) =>
      `model.install ${bundle.name} ${bundle.version} (${transport}, ${mode}${options.force ? ', force' : ''}) on site ${options.site}: ` +
      `${plan.order.length} gateway${plan.order.length === 1 ? '' : 's'}${options.canary !== undefined ? `, canary ${options.canary}` : ''}`,
    document: {
      bundle: {
        path: bundle.path,
        name: bundle.name,
        version: bundle.version,
        bytes: bundle.packed.length,
        sha256: bundle.sha256,
        manifestSha256: bundle.manifestSha256,
        transport: options.url !== undefined ? 'url' : 'inline',
        ...(options.url !== undefined ? { url: options.url } : {}),
      },
      mode: options.shadow !== undefined ? 'shadow' : 'activate',
      shadowMinutes: options.shadow ?? null,
      force: options.force,
    },
  });
}

const VERBS: Record<PlainModelCommand, string> = { 'model.rollback': 'rollback', 'model.promote': 'promote', 'model.discard': 'discard' };

/** `ser-edge model rollback|promote|discard`: the command to the chosen gateways, and what each answered. */
export async function runModelCommand(command: PlainModelCommand, options: TargetedOptions): Promise<number> {
  const tool = `ser-edge model ${VERBS[command]}`;
  const early = checkCommandLine(tool, options);
  if (early !== null) return early;
  return runTargeted({
    tool,
    command,
    options,
    timeoutSeconds: options.timeout ?? DEFAULT_COMMAND_TIMEOUT_SECONDS,
    build: (correlationId) => ({ schema: 1, correlationId }),
    succeeded: (reply) => reply.ok,
    title: (plan) => `${command} on site ${options.site}: ${plan.order.length} gateway${plan.order.length === 1 ? '' : 's'}`,
    document: {},
  });
}

/** `ser-edge model status`: every gateway's model state as its retained `…/status` and `…/model` say. */
export async function runModelStatus(options: FleetOptions): Promise<number> {
  const tool = 'ser-edge model status';
  try {
    topicSafe('--site', options.site);
  } catch (error) {
    process.stderr.write(`${tool}: ${(error as Error).message}\n`);
    return 2;
  }
  let session: FleetSession;
  try {
    session = await openSession(options, '', options.timeout ?? DEFAULT_STATUS_TIMEOUT_SECONDS);
  } catch (error) {
    if (error instanceof RunStop) {
      process.stderr.write(`${tool}: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
  try {
    const { roster } = session;
    if (roster.gateways.length === 0) {
      process.stderr.write(
        `${tool}: no gateway of site ${options.site} has a retained status or model on ${redactUrl(options.broker)}: is --site right, and may this user read ${roster.filters.status} and ${roster.filters.model}?\n`,
      );
      if (options.json) process.stdout.write(`${JSON.stringify(siteStatusDocument(roster))}\n`);
      return 1;
    }
    process.stdout.write(options.json ? `${JSON.stringify(siteStatusDocument(roster))}\n` : renderSiteStatus(roster));
    return 0;
  } finally {
    await session.close();
  }
}
