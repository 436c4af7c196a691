import { runTool, type CommandOutput } from '../../audio/alsa-devices.js';
import { fail, pass, warn, type CheckResult } from './check-result.js';

/** What one time tool said: synchronised or not, or nothing usable (missing, failed, unreadable). */
export type ClockAnswer = { synchronised: boolean; source: string; detail: string } | null;

/** `timedatectl show -p NTPSynchronized -p NTP`: `NTPSynchronized=yes`, and whether sync is switched on at all. */
export function parseTimedatectl(output: string): ClockAnswer {
  const synced = /^NTPSynchronized=(yes|no)$/m.exec(output)?.[1];
  if (synced === undefined) return null;
  const enabled = /^NTP=(yes|no)$/m.exec(output)?.[1];
  const detail = synced === 'yes' ? 'synchronised (timedatectl)' : `not synchronised (timedatectl${enabled === 'no' ? ', and network time sync is switched off' : ''})`;
  return { synchronised: synced === 'yes', source: enabled === 'no' ? 'timedatectl-off' : 'timedatectl', detail };
}

/** `chronyc -n tracking`: `Leap status     : Normal` once synchronised, `Not synchronised` before. */
export function parseChronyTracking(output: string): ClockAnswer {
  const leap = /^Leap status\s*:\s*(.+)$/m.exec(output)?.[1]?.trim();
  if (leap === undefined) return null;
  const offset = /^System time\s*:\s*(.+)$/m.exec(output)?.[1]?.trim();
  const synchronised = leap !== 'Not synchronised';
  return { synchronised, source: 'chronyc', detail: `${synchronised ? 'synchronised' : 'not synchronised'} (chronyc: leap status ${leap}${offset ? `, ${offset}` : ''})` };
}

/** `ntpq -pn`: the peer marked `*` is the one the clock follows; none marked means not (yet) synchronised. */
export function parseNtpqPeers(output: string): ClockAnswer {
  const peers = output.split('\n').filter((l) => /^[ *+#ox.-]?\d|^[ *+#ox.-]?[a-z]/i.test(l) && !/remote\s+refid/.test(l) && !/^=+$/.test(l.trim()));
  if (peers.length === 0) return null;
  const selected = peers.find((l) => l.startsWith('*'));
  return { synchronised: selected !== undefined, source: 'ntpq', detail: selected ? `synchronised (ntpq: following ${selected.slice(1).trim().split(/\s+/)[0]})` : 'not synchronised (ntpq: no peer selected yet)' };
}

type Runner = (command: string, args: string[], timeoutMs: number) => Promise<CommandOutput>;

/**
 * Whether the system clock follows network time: event timestamps, call windows and TLS
 * certificate validity all depend on it. Asks systemd (timesyncd and chrony both report
 * through it), then chrony, then ntpd; without any answer it warns rather than guesses.
 */
export async function clockCheck(run: Runner = runTool): Promise<CheckResult> {
  const check = 'clock';
  const now = new Date().toISOString();
  const tried: string[] = [];
  const attempts: [string, string[], (out: string) => ClockAnswer][] = [
    ['timedatectl', ['show', '-p', 'NTPSynchronized', '-p', 'NTP'], parseTimedatectl],
    ['chronyc', ['-n', 'tracking'], parseChronyTracking],
    ['ntpq', ['-pn'], parseNtpqPeers],
  ];
  for (const [command, args, parse] of attempts) {
    const out = await run(command, args, 3000);
    const answer = out.code === 0 ? parse(out.stdout) : null;
    if (answer === null) {
      tried.push(`${command}: ${out.error !== null && /ENOENT/.test(out.error) ? 'not installed' : (out.error ?? (out.stderr.trim().split('\n').pop() || `exit ${out.code}`))}`);
      continue;
    }
    const detail = `${answer.detail}; the clock reads ${now}`;
    if (answer.synchronised) return pass(check, { detail, data: { source: answer.source, synchronised: true } });
    return fail(check, {
      detail,
      fix:
        answer.source === 'timedatectl-off'
          ? 'switch network time on: `sudo timedatectl set-ntp true`, and check that this gateway reaches an NTP server (UDP 123)'
          : 'check that this gateway reaches its NTP server (UDP 123) and wait a minute; `timedatectl timesync-status` (or `chronyc sources`) shows what it hears',
      data: { source: answer.source, synchronised: false },
    });
  }
  return warn(check, {
    detail: `could not tell whether the clock is synchronised (${tried.join('; ')}); the clock reads ${now}`,
    fix: 'run systemd-timesyncd or chrony (`sudo apt-get install chrony`) so the clock follows network time; flags carry timestamps and TLS needs a correct date',
    data: { synchronised: null },
  });
}
