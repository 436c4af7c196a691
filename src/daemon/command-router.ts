import type { Logger } from 'pino';
import { CommandRateLimiter, DEFAULT_CALL_RATE, type CommandRate } from '../mqtt/command-rate-limit.js';
import { CommandError, type CommandHandler } from '../mqtt/mqtt-link.js';
import type { CommandRequest, ModelCommandResult } from '../mqtt/payload-schemas.js';
import { InstallError } from '../update/install-error.js';
import type { ModelUpdater } from '../update/model-updater.js';
import type { HeadsetChannel } from './headset-channel.js';

export interface CommandRouterDependencies {
  channels: Map<string, HeadsetChannel>;
  logger: Logger;
  /** cmd/call limit per channel; over it a command is refused with `rate_limited` and not applied. */
  callRate?: CommandRate;
  /** The update stage, which answers cmd/model.*; without it those commands are not_supported. */
  models?: ModelUpdater;
  /** Monotonic milliseconds, for the rate limit (tests pass their own). */
  now?: () => number;
}

/**
 * Answers the commands the link has validated: `call` start/end from the telephony
 * system moves a channel's call boundary; `model.*` go to the update stage. Commands whose
 * stage is not part of this build get a clear `not_supported` reply instead of silence.
 */
export class CommandRouter {
  private readonly deps: CommandRouterDependencies;
  private readonly callRate: CommandRateLimiter;

  constructor(dependencies: CommandRouterDependencies) {
    this.deps = dependencies;
    this.callRate = new CommandRateLimiter({ rate: dependencies.callRate ?? DEFAULT_CALL_RATE, ...(dependencies.now ? { now: dependencies.now } : {}) });
  }

  readonly handle: CommandHandler = (command: CommandRequest) => {
    switch (command.name) {
      case 'call': {
        const { action, channel: id, callId } = command.payload;
        const channel = this.deps.channels.get(id);
        if (channel === undefined) {
          throw new CommandError('unknown_channel', `no channel "${id}" on this gateway; its channels are: ${[...this.deps.channels.keys()].join(', ') || '(none)'}`);
        }
        // Per channel, so a flood on one headset leaves the others' calls alone; the flooded one keeps classifying its call.
        const granted = this.callRate.take(id);
        if (!granted.ok) {
          const { ratePerMinute, burst } = this.callRate.limits;
          const retryAfterSeconds = Math.ceil(granted.retryAfterMs / 1000);
          throw new CommandError(
            'rate_limited',
            `too many cmd/call for channel "${id}": at most ${burst} at once and ${ratePerMinute} a minute (commands.call); this ${action} was not applied, retry in ${retryAfterSeconds} s`,
            { subject: id, retryAfterSeconds },
          );
        }
        if (action === 'start') {
          // QoS 1 may deliver a start twice: the call it names is already running and must not start over from nothing.
          if (channel.callId === callId) return { channel: id, callId, alreadyInProgress: true };
          return { channel: id, callId: channel.beginCall(callId) };
        }
        const ended = channel.endCall(callId, 'command');
        if (!ended) throw new CommandError('no_such_call', `channel "${id}" has no call "${callId}" in progress (current: ${channel.callId ?? 'none'})`);
        return { channel: id, callId, ended: true };
      }
      case 'model.install':
        return this.model((m) => m.install(command.payload));
      case 'model.rollback':
        return this.model((m) => m.rollback());
      case 'model.promote':
        return this.model((m) => m.promote());
      case 'model.discard':
        return this.model((m) => m.discard());
      case 'config.reload':
        throw new CommandError('not_supported', 'config.reload is not supported yet: restart the service (systemctl restart ser-edge) to apply a new config');
      default:
        throw new CommandError('unknown_command', `no handler for ${(command as { name: string }).name}`);
    }
  };

  /** A model command's failure is a reply whose code is the step's reason. */
  private async model(run: (models: ModelUpdater) => Promise<ModelCommandResult>): Promise<ModelCommandResult> {
    const models = this.deps.models;
    if (models === undefined) throw new CommandError('not_supported', 'this gateway runs without a model store; install the bundle on disk (model.dir) and restart');
    try {
      return await run(models);
    } catch (error) {
      if (error instanceof InstallError) throw new CommandError(error.reason, error.message);
      throw error;
    }
  }
}
