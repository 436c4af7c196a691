import { ulid } from 'ulid';
import { silentLogger, type Logger } from './logger.js';
import type { MqttLink } from './mqtt-link.js';
import type { Outbox } from './outbox.js';
import { ChannelState, SCHEMA_VERSION, describeIssues, type UrgencyEvent } from './payload-schemas.js';

export interface UrgencyPublisherDeps {
  link: MqttLink;
  outbox: Outbox;
  logger?: Logger;
  /** Events published ahead of their PUBACKs. Order still holds: one connection delivers in order. Default 8. */
  maxInFlight?: number;
  /**
   * First pause before retrying an event the broker refused for a reason that may pass
   * (quota exceeded, unspecified error); doubled per refusal up to 60 s. Default 5 s.
   */
  retryDelayMs?: number;
}

const MAX_RETRY_DELAY_MS = 60_000;

/**
 * MQTT 5 PUBACK reason codes that no retry of the same publish can change: the ACL denies
 * the topic (0x87), the topic is invalid (0x90), the packet is too large for the broker
 * (0x95), or the broker rejects the payload's format (0x99). Others (0x80 unspecified,
 * 0x83 implementation specific, 0x97 quota exceeded) may pass and are retried.
 */
export const PERMANENT_REFUSALS: ReadonlyMap<number, string> = new Map([
  [0x87, 'not authorised: the broker ACL does not let this gateway publish to the topic'],
  [0x90, 'topic name invalid'],
  [0x95, 'packet too large for the broker'],
  [0x99, 'payload format invalid'],
]);

/** The MQTT 5 reason code a refused publish carries (mqtt.js puts it in `code`), else null. */
export function refusalCode(err: Error): number | null {
  const code = (err as Error & { code?: unknown }).code;
  return typeof code === 'number' && code >= 0x80 ? code : null;
}

/** A failed publish's reason code, and why no retry can change it when that is so. */
function classifyRefusal(err: Error): { code: number | null; permanent: string | undefined } {
  const code = refusalCode(err);
  return { code, permanent: code === null ? undefined : PERMANENT_REFUSALS.get(code) };
}

/** What the daemon knows about a flag; the publisher adds schema, id, seq, ts, site and gateway. */
export type UrgencyFlag = Omit<UrgencyEvent, 'schema' | 'id' | 'seq' | 'ts' | 'site' | 'gateway'>;

/** A channel's present, as the daemon reports it; the publisher stamps and retains it. */
export type ChannelStateUpdate = Omit<ChannelState, 'schema' | 'ts' | 'site' | 'gateway'>;

/**
 * Moves flag events from the outbox to the broker: in seq order, acking each in the
 * outbox only on its PUBACK, and replaying everything unacknowledged after a reconnect.
 * A replay may repeat an event the broker had already taken (its PUBACK lost with the
 * connection): the same id, which consumers use to drop it. Also keeps each channel's
 * retained state topic current, republishing the latest state after every reconnect.
 */
export class UrgencyPublisher {
  private readonly log: Logger;
  private draining = false;
  private again = false;
  /**
   * Per kind of publish, refusals in a row and the timer of the next attempt: while it is
   * pending, what the broker refused for a reason that may pass is held (not republished on
   * every new flag), so the broker sees one retry per 5, 10, 20 … 60 s.
   */
  private readonly backoff: Record<'events' | 'states', { refusals: number; timer: NodeJS.Timeout | null }> = {
    events: { refusals: 0, timer: null },
    states: { refusals: 0, timer: null },
  };
  private readonly states = new Map<string, ChannelState>();
  /** Per channel: the newest event stored when its current state was set (the state waits for it). */
  private readonly storedBefore = new Map<string, number>();
  private readonly newestStored = new Map<string, number>();
  private readonly dirtyStates = new Set<string>();
  private started = false;
  private readonly onConnect = () => {
    for (const channel of this.states.keys()) this.dirtyStates.add(channel);
    // A new connection replays at once; a refusal before it says nothing about this one.
    this.clearBackoffTimers();
    this.kick();
  };
  private readonly onAppended = () => this.kick();

  constructor(private readonly deps: UrgencyPublisherDeps) {
    this.log = deps.logger ?? silentLogger;
  }

