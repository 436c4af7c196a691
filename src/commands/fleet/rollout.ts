import { ModelCommandResult, type CommandReply } from '../../mqtt/payload-schemas.js';
import { TOPIC_ROOT } from '../../mqtt/topics.js';
import type { ReplyInbox, RequestOutcome } from './reply-inbox.js';
import type { SiteRoster } from './site-roster.js';

/** What became of one gateway in a fleet command, as the table and `--json` show it. */
export type GatewayResult = 'ok' | 'failed' | 'timeout' | 'not_sent' | 'offline';
export const GATEWAY_RESULTS: readonly GatewayResult[] = ['ok', 'failed', 'timeout', 'not_sent', 'offline'];

export type BundleRef = { name: string; version: string; sha256?: string | undefined };

export interface GatewayOutcome {
  gateway: string;
  /** Sent in the first wave, which decides whether the rest are sent. */
  canary: boolean;
  result: GatewayResult;
  /** The reply's `result.reason` or `error.code`; `canary_failed`, `offline`, `no_status`, `timeout`, `refused_by_broker`, `interrupted`, `invalid_reply` otherwise. */
  reason: string | null;
  /** The active model after the command: from the reply, else from the retained `…/model`. */
  active: BundleRef | null;
  /** Before the command, from the retained `…/model` (null when it said nothing). */
  activeBefore: BundleRef | null;
  /** What went wrong and what to do; null when it went well. */
  message: string | null;
  sentAt: string | null;
  repliedAt: string | null;
  /** With `rate_limited`: when the gateway would take the command again. */
  retryAfterSeconds?: number;
}

/** A selection that cannot be carried out as given (exit 2): --canary larger than the gateways to send to. */
export class TargetError extends Error {
  override name = 'TargetError';
}

export type TargetSelection = { all: true } | { all: false; gateways: string[] };

/** Who a fleet command goes to: the gateways to send to, in order, and the ones it cannot reach. */
export interface TargetPlan {
  /** Every targeted gateway in the order of the table: as given, or sorted by id for --all. */
  order: string[];
  /** Online, in order: the first `canary` of them are the canaries. */
  send: string[];
  /** Not sent to, with why. */
  unreachable: Map<string, { reason: 'offline' | 'no_status'; message: string }>;
}

/**
 * Only gateways whose retained status says online are sent to. A gateway keeps no session
 * on the broker (it connects with a clean start), so a command published while it is offline
 * is dropped, not queued: it would only ever time out. A gateway named with --gateway that
 * has no retained status at all is most often a misspelt id, and is said to be so at once
 * rather than after the timeout.
 */
export function planTargets(roster: SiteRoster, selection: TargetSelection): TargetPlan {
  const order = selection.all ? roster.withStatus : selection.gateways;
  const send: string[] = [];
  const unreachable: TargetPlan['unreachable'] = new Map();
  for (const gateway of order) {
    const status = roster.get(gateway)?.status ?? null;
    if (status === null) {
      const known = roster.withStatus;
      unreachable.set(gateway, {
        reason: 'no_status',
        message:
          `no retained ${TOPIC_ROOT}/${roster.site}/${gateway}/status on this broker, so it was not sent: ` +
          (known.length > 0 ? `is the gateway id right? The site's gateways are ${known.join(', ')}` : `is the site id right, and may this user read ${roster.filters.status}?`),
      });
    } else if (status.state === 'offline') {
      // A last will carries the time it was registered (the gateway's connect), not the moment it was lost.
      const since = status.reason === 'lost' ? ' (its connection was lost)' : ` since ${status.ts}${status.reason === 'shutdown' ? ' (shut down)' : ''}`;
      unreachable.set(gateway, {
        reason: 'offline',
        message: `offline${since}, so it was not sent: the broker keeps no commands for an offline gateway. Run this again once it is back online`,
      });
    } else {
      send.push(gateway);
    }
  }
  return { order, send, unreachable };
}

