import type { ModelState, ShadowTrialReport } from '../../mqtt/payload-schemas.js';
import { table } from '../text-table.js';
import { GATEWAY_RESULTS, type GatewayOutcome } from './rollout.js';
import type { GatewayRecord, SiteRoster } from './site-roster.js';

type BundleRef = { name: string; version: string } | null | undefined;

const refText = (ref: BundleRef): string => (ref ? `${ref.name} ${ref.version}` : '-');

/** Local date and time to the minute: a last install may be days old, so the date matters. */
export function when(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/** How many gateways ended each way, in the table's words: `2 ok, 1 failed (of 3)`. */
export function summaryText(rows: GatewayOutcome[]): string {
  const parts = GATEWAY_RESULTS.map((r) => [r, rows.filter((row) => row.result === r).length] as const)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${n} ${r.replace('_', ' ')}`);
  return `${parts.join(', ') || 'no gateways'} (of ${rows.length})`;
}

/** The fleet command's table: gateway, result, reason, active model after, and what went wrong. */
export function renderOutcomes(title: string, rows: GatewayOutcome[]): string {
  const lines = [title];
  lines.push(
    ...table(
      ['gateway', 'result', 'reason', 'active', 'message'],
      rows.map((r) => [`${r.gateway}${r.canary ? ' (canary)' : ''}`, r.result, r.reason ?? '-', refText(r.active), r.message ?? '']),
      'lllll',
    ),
  );
  lines.push(summaryText(rows));
  return `${lines.join('\n')}\n`;
}

function percent(share: number | null): string {
  return share === null ? '-' : `${Math.round(share * 100)}%`;
}

/** One line about a shadow trial: how far it is, and how the two models compare so far. */
export function shadowText(version: string, shadow: ShadowTrialReport | undefined, now = Date.now()): string {
  if (!shadow) return `shadow trial of ${version}: no report yet`;
  const started = Date.parse(shadow.startedAt);
  const ends = Date.parse(shadow.endsAt);
  const minutes = (ms: number) => Math.max(0, Math.round(ms / 60_000));
  const progress = shadow.done ? `done (${minutes(ends - started)} min, ended ${when(shadow.endsAt)})` : `${minutes(Math.min(now, ends) - started)} of ${minutes(ends - started)} min`;
  return (
    `shadow trial of ${version}: ${progress}, ${shadow.windows} windows; agreement emotion ${percent(shadow.agreement.emotion)}, level ${percent(shadow.agreement.level)}; ` +
    `flags/h active ${shadow.flagsPerHour.active.toFixed(1)}, shadow ${shadow.flagsPerHour.shadow.toFixed(1)}` +
    (shadow.done ? '; promote or discard it' : '')
  );
}

/**
 * A gateway answers an install of the bundle it already runs with `already_active` and
 * records it so; publishing to a whole site after its canary does that on the canary,
 * which is where the rollout wants it: not a failure to show.
 */
const installFailed = (last: NonNullable<ModelState['lastInstall']>) => !last.ok && last.reason !== 'already_active';

function lastInstallText(last: ModelState['lastInstall'] | undefined): string {
  if (!last) return '-';
  return `${installFailed(last) ? 'FAILED' : 'ok'} ${last.reason}${last.version ? ` ${last.version}` : ''}, ${when(last.ts)}`;
}

function statusText(record: GatewayRecord): string {
  const s = record.status;
  if (s === null) return 'unknown';
  if (s.state === 'online') return 'online';
  // A last will's time is when it was registered (the gateway's connect), so only a shutdown says when it went.
  return s.reason === 'lost' ? 'OFFLINE (lost)' : `OFFLINE${s.reason === 'shutdown' ? ' (shutdown)' : ''} since ${when(s.ts)}`;
}

/**
 * `model status`: one row per gateway (online or not, active, previous, staged, last
 * install), and under a row what needs reading: a shadow trial's figures, why the last
 * install failed, a rollback.
 */
export function renderSiteStatus(roster: SiteRoster, now = Date.now()): string {
  const records = roster.gateways;
  const online = records.filter((r) => r.status?.state === 'online').length;
  const lines = [`site ${roster.site}: ${records.length} gateway${records.length === 1 ? '' : 's'}, ${online} online`];
  const header = ['gateway', 'status', 'active', 'previous', 'staged', 'last install'];
  const rows = records.map((r) => {
    const m = r.model;
    return [r.gateway, statusText(r), refText(roster.activeOf(r.gateway)), m ? refText(m.previous) : '-', m?.staged ? `${refText(m.staged)} (shadow)` : '-', lastInstallText(m?.lastInstall)];
  });
  const rendered = table(header, rows, 'llllll');
  lines.push(rendered[0]!);
  for (const [i, record] of records.entries()) {
    lines.push(rendered[i + 1]!);
    const m = record.model;
    if (m?.staged) lines.push(`      ${shadowText(m.staged.version, m.staged.shadow, now)}`);
    if (m?.lastInstall && installFailed(m.lastInstall)) {
      const why = m.lastInstall.message ?? m.lastInstall.error?.message;
      if (why) lines.push(`      last install failed (${m.lastInstall.reason}): ${why}`);
    }
    if (m?.lastRollback) {
      const r = m.lastRollback;
      lines.push(`      rolled back ${r.cause === 'failed_start' ? 'by itself (the new model failed to come up)' : 'by command'} from ${refText(r.from)} to ${refText(r.to)}, ${when(r.ts)}${r.message ? `: ${r.message}` : ''}`);
    }
    if (record.status !== null && m === null) lines.push('      no retained …/model: an older ser-edge, or it has not published one yet');
  }
  if (roster.problems.length > 0) {
    lines.push('', 'INVALID RETAINED PAYLOADS');
    for (const p of roster.problems) lines.push(`  ${p}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `model status --json`: every gateway's retained status and model state as they are, and any invalid payloads. */
export function siteStatusDocument(roster: SiteRoster): object {
  return {
    site: roster.site,
    gateways: roster.gateways.map((r) => ({ gateway: r.gateway, state: r.status?.state ?? 'unknown', status: r.status, model: r.model })),
    problems: roster.problems,
  };
}
