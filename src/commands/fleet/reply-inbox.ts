import { randomBytes } from 'node:crypto';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { CommandReply, describeIssues } from '../../mqtt/payload-schemas.js';
import { TOPIC_ROOT } from '../../mqtt/topics.js';

/** How one command to one gateway ended, as the tool saw it. */
export type RequestOutcome =
  | { kind: 'reply'; reply: CommandReply; sentAt: Date; repliedAt: Date }
  /** Something answered with our correlation but not with a CommandReply. */
  | { kind: 'invalid_reply'; problem: string; sentAt: Date; repliedAt: Date }
  /** No reply within the timeout; `acknowledged` says whether the broker had taken the command. */
  | { kind: 'timeout'; sentAt: Date; acknowledged: boolean }
  /** The broker would not take the command (PUBACK with an error reason, e.g. its ACL). */
  | { kind: 'refused'; message: string; sentAt: Date }
  /** The tech stopped the tool (Ctrl-C) while it waited. */
  | { kind: 'interrupted'; sentAt: Date };

/** The inbox could not be opened: the broker refused a subscription the tool needs. */
export class InboxError extends Error {
  override name = 'InboxError';
}

interface Pending {
  gateway: string;
  sentAt: Date;
  acknowledged: boolean;
  timer: NodeJS.Timeout | undefined;
  settle(outcome: RequestOutcome): void;
}

/**
 * Request/response with the gateways of a site over MQTT 5: every command names the tool's
 * own response topic, under the operators' inboxes (`ser/v1/{site}/ops/replies/…`, which
 * the gateway's default `commands.replyTopics` allows), and carries correlation data; the
 * payload's `correlationId` says the same for gateways and brokers that drop properties.
 * Replies are also read on `…/{gateway}/cmd/{command}/reply`: a gateway that refuses the
 * response topic answers there (`reply_topic_refused`), and on MQTT 3.1.1, which has no
 * response topics, every reply goes there.
 */
export class ReplyInbox {
  private readonly pending = new Map<string, Pending>();
  private readonly runId = randomBytes(6).toString('hex');
  private count = 0;
  private syncWaiter: (() => void) | undefined;

  constructor(
    private readonly deps: {
      client: MqttClient;
      protocolVersion: 5 | 4;
      site: string;
      /** `ser/v1/{site}/ops/replies/{identity}/{client id}`: replies come here, and `…/sync` markers. */
      responseTopic: string;
      /** The command name (`model.install`…), the last level of the topic it is sent on. */
      command: string;
      /** Aborted when the tech stops the tool: waiting requests end as `interrupted`. */
      signal?: AbortSignal;
    },
  ) {
    deps.signal?.addEventListener('abort', () => {
      for (const p of [...this.pending.values()]) p.settle({ kind: 'interrupted', sentAt: p.sentAt });
    });
  }

  /** Where the gateways' own reply topics are read (every gateway of the site, this command). */
  get gatewayReplyFilter(): string {
    return `${TOPIC_ROOT}/${this.deps.site}/+/cmd/${this.deps.command}/reply`;
  }

  /**
   * Subscribes to the inbox and (unless the tool sends no command) the gateways' reply
   * topics; throws an InboxError naming the topic the ACL refused.
   */
  async open(options: { gatewayReplies: boolean } = { gatewayReplies: true }): Promise<void> {
    await this.subscribe(`${this.deps.responseTopic}/#`, 'the replies to this tool');
    if (!options.gatewayReplies) return;
    try {
      await this.subscribe(this.gatewayReplyFilter, 'the gateways\' reply topics');
    } catch (error) {
      // On MQTT 5 that topic only carries refusals of the response topic, which the default config never makes.
      if (this.deps.protocolVersion === 4) throw error;
    }
  }