/** Checks --canary against the plan: the canaries must leave a decision to make about the rest. */
export function checkCanary(plan: TargetPlan, canary: number | undefined): void {
  // With no gateway online there is nothing to decide: the table lists them all as offline.
  if (canary === undefined || plan.send.length === 0) return;
  if (canary > plan.send.length) {
    const offline = plan.order.length - plan.send.length;
    throw new TargetError(
      `--canary ${canary} is more than the ${plan.send.length} gateway${plan.send.length === 1 ? '' : 's'} to send to` +
        (offline > 0 ? ` (${offline} of the ${plan.order.length} targeted ${offline === 1 ? 'is' : 'are'} offline or unknown)` : '') +
        `: give at most --canary ${plan.send.length}`,
    );
  }
}

export interface RolloutDeps {
  inbox: ReplyInbox;
  plan: TargetPlan;
  canary?: number;
  timeoutMs: number;
  /** The command payload for one gateway, with the correlation id the inbox chose. */
  build(gateway: string, correlationId: string): object;
  /** Whether a reply means the gateway did what was asked. */
  succeeded(reply: CommandReply): boolean;
  /** One line per event (sent, replied, timed out), for the tech watching. */
  progress(line: string): void;
  /** Aborted when the tech stops the tool: nothing more is sent. */
  signal?: AbortSignal;
}

type WaveOutcome = RequestOutcome | { kind: 'not_sent'; canaries: string[]; failed: string[] };

/**
 * Sends the command to the canaries, waits for every one of their replies, and goes on to
 * the rest only when all of them succeeded; otherwise the rest are not sent. Within a wave
 * the commands go out one after another, each once the broker took the one before (a large
 * inline bundle is then in memory and on the wire once at a time), and the replies are
 * awaited together.
 */
export async function rollOut(deps: RolloutDeps): Promise<Map<string, WaveOutcome>> {
  const outcomes = new Map<string, WaveOutcome>();
  const canaries = deps.canary === undefined ? [] : deps.plan.send.slice(0, deps.canary);
  const rest = deps.plan.send.slice(canaries.length);
  const wave = async (gateways: string[], label: string): Promise<void> => {
    const waiting: Promise<void>[] = [];
    for (const [i, gateway] of gateways.entries()) {
      if (deps.signal?.aborted) break;
      const request = deps.inbox.request(gateway, (correlationId) => deps.build(gateway, correlationId), deps.timeoutMs);
      deps.progress(`${gateway}: sending${label ? ` (${label} ${i + 1} of ${gateways.length})` : ''}`);
      waiting.push(
        request.outcome.then((outcome) => {
          outcomes.set(gateway, outcome);
          deps.progress(`${gateway}: ${progressText(outcome, deps.succeeded)}`);
        }),
      );
      await request.accepted;
    }
    await Promise.all(waiting);
  };
  if (canaries.length > 0) {
    await wave(canaries, 'canary');
    // Stopped by the tech: the rest are not sent, but not because a canary failed.
    if (deps.signal?.aborted) return outcomes;
    const failed = canaries.filter((g) => {
      const o = outcomes.get(g);
      return !(o?.kind === 'reply' && deps.succeeded(o.reply));
    });
    if (failed.length > 0) {
      for (const gateway of rest) outcomes.set(gateway, { kind: 'not_sent', canaries, failed });
      if (rest.length > 0) deps.progress(`canary ${failed.join(', ')} did not succeed: ${rest.length === 1 ? 'the other gateway was' : `the other ${rest.length} gateways were`} not sent the command`);
      return outcomes;
    }
  }
  await wave(rest, canaries.length > 0 ? 'after the canaries' : '');
  return outcomes;
}

function progressText(outcome: RequestOutcome, succeeded: (reply: CommandReply) => boolean): string {
  switch (outcome.kind) {
    case 'reply': {
      const seconds = ((outcome.repliedAt.getTime() - outcome.sentAt.getTime()) / 1000).toFixed(1);
      const reason = outcome.reply.ok ? reasonOf(outcome.reply.result) : outcome.reply.error?.code;
      return `${succeeded(outcome.reply) ? 'ok' : 'failed'}${reason ? ` ${reason}` : ''} after ${seconds} s`;
    }
    case 'timeout':
      return 'no reply in time';
    case 'refused':
      return 'refused by the broker';
    case 'invalid_reply':
      return 'answered with an invalid reply';
    case 'interrupted':
      return 'stopped waiting (interrupted)';
  }
}