  /** Start after the outbox (it must be readable) and before or after the link. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.deps.link.on('connect', this.onConnect);
    this.deps.outbox.on('appended', this.onAppended);
    this.kick();
  }

  /**
   * Stop before the link and the outbox; unacknowledged events stay in the outbox for the
   * next start. A publish still waiting for its PUBACK gets at most `maxWaitMs` (default
   * 2 s, less when the daemon's shutdown has less left) and is then abandoned: the outbox
   * keeps the event, and stopping the link fails the publish.
   */
  async stop(maxWaitMs = 2000): Promise<void> {
    this.started = false;
    this.deps.link.off('connect', this.onConnect);
    this.deps.outbox.off('appended', this.onAppended);
    this.clearBackoffTimers();
    const until = performance.now() + maxWaitMs;
    while (this.draining && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Builds the event for a flag, makes it durable in the outbox, updates the channel's
   * retained state, and resolves with the event once it is on disk (not yet published).
   */
  async flag(flag: UrgencyFlag): Promise<UrgencyEvent> {
    const { link, outbox } = this.deps;
    const event: UrgencyEvent = {
      schema: SCHEMA_VERSION,
      id: ulid(),
      seq: outbox.nextSeq(),
      ts: new Date().toISOString(),
      site: link.site,
      gateway: link.gateway,
      ...flag,
    };
    await outbox.append(event);
    this.newestStored.set(event.channel, Math.max(event.seq, this.newestStored.get(event.channel) ?? 0));
    this.setChannelState({ channel: event.channel, callId: event.callId, level: event.level, score: event.score, eventId: event.id, emotion: event.emotion });
    return event;
  }

  /** Sets a channel's retained state (e.g. back to low with callId null at a call's end). */
  setChannelState(update: ChannelStateUpdate): void {
    const { site, gateway } = this.deps.link;
    const state = ChannelState.safeParse({ schema: SCHEMA_VERSION, ts: new Date().toISOString(), site, gateway, ...update });
    if (!state.success) throw new Error(`channel state for ${update.channel} is invalid: ${describeIssues(state.error)}`);
    this.states.set(update.channel, state.data);
    this.storedBefore.set(update.channel, this.newestStored.get(update.channel) ?? 0);
    this.dirtyStates.add(update.channel);
    this.kick();
  }

  private kick(): void {
    if (!this.started) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      do {
        this.again = false;
        if (!this.deps.link.connected) return;
        await this.drainEvents();
        await this.publishStates();
      } while (this.again && this.started);
    } finally {
      this.draining = false;
    }
  }

  private async drainEvents(): Promise<void> {
    const { link, outbox } = this.deps;
    const window = Math.max(1, this.deps.maxInFlight ?? 8);
    for (;;) {
      if (this.backoff.events.timer) return; // held: the backoff timer kicks again
      const batch = outbox.pending().slice(0, window);
      if (batch.length === 0 || !this.started || !link.connected) return;
      // Published back to back in seq order; each is acked as its own PUBACK arrives.
      const results = await Promise.allSettled(
        batch.map((event) => link.publish(link.topics.urgency(event.channel), event, { qos: 1, retain: false }).then(() => outbox.ack(event.id))),
      );
      const held: Record<string, unknown>[] = [];
      for (const [i, result] of results.entries()) {
        if (result.status === 'fulfilled') continue;
        const err = result.reason as Error;
        if (err.name === 'LinkOfflineError') return; // the next 'connect' replays from the oldest pending
        const event = batch[i]!;
        const { code, permanent } = classifyRefusal(err);
        const where = { channel: event.channel, id: event.id, seq: event.seq, level: event.level, topic: link.topics.urgency(event.channel), reasonCode: code, err: err.message };
        if (!permanent) {
          held.push(where);
          continue;
        }
        try {
          await outbox.reject(event.id, `0x${code!.toString(16)} ${permanent}`);
          this.log.error({ ...where, keptIn: outbox.rejectedPath }, `broker refused an urgency event for good (${permanent}); it was moved to the rejected file and later events go on`);
        } catch (keepErr) {
          held.push({ ...where, keepErr: (keepErr as Error).message });
        }
      }
      if (held.length > 0) {
        const retryInMs = this.hold('events');
        for (const where of held) this.log.error({ ...where, retryInMs }, 'urgency event not delivered; it stays in the outbox and is retried');
        return;
      }
      this.backoff.events.refusals = 0;
    }
  }

  private async publishStates(): Promise<void> {
    const { link } = this.deps;
    if (this.backoff.states.timer) return;
    // A channel's state follows the events stored before it: while one of them waits in the
    // outbox, a late subscriber would otherwise see the level (or the end of a call) before
    // the flag that set it. Such a state stays dirty and goes out in the pass that delivers
    // them. Events stored after it do not hold it back, so a busy channel's state still moves.
    // Asked of each channel when its state is taken, not once before the loop: every publish
    // below waits for its PUBACK, and meanwhile a channel may store events and set a newer
    // state (a fast call's raise, clear and end), which must wait for those events in turn.
    for (const channel of [...this.dirtyStates]) {
      const state = this.states.get(channel);
      if (state && this.waitsForEvents(channel)) continue;
      this.dirtyStates.delete(channel);
      if (!state) continue;
      try {
        await link.publish(link.topics.state(channel), state, { qos: 1, retain: true });
        this.backoff.states.refusals = 0;
      } catch (err) {
        const error = err as Error;
        if (error.name === 'LinkOfflineError') {
          this.dirtyStates.add(channel); // republished after the reconnect
          return;
        }
        const { code, permanent } = classifyRefusal(error);
        if (permanent) {
          // Retrying cannot help; the channel's next state change tries again.
          this.log.error({ channel, topic: link.topics.state(channel), reasonCode: code, err: error.message }, `broker refused a channel state for good (${permanent})`);
          continue;
        }
        this.dirtyStates.add(channel);
        this.log.warn({ channel, reasonCode: code, err: error.message, retryInMs: this.hold('states') }, 'could not publish channel state; it is retried');
        return;
      }
    }
  }

  /** Whether an event of `channel` stored before its current state is still waiting in the outbox. */
  private waitsForEvents(channel: string): boolean {
    // Per channel, not a scan of the whole outbox: after an outage every channel's state is
    // due while thousands of events wait, and this runs for each of them on every pass.
    return this.deps.outbox.oldestWaitingSeq(channel) <= (this.storedBefore.get(channel) ?? 0);
  }

  /** Backs `kind` off after a refusal that may pass: 5 s (retryDelayMs), doubling to 60 s; returns the delay. */
  private hold(kind: 'events' | 'states'): number {
    const b = this.backoff[kind];
    const delay = Math.min(MAX_RETRY_DELAY_MS, (this.deps.retryDelayMs ?? 5000) * 2 ** Math.min(b.refusals, 16));
    b.refusals++;
    if (b.timer) clearTimeout(b.timer);
    b.timer = this.started
      ? setTimeout(() => {
          b.timer = null;
          this.kick();
        }, delay)
      : null;
    return delay;
  }

  private clearBackoffTimers(): void {
    for (const b of Object.values(this.backoff)) {
      if (b.timer) clearTimeout(b.timer);
      b.timer = null;
    }
  }
}
