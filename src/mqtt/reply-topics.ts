import { TOPIC_ROOT, type GatewayTopics } from './topics.js';

/**
 * Where command replies may go. An MQTT 5 request names its response topic, and a gateway
 * that obeyed it blindly could be made to write a ping's reply onto its own `…/status` or
 * `…/urgency`, or onto another gateway's topics, wherever the broker's ACL lets it write.
 * So a response topic is used only when it is the command's own `…/cmd/{name}/reply` or
 * matches one of the configured filters (`commands.replyTopics`), and never when it is a
 * topic of the v1 contract that a gateway publishes or listens on.
 */

/** Operators' reply inboxes: one per operator tool, under the site, e.g. `ser/v1/lyon-2/ops/replies/alice`. */
export const DEFAULT_REPLY_TOPICS: readonly string[] = [`${TOPIC_ROOT}/{site}/ops/replies/#`];

/** Placeholders a reply topic filter may use, each filled in with a topic-safe id. */
export const REPLY_TOPIC_PLACEHOLDERS = ['site', 'gateway', 'command'] as const;

/** Why `filter` cannot be a reply topic filter, or null when it can (for the config's messages). */
export function replyTopicFilterProblem(filter: string): string | null {
  if (filter.length === 0) return 'an empty topic filter matches nothing; remove it';
  if (filter.startsWith('$')) return `"${filter}" starts with '$': those topics belong to the broker`;
  if (filter.includes('\u0000')) return `"${filter}" contains NUL`;
  for (const match of filter.matchAll(/\{([^}]*)\}/g)) {
    if (!(REPLY_TOPIC_PLACEHOLDERS as readonly string[]).includes(match[1]!)) {
      return `"${filter}" has the placeholder {${match[1]}}; the known ones are ${REPLY_TOPIC_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`;
    }
  }
  const levels = filter.split('/');
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `"${filter}": '#' must be a whole level, and the last one`;
    if (level.includes('+') && level !== '+') return `"${filter}": '+' must be a whole level`;
  }
  return null;
}

/** Whether `topic` (a topic name, no wildcards) matches the MQTT topic filter `filter`. */
export function topicMatchesFilter(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  // Wildcards at the first level never match '$' topics (MQTT 5 §4.7.2).
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Why a response topic is not one of a gateway's v1 contract topics it must never reply
 * on, or null. These are refused whatever the filters say: status, telemetry, model,
 * channel state and urgency, and command topics of any gateway (a reply there would be
 * read as a command), and other gateways' reply topics.
 */
function contractTopicProblem(topic: string, own: GatewayTopics): string | null {
  const levels = topic.split('/');
  if (`${levels[0]}/${levels[1]}` !== TOPIC_ROOT || levels.length < 5) return null;
  const base = levels.slice(0, 4).join('/');
  const rest = levels.slice(4);
  const whose = base === own.base ? "this gateway's" : `the gateway ${levels[2]}/${levels[3]}'s`;
  const [kind, , leaf] = rest;
  if (rest.length === 1 && (kind === 'status' || kind === 'telemetry' || kind === 'model')) return `it is ${whose} ${kind} topic`;
  if (rest.length === 3 && kind === 'channel' && (leaf === 'urgency' || leaf === 'state')) return `it is ${whose} channel ${leaf} topic`;
  if (rest.length === 2 && kind === 'cmd') return `it is ${whose} command topic ${rest[1]}`;
  if (rest.length === 3 && kind === 'cmd' && leaf === 'reply' && base !== own.base) return `it is ${whose} reply topic`;
  return null;
}

export class ReplyTopicPolicy {
  private readonly deps: { topics: GatewayTopics; site: string; gateway: string; filters: readonly string[] };

  constructor(dependencies: { topics: GatewayTopics; site: string; gateway: string; filters?: readonly string[] }) {
    for (const filter of dependencies.filters ?? []) {
      const problem = replyTopicFilterProblem(filter);
      if (problem !== null) throw new RangeError(`commands.replyTopics: ${problem}`);
    }
    this.deps = { ...dependencies, filters: dependencies.filters ?? DEFAULT_REPLY_TOPICS };
  }

  /** The filters with {site} and {gateway} filled in ({command} stays), for messages. */
  get filters(): string[] {
    return this.deps.filters.map((f) => this.fill(f, '{command}'));
  }

  /** Null when replies to `command` may go to `responseTopic`, else why they may not. */
  refusal(responseTopic: string, command: string): string | null {
    if (responseTopic.length === 0) return 'it is empty';
    if (/[+#\u0000]/.test(responseTopic)) return 'a response topic must not contain wildcards or NUL';
    if (responseTopic.startsWith('$')) return "topics starting with '$' belong to the broker";
    const contract = contractTopicProblem(responseTopic, this.deps.topics);
    if (contract !== null) return contract;
    if (responseTopic === `${this.deps.topics.base}/cmd/${command}/reply`) return null;
    if (this.deps.filters.some((f) => topicMatchesFilter(this.fill(f, command), responseTopic))) return null;
    return `it is neither ${this.deps.topics.base}/cmd/${command}/reply nor under commands.replyTopics (${this.filters.join(', ') || 'none'})`;
  }

  private fill(filter: string, command: string): string {
    return filter.replaceAll('{site}', this.deps.site).replaceAll('{gateway}', this.deps.gateway).replaceAll('{command}', command);
  }
}