function reasonOf(result: unknown): string | undefined {
  const reason = (result as { reason?: unknown } | null | undefined)?.reason;
  return typeof reason === 'string' ? reason : undefined;
}

/** One table row per targeted gateway, in the plan's order. */
export function gatewayOutcomes(
  plan: TargetPlan,
  outcomes: Map<string, WaveOutcome>,
  options: {
    canary?: number;
    timeoutSeconds: number;
    command: string;
    site: string;
    succeeded(reply: CommandReply): boolean;
    /** The gateway's active model as its retained state says now, and as it said before the command. */
    active(gateway: string): BundleRef | null;
    activeBefore(gateway: string): BundleRef | null;
  },
): GatewayOutcome[] {
  const canaries = new Set(options.canary === undefined ? [] : plan.send.slice(0, options.canary));
  return plan.order.map((gateway): GatewayOutcome => {
    const row: GatewayOutcome = {
      gateway,
      canary: canaries.has(gateway),
      result: 'failed',
      reason: null,
      active: refOf(options.active(gateway)),
      activeBefore: refOf(options.activeBefore(gateway)),
      message: null,
      sentAt: null,
      repliedAt: null,
    };
    const unreachable = plan.unreachable.get(gateway);
    if (unreachable) return { ...row, result: 'offline', reason: unreachable.reason, message: unreachable.message };
    const outcome = outcomes.get(gateway);
    if (outcome === undefined) return { ...row, result: 'not_sent', reason: 'interrupted', message: 'not sent: the tool was stopped first' };
    if (outcome.kind === 'not_sent') {
      return { ...row, result: 'not_sent', reason: 'canary_failed', message: `not sent: the canary ${outcome.failed.join(', ')} did not succeed` };
    }
    row.sentAt = outcome.sentAt.toISOString();
    switch (outcome.kind) {
      case 'reply': {
        const { reply } = outcome;
        row.repliedAt = outcome.repliedAt.toISOString();
        const parsed = reply.ok ? ModelCommandResult.safeParse(reply.result) : undefined;
        if (parsed?.success) row.active = refOf(parsed.data.active);
        row.result = options.succeeded(reply) ? 'ok' : 'failed';
        if (reply.ok) {
          row.reason = reasonOf(reply.result) ?? null;
          if (parsed && !parsed.success) row.message = `the gateway answered ok, but its result is not a model command result; is it an older ser-edge?`;
        } else {
          row.reason = reply.error?.code ?? 'failed';
          row.message = reply.error?.message ?? null;
          // A refusal that counts as done (already_active): the gateway's "command … failed:" would read as a failure.
          if (row.result === 'ok' && row.message !== null) row.message = row.message.replace(/^command \S+ failed: /, '');
          if (reply.error?.retryAfterSeconds !== undefined) row.retryAfterSeconds = reply.error.retryAfterSeconds;
        }
        return row;
      }
      case 'timeout':
        return {
          ...row,
          result: 'timeout',
          reason: 'timeout',
          message: outcome.acknowledged
            ? `no reply within ${options.timeoutSeconds} s; it may still be working on it: see ser-edge model status --site ${options.site}`
            : `the broker did not take the command within ${options.timeoutSeconds} s (connection lost?); it may never have reached the gateway`,
        };
      case 'refused':
        return { ...row, result: 'failed', reason: 'refused_by_broker', message: outcome.message };
      case 'invalid_reply':
        return { ...row, result: 'failed', reason: 'invalid_reply', message: outcome.problem };
      case 'interrupted':
        return { ...row, result: 'timeout', reason: 'interrupted', message: `stopped waiting for its reply (interrupted); it may still carry out ${options.command}: see ser-edge model status --site ${options.site}` };
    }
  });
}

function refOf(ref: BundleRef | null | undefined): BundleRef | null {
  if (!ref) return null;
  return { name: ref.name, version: ref.version, ...(ref.sha256 !== undefined ? { sha256: ref.sha256 } : {}) };
}
