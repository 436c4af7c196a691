import type { ResolvedConfig } from '../../config/load-daemon-config.js';
import { findOnPath, RECORDER_PACKAGES, type RecorderName } from '../../audio/microphone-source.js';
import { fail, pass, skip, type CheckResult } from './check-result.js';

/** The oldest Node.js ser-edge runs on (package.json `engines`). */
export const MIN_NODE_MAJOR = 20;

export function nodeVersionCheck(version: string = process.versions.node): CheckResult {
  const major = Number(version.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return pass('node', { detail: `Node.js v${version} (${MIN_NODE_MAJOR} or newer needed)`, data: { version } });
  return fail('node', {
    detail: `Node.js v${version} is too old: ser-edge needs ${MIN_NODE_MAJOR} or newer`,
    fix: `install Node.js ${MIN_NODE_MAJOR} or newer (Debian, Raspberry Pi OS, JetPack: NodeSource's nodejs package, or the distribution's when it is new enough), then run doctor again`,
    data: { version },
  });
}

/** The recorder each microphone source names: on PATH, where the daemon's spawn() will look. */
export async function recorderChecks(config: Pick<ResolvedConfig, 'sources'>, path = process.env.PATH ?? ''): Promise<CheckResult[]> {
  const users = new Map<RecorderName, number[]>();
  for (const [i, source] of config.sources.entries()) {
    if (source.type === 'microphone') users.set(source.recorder, [...(users.get(source.recorder) ?? []), i]);
  }
  if (users.size === 0) return [skip('recorder', { detail: 'no microphone source: demo, file and stdin sources need no recorder' })];
  const rows: CheckResult[] = [];
  for (const [recorder, sources] of users) {
    const at = await findOnPath(recorder, path);
    const subject = recorder;
    const forWhom = `for ${sources.map((i) => `sources[${i}]`).join(', ')}`;
    if (at !== undefined) rows.push(pass('recorder', { subject, detail: `${recorder} at ${at} (${forWhom})` }));
    else rows.push(fail('recorder', { subject, detail: `${recorder} is not on PATH (${forWhom}): those sources cannot record`, fix: `sudo apt-get install ${RECORDER_PACKAGES[recorder]}` }));
  }
  return rows;
}
