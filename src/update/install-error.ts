import type { InstallReason } from '../mqtt/payload-schemas.js';

/** An install step that failed: `reason` is its code in the reply and in `…/model`, the message says what to do. */
export class InstallError extends Error {
  override name = 'InstallError';
  constructor(
    readonly reason: InstallReason,
    message: string,
  ) {
    super(message);
  }
}
