import type { Logger } from 'pino';
import { CommandError, type CommandHandler } from '../mqtt/mqtt-link.js';
import type { CommandRequest } from '../mqtt/payload-schemas.js';
import type { HeadsetChannel } from './headset-channel.js';

/**
 * Answers the commands the link has validated: `call` start/end from the telephony
 * system moves a channel's call boundary. Commands whose stage is not part of this
 * build get a clear `not_supported` reply instead of silence.
 */
export class CallCommandRouter {
  private readonly deps: { channels: Map<string, HeadsetChannel>; logger: Logger };

  constructor(dependencies: { channels: Map<string, HeadsetChannel>; logger: Logger }) {
    this.deps = dependencies;
  }

  readonly handle: CommandHandler = (command: CommandRequest) => {
    switch (command.name) {
      case 'call': {
        const { action, channel: id, callId } = command.payload;
        const channel = this.deps.channels.get(id);
        if (channel === undefined) {
          throw new CommandError('unknown_channel', `no channel "${id}" on this gateway; its channels are: ${[...this.deps.channels.keys()].join(', ') || '(none)'}`);
        }
        if (action === 'start') return { channel: id, callId: channel.beginCall(callId) };
        const ended = channel.endCall(callId, 'command');
        if (!ended) throw new CommandError('no_such_call', `channel "${id}" has no call "${callId}" in progress (current: ${channel.callId ?? 'none'})`);
        return { channel: id, callId, ended: true };
      }
      case 'model.install':
      case 'model.rollback':
        throw new CommandError('not_supported', `${command.name} needs the model store, which this build does not include yet; install the bundle on disk and restart`);
      case 'config.reload':
        throw new CommandError('not_supported', 'config.reload is not supported yet: restart the service (systemctl restart ser-edge) to apply a new config');
      default:
        throw new CommandError('unknown_command', `no handler for ${(command as { name: string }).name}`);
    }
  };
}
