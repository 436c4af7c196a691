import { existsSync } from 'node:fs';
import { listCaptureDevices, type CaptureListing } from '../audio/alsa-devices.js';
import { loadDaemonConfig, type LoadedConfig } from '../config/load-daemon-config.js';
import { brokerCheck } from '../daemon/checks/broker-check.js';
import { capacityCheck, measureChannelCapacity } from '../daemon/checks/capacity-check.js';
import { captureChecks } from '../daemon/checks/capture-checks.js';
import { fail, pass, type CheckResult, type CheckStatus } from '../daemon/checks/check-result.js';
import { clockCheck } from '../daemon/checks/clock-check.js';
import { modelCheck } from '../daemon/checks/model-check.js';
import { modelStoreCheck } from '../daemon/checks/model-store-check.js';
import { nodeVersionCheck, recorderChecks } from '../daemon/checks/runtime-checks.js';
import { outboxDiskCheck, stateDirectoryChecks } from '../daemon/checks/state-dir-checks.js';
import { brokerSettingsProblem } from './run-command.js';

export interface DoctorCommandOptions {
  config?: string;
  json?: boolean;
  /** Seconds the broker connection may take. */
  timeout?: number;
  /** CPU seconds of the capacity measurement. */
  measureSeconds?: number;
}

/** Where the install script puts a gateway's config: checked when no --config is given. */
export const GATEWAY_CONFIG_FILE = '/etc/ser-edge/config.json';
/** Seconds of audio captured from each microphone source. */
const CAPTURE_SECONDS = 1.5;
const DEFAULT_BROKER_TIMEOUT_SECONDS = 5;

export interface DoctorReport {
  ok: boolean;
  version: string;
  /** The config file checked; null for the built-in default. */
  config: string | null;
  checks: CheckResult[];
  summary: Record<CheckStatus, number>;
}

/**
 * `ser-edge doctor`: everything a gateway needs to run, each checked the way `run` would
 * use it (the same config loading, capture path, model loading, link options and lock),
 * with the fix for whatever fails. Exit 1 when any check fails, 0 otherwise (warnings
 * included); usage errors exit 2 before anything is checked.
 */
export async function runDoctor(options: DoctorCommandOptions, version: string): Promise<number> {
  const progress = new ProgressLine(!options.json && process.stderr.isTTY === true);
  const report = await diagnose(options, version, (step) => progress.show(step));
  progress.clear();
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(renderReport(report, { color: process.stdout.isTTY === true && !process.env.NO_COLOR, width: process.stdout.isTTY ? (process.stdout.columns ?? 100) : Infinity }));
  return report.ok ? 0 : 1;
}

