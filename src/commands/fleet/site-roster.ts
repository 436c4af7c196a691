import { ModelState, StatusPayload, describeIssues } from '../../mqtt/payload-schemas.js';
import { TOPIC_ROOT } from '../../mqtt/topics.js';

/** What the broker knows of one gateway of the site: its retained status and model state. */
export interface GatewayRecord {
  gateway: string;
  status: StatusPayload | null;
  model: ModelState | null;
}

/**
 * The gateways of one site as their retained `…/status` and `…/model` describe them. It
 * is what the field tech's tools decide by: which gateways `--all` means, which of them
 * are online to be sent to, and what each runs. The last message of a topic wins; an
 * empty retained publish (a cleared topic) forgets what it said.
 */
export class SiteRoster {
  private readonly records = new Map<string, GatewayRecord>();
  /** Retained payloads that break the contract, `topic: problem`, so the tool can say why a gateway is missing. */
  readonly problems: string[] = [];

  constructor(readonly site: string) {}

  /** The topic filters whose retained messages make the roster. */
  get filters(): { status: string; model: string } {
    return { status: `${TOPIC_ROOT}/${this.site}/+/status`, model: `${TOPIC_ROOT}/${this.site}/+/model` };
  }

  /** Takes one message; false when the topic is not a status or model topic of this site. Never throws. */
  apply(topic: string, payload: Buffer): boolean {
    const levels = topic.split('/');
    if (levels.length !== 5 || `${levels[0]}/${levels[1]}` !== TOPIC_ROOT || levels[2] !== this.site) return false;
    const gateway = levels[3]!;
    const kind = levels[4];
    if (kind !== 'status' && kind !== 'model') return false;
    const record = this.records.get(gateway) ?? { gateway, status: null, model: null };
    this.records.set(gateway, record);
    if (payload.length === 0) {
      record[kind] = null;
      if (record.status === null && record.model === null) this.records.delete(gateway);
      return true;
    }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      this.problem(topic, `not JSON (${(error as Error).message})`);
      return true;
    }
    if (kind === 'status') {
      const parsed = StatusPayload.safeParse(json);
      if (parsed.success) record.status = parsed.data;
      else this.problem(topic, describeIssues(parsed.error));
    } else {
      const parsed = ModelState.safeParse(json);
      if (parsed.success) record.model = parsed.data;
      else this.problem(topic, describeIssues(parsed.error));
    }
    return true;
  }

  /** Every gateway with a retained status or model, sorted by id. */
  get gateways(): GatewayRecord[] {
    return [...this.records.values()].sort((a, b) => a.gateway.localeCompare(b.gateway));
  }

  /** Gateway ids with a retained status (online or offline), sorted: what `--all` means. */
  get withStatus(): string[] {
    return this.gateways.filter((r) => r.status !== null).map((r) => r.gateway);
  }

  get(gateway: string): GatewayRecord | undefined {
    return this.records.get(gateway);
  }

  /** The gateway's active model: its retained `…/model`, else what its status names (a gateway that has not published `…/model`). */
  activeOf(gateway: string): { name: string; version: string; sha256?: string | undefined } | null {
    const record = this.records.get(gateway);
    if (record?.model) return record.model.active;
    return record?.status?.model ?? null;
  }

  private problem(topic: string, problem: string): void {
    this.problems.push(`${topic}: ${problem}`);
  }
}
