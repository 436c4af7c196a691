/**
 * The MQTT contract's topic scheme (v1): everything a gateway says or hears lives under
 * `ser/v1/{site}/{gateway}`, so one ACL line per gateway (`pattern readwrite ser/v1/+/%c/#`
 * style) can confine it, and central consumers subscribe with one wildcard per site.
 */

export const TOPIC_ROOT = 'ser/v1';

/** Ids become single topic levels: wildcards or a level separator would change what a filter matches. */
const TOPIC_SAFE = /^[^\s+#/\u0000]+$/u;

export class TopicIdError extends Error {
  override name = 'TopicIdError';
}

/** Throws a TopicIdError naming the field unless `value` can stand as one MQTT topic level. */
export function assertTopicId(field: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TopicIdError(`MQTT ${field} id is empty: set a non-empty ${field} id (letters, digits, '-', '_', '.')`);
  }
  if (!TOPIC_SAFE.test(value) || value.startsWith('$')) {
    throw new TopicIdError(
      `MQTT ${field} id ${JSON.stringify(value)} is not topic-safe: it must not contain '+', '#', '/', whitespace or NUL, ` +
        `nor start with '$'; rename the ${field} (letters, digits, '-', '_', '.')`,
    );
  }
  if (Buffer.byteLength(value) > 128) {
    throw new TopicIdError(`MQTT ${field} id ${JSON.stringify(value.slice(0, 20))}… is longer than 128 bytes: use a shorter ${field} id`);
  }
  return value;
}

export interface GatewayTopics {
  /** `ser/v1/{site}/{gateway}` */
  readonly base: string;
  /** Retained, QoS 1: online birth / offline will. */
  readonly status: string;
  /** Retained, QoS 0: health and pipeline metrics. */
  readonly telemetry: string;
  /** Retained, QoS 1: active and previous model, last install result. */
  readonly model: string;
  /** Not retained, QoS 1: flag events of one channel. */
  urgency(channel: string): string;
  /** Retained, QoS 1: the channel's current level. */
  state(channel: string): string;
  /** Where commands named `name` arrive. */
  command(name: string): string;
  /** The subscription that receives every command (`…/cmd/+`), and not the replies one level below it. */
  readonly commandFilter: string;
  /** Where replies go when the request carries no MQTT 5 response topic (MQTT 3.1.1 callers). */
  reply(name: string): string;
}

export function gatewayTopics(site: string, gateway: string): GatewayTopics {
  assertTopicId('site', site);
  assertTopicId('gateway', gateway);
  const base = `${TOPIC_ROOT}/${site}/${gateway}`;
  return {
    base,
    status: `${base}/status`,
    telemetry: `${base}/telemetry`,
    model: `${base}/model`,
    urgency: (channel) => `${base}/channel/${assertTopicId('channel', channel)}/urgency`,
    state: (channel) => `${base}/channel/${assertTopicId('channel', channel)}/state`,
    command: (name) => `${base}/cmd/${assertTopicId('command', name)}`,
    commandFilter: `${base}/cmd/+`,
    reply: (name) => `${base}/cmd/${assertTopicId('command', name)}/reply`,
  };
}

/** The command name of a topic received on `commandFilter`, or null if it is not one. */
export function commandNameOf(topics: GatewayTopics, topic: string): string | null {
  const prefix = `${topics.base}/cmd/`;
  if (!topic.startsWith(prefix)) return null;
  const name = topic.slice(prefix.length);
  return name.length > 0 && !name.includes('/') ? name : null;
}
