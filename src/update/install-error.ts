import type { InstallReason } from '../mqtt/payload-schemas.js';

/** An install step that failed: `reason` is its code in the reply and in `…/model`, the message says what to do. */
export class InstallError extends Error {
  override name = 'InstallError';
  /** The bundle the step was about, once its manifest was read (lastInstall names it). */
  bundle: { name: string; version: string } | undefined;
  constructor(
    readonly reason: InstallReason,
    message: string,
  ) {
    super(message);
  }
}