export async function diagnose(options: DoctorCommandOptions, version: string, step: (what: string) => void = () => {}): Promise<DoctorReport> {
  const checks: CheckResult[] = [nodeVersionCheck()];
  const file = options.config ?? (existsSync(GATEWAY_CONFIG_FILE) ? GATEWAY_CONFIG_FILE : undefined);
  let loaded: LoadedConfig;
  try {
    loaded = loadDaemonConfig(file === undefined ? {} : { file });
  } catch (error) {
    checks.push(fail('config', { subject: file ?? null, detail: (error as Error).message, fix: 'correct what the message names (file and key; schemas/config.schema.json describes every key), then run doctor again: the other checks need a config that loads' }));
    return report(version, file ?? null, checks);
  }
  const { config } = loaded;
  const channels = config.sources.reduce((n, s) => n + s.channels.length, 0);
  checks.push(
    pass('config', {
      subject: file ?? null,
      detail:
        `${file ?? `the built-in default (a demo channel and the embedded broker; no ${GATEWAY_CONFIG_FILE}, pass --config FILE for a gateway's)`}: ` +
        `profile ${config.profile}, site ${config.site}, gateway ${config.gateway}, ${config.sources.length} source${config.sources.length === 1 ? '' : 's'} with ${channels} channel${channels === 1 ? '' : 's'}, state in ${config.stateDir}`,
      data: { layers: loaded.layers },
    }),
  );
  checks.push(...(await recorderChecks(config)));
  const state = await stateDirectoryChecks(config);

  step('checking capture, the broker, the disk and the clock');
  let listing: Promise<CaptureListing> | undefined;
  const [capture, broker, disk, clock] = await Promise.all([
    captureChecks(config, { listing: () => (listing ??= listCaptureDevices()), lock: state.lock, seconds: CAPTURE_SECONDS }),
    brokerCheck(config, { settingsProblem: brokerSettingsProblem(config), timeoutMs: (options.timeout ?? DEFAULT_BROKER_TIMEOUT_SECONDS) * 1000 }),
    outboxDiskCheck(config),
    clockCheck(),
  ]);
  checks.push(...capture);
  step('loading the model');
  const model = await modelCheck(config.model);
  checks.push(...model.rows, await modelStoreCheck(config), broker, ...state.rows, disk, clock);
  step('measuring how many channels this machine carries');
  try {
    checks.push(capacityCheck(config, model.classifier, (classifier) => measureChannelCapacity(classifier, { cpuSeconds: options.measureSeconds ?? 2, warmupCpuSeconds: Math.min(0.5, (options.measureSeconds ?? 2) / 2) })));
  } finally {
    model.classifier?.dispose();
  }
  return report(version, file ?? null, checks);
}

function report(version: string, config: string | null, checks: CheckResult[]): DoctorReport {
  const summary: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of checks) summary[c.status]++;
  return { ok: summary.fail === 0, version, config, checks, summary };
}

const LABELS: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };
const COLORS: Record<CheckStatus, string> = { pass: '\x1b[32m', warn: '\x1b[33m', fail: '\x1b[31m', skip: '\x1b[2m' };

/** The table: status, check, what was found, and under a failure or warning the fix. */
export function renderReport(report: DoctorReport, options: { color?: boolean; width?: number } = {}): string {
  const nameWidth = Math.max(...report.checks.map((c) => c.check.length));
  const indent = 4 + 2 + nameWidth + 2;
  const width = Math.max(60, options.width ?? Infinity);
  const lines = [`ser-edge doctor ${report.version}: ${report.config ?? 'built-in default config'}`, ''];
  for (const c of report.checks) {
    const label = options.color ? `${COLORS[c.status]}${LABELS[c.status]}\x1b[0m` : LABELS[c.status];
    const detail = c.subject !== null && !c.detail.includes(c.subject) ? `${c.subject}: ${c.detail}` : c.detail;
    const body = wrap(detail, width - indent);
    lines.push(`${label}  ${c.check.padEnd(nameWidth)}  ${body[0]}`, ...body.slice(1).map((l) => `${' '.repeat(indent)}${l}`));
    if (c.fix !== null) {
      const fix = wrap(`fix: ${c.fix}`, width - indent);
      lines.push(...fix.map((l) => `${' '.repeat(indent)}${l}`));
    }
  }
  const s = report.summary;
  const counts = [
    s.fail ? `${s.fail} failed` : null,
    s.warn ? `${s.warn} warning${s.warn === 1 ? '' : 's'}` : null,
    `${s.pass} passed`,
    s.skip ? `${s.skip} skipped` : null,
  ].filter(Boolean);
  lines.push('', `${counts.join(', ')}.${report.ok ? '' : ' Fix the failures above and run doctor again.'}`);
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  if (!Number.isFinite(width) || text.length <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** What doctor is doing, on one self-overwriting stderr line (terminals only): the whole run takes a few seconds. */
class ProgressLine {
  constructor(private readonly enabled: boolean) {}
  show(what: string): void {
    if (this.enabled) process.stderr.write(`\r\x1b[2K${what}…`);
  }
  clear(): void {
    if (this.enabled) process.stderr.write('\r\x1b[2K');
  }
}