  /**
   * Resolves once the broker has passed on everything it had queued for this client before
   * now, retained messages of earlier subscriptions included: a marker published to the
   * inbox comes back behind them (brokers keep one queue per session). False when the
   * marker did not come back within `timeoutMs` (then the caller has waited that long).
   */
  async sync(timeoutMs: number): Promise<boolean> {
    const marker = `${this.deps.responseTopic}/sync`;
    const back = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.syncWaiter = undefined;
        resolve(false);
      }, timeoutMs);
      this.syncWaiter = () => {
        clearTimeout(timer);
        this.syncWaiter = undefined;
        resolve(true);
      };
    });
    try {
      await this.deps.client.publishAsync(marker, this.runId, { qos: 1, retain: false });
    } catch {
      // The broker would not take it (its ACL): the timeout is the only way to let the retained messages in.
    }
    return back;
  }

  /**
   * Sends `build(correlationId)` to the gateway's `…/cmd/{command}`. `outcome` resolves with
   * its reply, or with `timeout` `timeoutMs` after the broker took the command (or after it
   * was sent, while the broker has not acknowledged it). `accepted` resolves once the broker
   * has taken it (or the request has ended otherwise): a caller sending a large bundle to
   * many gateways waits for it, so only one copy is in flight at a time.
   */
  request(gateway: string, build: (correlationId: string) => object, timeoutMs: number): { accepted: Promise<void>; outcome: Promise<RequestOutcome> } {
    const correlationId = `${this.runId}-${++this.count}`;
    const topic = `${TOPIC_ROOT}/${this.deps.site}/${gateway}/cmd/${this.deps.command}`;
    const sentAt = new Date();
    if (this.deps.signal?.aborted) return { accepted: Promise.resolve(), outcome: Promise.resolve({ kind: 'interrupted', sentAt }) };
    let accept!: () => void;
    const accepted = new Promise<void>((resolve) => (accept = resolve));
    const outcome = new Promise<RequestOutcome>((resolve) => {
      const pending: Pending = {
        gateway,
        sentAt,
        acknowledged: false,
        timer: undefined,
        settle: (outcome) => {
          if (!this.pending.has(correlationId)) return;
          this.pending.delete(correlationId);
          clearTimeout(pending.timer);
          accept();
          resolve(outcome);
        },
      };
      const arm = () => {
        clearTimeout(pending.timer);
        pending.timer = setTimeout(() => pending.settle({ kind: 'timeout', sentAt, acknowledged: pending.acknowledged }), timeoutMs);
      };
      // Registered before publishing: a fast gateway can answer before the PUBACK is read.
      this.pending.set(correlationId, pending);
      arm();
      const payload = JSON.stringify(build(correlationId));
      this.deps.client
        .publishAsync(topic, payload, {
          qos: 1,
          retain: false,
          ...(this.deps.protocolVersion === 5 ? { properties: { responseTopic: this.deps.responseTopic, correlationData: Buffer.from(correlationId) } } : {}),
        })
        .then(
          () => {
            accept();
            if (!this.pending.has(correlationId)) return;
            pending.acknowledged = true;
            arm();
          },
          (error: Error & { code?: number }) => pending.settle({ kind: 'refused', message: publishRefusal(error, topic), sentAt }),
        );
    });
    return { accepted, outcome };
  }

  /** Takes a message if it is a reply to one of this tool's requests (or its sync marker); false otherwise. Never throws. */
  handle(topic: string, payload: Buffer, packet: IPublishPacket): boolean {
    if (topic === `${this.deps.responseTopic}/sync`) {
      if (payload.toString('utf8') === this.runId) this.syncWaiter?.();
      return true;
    }
    const fromInbox = topic === this.deps.responseTopic;
    const levels = topic.split('/');
    const fromGateway = levels.length === 7 && levels[2] === this.deps.site && levels[4] === 'cmd' && levels[5] === this.deps.command && levels[6] === 'reply';
    if (!fromInbox && !fromGateway) return false;
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      json = undefined;
    }
    const data = packet.properties?.correlationData;
    const byData = data !== undefined ? this.pending.get(Buffer.from(data).toString('utf8')) : undefined;
    const byPayload = json !== null && typeof json === 'object' && typeof (json as { correlationId?: unknown }).correlationId === 'string' ? this.pending.get((json as { correlationId: string }).correlationId) : undefined;
    const pending = byData ?? byPayload;
    // Someone else's reply (another operator's run on a gateway's reply topic), or a duplicate of one already taken.
    if (pending === undefined) return true;
    // A reply on a gateway's own topic must come from the gateway it was sent to.
    if (fromGateway && levels[3] !== pending.gateway) return true;
    const repliedAt = new Date();
    if (json === undefined) {
      pending.settle({ kind: 'invalid_reply', problem: `the reply on ${topic} is not JSON`, sentAt: pending.sentAt, repliedAt });
      return true;
    }
    const parsed = CommandReply.safeParse(json);
    if (!parsed.success) pending.settle({ kind: 'invalid_reply', problem: `the reply on ${topic} is not a command reply (${describeIssues(parsed.error)})`, sentAt: pending.sentAt, repliedAt });
    else pending.settle({ kind: 'reply', reply: parsed.data, sentAt: pending.sentAt, repliedAt });
    return true;
  }

  private async subscribe(filter: string, what: string): Promise<void> {
    try {
      await this.deps.client.subscribeAsync(filter, { qos: 1 });
    } catch (error) {
      throw new InboxError(`the broker refused the subscription to ${what}, ${filter} (${(error as Error).message}): its ACL must let this user read it`);
    }
  }
}

/** A broker's refusal of a command, with the ACL hint when that is the likely cause. */
function publishRefusal(error: Error & { code?: number }, topic: string): string {
  const code = typeof error.code === 'number' ? ` (0x${error.code.toString(16).padStart(2, '0')})` : '';
  if (error.code === 0x87) return `the broker refused to take the command on ${topic}: not authorised${code}; its ACL must let this user publish there`;
  if (error.code === 0x95) return `the broker refused the command on ${topic} as too large${code}; serve the bundle over http(s) with --url`;
  return `the broker refused the command on ${topic}: ${error.message}${code}`;
}
