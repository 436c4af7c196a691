import { AudioInputError, type AudioSource } from './audio-source.js';

export type HeadsetRole = 'customer' | 'agent';

/** Which input channel carries which headset channel: e.g. left = customer, right = agent. */
export interface ChannelAssignment {
  /** Zero-based channel index in the source's blocks. */
  index: number;
  /** Headset channel id used in MQTT topics (`…/channel/{id}/…`). */
  id: string;
  role: HeadsetRole;
}

export type ChannelMapping = ChannelAssignment[];

/**
 * A mapping the source cannot honour. Retrying cannot help (a device or file keeps its
 * channel count), so the daemon refuses the source for good instead of retrying it.
 */
export class ChannelMappingError extends AudioInputError {
  constructor(
    source: string,
    readonly problems: string[],
  ) {
    super(source, `invalid channel mapping: ${problems.join('; ')}`);
    this.name = 'ChannelMappingError';
  }
}

/**
 * Rejects a mapping the source cannot honour, listing every problem at once so a
 * config is fixed in one edit. Unmapped source channels are allowed: they are ignored.
 */
export function validateChannelMapping(mapping: ChannelMapping, source: Pick<AudioSource, 'description' | 'channelCount'>): void {
  const problems: string[] = [];
  if (mapping.length === 0) problems.push('the mapping is empty: map at least one channel');
  const seenIndexes = new Set<number>();
  const seenIds = new Set<string>();
  for (const { index, id, role } of mapping) {
    if (!Number.isInteger(index) || index < 0) {
      problems.push(`channel index ${index} is not a whole number ≥ 0`);
    } else if (index >= source.channelCount) {
      problems.push(`channel ${id}: index ${index} does not exist: the source has ${describeChannelCount(source.channelCount)}`);
    }
    if (seenIndexes.has(index)) problems.push(`channel index ${index} is mapped twice`);
    seenIndexes.add(index);
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]+$/.test(id)) {
      // The id becomes an MQTT topic level, where '/', '+', '#' and spaces would break the scheme.
      problems.push(`channel id "${id}" must be letters, digits, '-' or '_'`);
    }
    if (seenIds.has(id)) problems.push(`channel id "${id}" is used twice`);
    seenIds.add(id);
    if (role !== 'customer' && role !== 'agent') problems.push(`channel ${id} has role "${role}"; use customer or agent`);
  }
  if (problems.length > 0) {
    throw new ChannelMappingError(source.description, problems);
  }
}

/** `2 channels (indexes 0–1)`: what a config's channel indexes must stay within. */
export function describeChannelCount(count: number): string {
  return count === 1 ? '1 channel (index 0)' : `${count} channels (indexes 0–${count - 1})`;
}
