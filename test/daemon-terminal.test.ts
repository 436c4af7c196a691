import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { terminalView } from '../src/commands/run-command.js';
import { commandToRun } from '../src/commands/program-invocation.js';
import { createDaemonLogger, LOG_FORMATS, warningLine } from '../src/daemon/daemon-logger.js';
import { DemoTerminal, statusText, type DemoStatus } from '../src/daemon/demo-terminal.js';
import { tempDir } from './helpers/audio-fixtures.js';

const cli = fileURLToPath(new URL('../../bin/ser-edge.js', import.meta.url));

const tty = { stdoutIsTTY: true, stderrIsTTY: true };
const piped = { stdoutIsTTY: false, stderrIsTTY: false };

test('the demo on a terminal logs to a file and keeps a status line; with a config, or off a terminal, the log stays JSON on stderr', () => {
  assert.deepEqual(terminalView({}, true, tty), { log: 'file', statusLine: true });
  assert.deepEqual(terminalView({ config: 'site.json' }, false, tty), { log: 'json', statusLine: false });
  assert.deepEqual(terminalView({ config: 'site.json' }, true, tty), { log: 'json', statusLine: true }, '--print-flags on a terminal');
  assert.deepEqual(terminalView({}, true, piped), { log: 'json', statusLine: false }, 'systemd, the tests, a pipe');
  assert.deepEqual(terminalView({}, true, { stdoutIsTTY: true, stderrIsTTY: false }), { log: 'json', statusLine: true }, '2>log.jsonl keeps its JSON');
  assert.deepEqual(terminalView({ log: 'pretty' }, true, piped), { log: 'pretty', statusLine: false });
  assert.deepEqual(terminalView({ config: 'site.json', log: 'file' }, false, piped), { log: 'file', statusLine: false });
});

test('run --help offers every log format', () => {
  const help = spawnSync(process.execPath, [cli, 'run', '--help'], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ');
  assert.ok(help.includes(`(choices: ${LOG_FORMATS.map((f) => `"${f}"`).join(', ')})`), help);
});

/** A terminal stream that records what was written to it. */
function recorder(columns?: number) {
  const writes: string[] = [];
  return { writes, write: (text: string) => writes.push(text), columns, text: () => writes.join('') };
}

const status = (over: Partial<DemoStatus> = {}): DemoStatus => ({
  channels: [{ state: 'running' }],
  windows: 0,
  lastFlag: null,
  broker: { url: 'mqtt://127.0.0.1:1883', connected: true },
  ...over,
});

test('a printed line takes the status line away first and draws it again below, so the two never share a line', () => {
  const out = recorder();
  const err = recorder();
  let now = 0;
  let windows = 0;
  const screen = new DemoTerminal({ out, err, statusLine: true, read: () => status({ windows }), now: () => now, intervalMs: 60_000 });
  screen.start();
  assert.match(out.text(), /^● 1 channel · 0\.0 windows\/s · no flag yet · broker mqtt:\/\/127\.0\.0\.1:1883 connected$/);
  now = 5000;
  windows = 5;
  screen.print('12:00:00  demo  ▲ HIGH    score 0.812  angry 90%  raised  call c1  #1');
  screen.print('12:00:01  WARN  something\n', 'err');
  const text = out.text();
  // Erase, the line, then the status line again.
  assert.ok(out.writes.includes('\r\x1b[2K'));
  assert.match(text, /connected\r\x1b\[2K12:00:00 {2}demo .*#1\n● 1 channel/);
  assert.deepEqual(err.writes, ['12:00:01  WARN  something\n']);
  screen.stop();
  assert.equal(out.writes.at(-1), '\r\x1b[2K', 'the status line is gone at the end');
  screen.print('after');
  assert.equal(out.writes.at(-1), 'after\n', 'no status line once stopped');
});

test('the status line counts windows per second over the last few seconds and is cut to the terminal width', () => {
  const out = recorder(40);
  let now = 0;
  let windows = 0;
  const screen = new DemoTerminal({ out, err: recorder(), statusLine: true, read: () => status({ windows }), now: () => now, intervalMs: 60_000 });
  screen.start();
  for (let s = 1; s <= 4; s++) {
    now = s * 1000;
    windows += s % 2 === 0 ? 2 : 0; // 0, 2, 0, 2: a one-second rate would flicker
    (screen as unknown as { tick(): void }).tick();
  }
  const last = out.writes.filter((w) => w.startsWith('●')).at(-1)!;
  assert.equal([...last].length, 39, last);
  assert.ok(last.endsWith('…'));
  assert.match(statusText(status({ windows }), 1, now), /1\.0 windows\/s/);
  screen.stop();
});

test('the status line names the last flag, how long ago, and a broker that is not connected', () => {
  const line = statusText(status({ channels: [{ state: 'running' }, { state: 'retrying' }], lastFlag: { channel: 'desk-1', kind: 'raise', level: 'high', atMs: 0 }, broker: { url: 'mqtt://b:1883', connected: false } }), 0.9, 75_000);
  assert.equal(line, '● 2 channels (1 running) · 0.9 windows/s · last flag: desk-1 HIGH, raised 1 min 15 s ago · broker mqtt://b:1883 not connected');
  assert.match(statusText(status({ lastFlag: { channel: 'demo', kind: 'clear', level: 'low', atMs: 0 } }), 1, 3000), /last flag: demo low, cleared 3 s ago/);
});

test('without a terminal, printed lines are written as they are, with no status line', () => {
  const out = recorder();
  const screen = new DemoTerminal({ out, err: recorder(), statusLine: false, read: () => status() });
  screen.start();
  screen.print('a flag line');
  screen.stop();
  assert.deepEqual(out.writes, ['a flag line\n']);
});

test('--log file writes the JSON lines to the file and shows warnings and errors on the terminal as short lines', async () => {
  const dir = tempDir('ser-edge-log-');
  const file = join(dir, 'state', 'ser-edge.log');
  const shown: string[] = [];
  const { logger, writesTo } = await createDaemonLogger({ level: 'info', site: 's', gateway: 'g', format: 'file', file, terminal: (t) => shown.push(t) });
  assert.equal(writesTo, file);
  logger.info({ model: 'm' }, 'model loaded');
  logger.warn({ port: 1883 }, 'embedded broker port taken; using a free one');
  logger.error({ error: 'EACCES' }, 'could not queue an urgency event');
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => l.msg), ['model loaded', 'embedded broker port taken; using a free one', 'could not queue an urgency event']);
  assert.equal(lines[0]!.site, 's');
  assert.equal(shown.length, 2);
  assert.match(shown[0]!, /^\d\d:\d\d:\d\d {2}WARN {2}embedded broker port taken; using a free one\n$/);
  assert.match(shown[1]!, /^\d\d:\d\d:\d\d {2}ERROR {2}could not queue an urgency event: EACCES\n$/);
  assert.equal(warningLine('not json'), null);
  // A fatal start-up failure is printed by run itself, once, as `ser-edge run: …`.
  assert.equal(warningLine(JSON.stringify({ level: 60, time: new Date().toISOString(), msg: 'ser-edge could not start' })), null);
});

test('a log file that cannot be written falls back to JSON on stderr, and says why', async () => {
  const dir = tempDir('ser-edge-log-');
  writeFileSync(join(dir, 'a-file'), '');
  const log = await createDaemonLogger({ level: 'info', site: 's', gateway: 'g', format: 'file', file: join(dir, 'a-file', 'ser-edge.log') });
  assert.equal(log.writesTo, 'stderr');
  assert.match(log.fallback ?? '', /cannot write the log file .*a-file\/ser-edge\.log \((ENOTDIR|EEXIST)\); logging JSON to stderr instead/);
});

test('--log pretty writes one readable line per event through pino-pretty, in this process', async () => {
  const shown: string[] = [];
  const { logger } = await createDaemonLogger({ level: 'info', site: 's', gateway: 'g', format: 'pretty', terminal: (t) => shown.push(t) });
  logger.info({ backend: 'wasm-simd' }, 'model loaded');
  assert.equal(shown.length, 1, 'written at once: no worker thread, no stream to flush');
  assert.match(shown[0]!, /^\[\d\d:\d\d:\d\d\] INFO: model loaded \{"backend":"wasm-simd"\}\n$/);
  assert.doesNotMatch(shown[0]!, /"site"/);
});

test('the watch hint names the command the user has: ser-edge when installed, node …/ser-edge.mjs for a bundle, npx in a checkout', () => {
  const dir = tempDir('ser-edge-invocation-');
  // A checkout, nothing on PATH.
  const checkout = join(dir, 'clone', 'bin', 'ser-edge.js');
  mkdirSync(join(dir, 'clone', 'bin'), { recursive: true });
  writeFileSync(checkout, '');
  assert.equal(commandToRun({ script: checkout, cwd: join(dir, 'clone'), path: '/usr/bin', bundle: false }), 'npx ser-edge');
  // `npx ser-edge` in the checkout: npx puts its node_modules/.bin, with a ser-edge linking to the launcher, on the PATH it runs us with.
  mkdirSync(join(dir, 'clone', 'node_modules', '.bin'), { recursive: true });
  chmodSync(checkout, 0o755);
  symlinkSync(checkout, join(dir, 'clone', 'node_modules', '.bin', 'ser-edge'));
  assert.equal(commandToRun({ script: checkout, cwd: join(dir, 'clone'), path: `${join(dir, 'clone', 'node_modules', '.bin')}:/usr/bin`, bundle: false }), 'npx ser-edge');
  // A copied bundle, run from its folder or from above it.
  const bundle = join(dir, 'app', 'ser-edge.mjs');
  mkdirSync(join(dir, 'app'));
  writeFileSync(bundle, '');
  assert.equal(commandToRun({ script: bundle, cwd: join(dir, 'app'), path: '/usr/bin', bundle: true }), 'node ser-edge.mjs');
  assert.equal(commandToRun({ script: bundle, cwd: dir, path: '/usr/bin', bundle: true }), 'node app/ser-edge.mjs');
  assert.equal(commandToRun({ script: bundle, cwd: join(dir, 'clone'), path: '/usr/bin', bundle: true }), `node ${bundle}`, 'from elsewhere, the whole path');
  // npm install -g: PATH's ser-edge is a link to the package's launcher, which is what runs.
  const pkg = join(dir, 'prefix', 'lib', 'node_modules', 'ser-edge', 'bin', 'ser-edge.js');
  mkdirSync(join(dir, 'prefix', 'lib', 'node_modules', 'ser-edge', 'bin'), { recursive: true });
  mkdirSync(join(dir, 'prefix', 'bin'));
  writeFileSync(pkg, '');
  chmodSync(pkg, 0o755);
  symlinkSync(pkg, join(dir, 'prefix', 'bin', 'ser-edge'));
  assert.equal(commandToRun({ script: join(dir, 'prefix', 'bin', 'ser-edge'), cwd: dir, path: `/usr/bin:${join(dir, 'prefix', 'bin')}`, bundle: true }), 'ser-edge');
  // A checkout with another ser-edge on PATH is still the checkout.
  assert.equal(commandToRun({ script: checkout, cwd: join(dir, 'clone'), path: join(dir, 'prefix', 'bin'), bundle: false }), 'npx ser-edge');
  // install-gateway.sh: /usr/local/bin/ser-edge → /opt/ser-edge/bin/ser-edge, a wrapper running /opt/ser-edge/current/ser-edge.mjs.
  const opt = join(dir, 'opt', 'ser-edge');
  mkdirSync(join(opt, 'releases', '0.1.0'), { recursive: true });
  mkdirSync(join(opt, 'bin'));
  mkdirSync(join(dir, 'usr-local-bin'));
  writeFileSync(join(opt, 'releases', '0.1.0', 'ser-edge.mjs'), '');
  symlinkSync(join(opt, 'releases', '0.1.0'), join(opt, 'current'));
  writeFileSync(join(opt, 'bin', 'ser-edge'), '#!/bin/sh\n');
  chmodSync(join(opt, 'bin', 'ser-edge'), 0o755);
  symlinkSync(join(opt, 'bin', 'ser-edge'), join(dir, 'usr-local-bin', 'ser-edge'));
  assert.equal(commandToRun({ script: join(opt, 'current', 'ser-edge.mjs'), cwd: '/', path: join(dir, 'usr-local-bin'), bundle: true }), 'ser-edge');
});

const SCRIPT_MISSING = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0 ? false : 'needs script(1) from util-linux for a pseudo-terminal';

/**
 * `ser-edge run` as a person types it, on a terminal: script(1) gives it a pseudo-terminal
 * for stdout and stderr, and what it prints there is what the person sees.
 */
function runOnTerminal(args: string, env: NodeJS.ProcessEnv) {
  // exec: script(1) runs the line with $SHELL -c, and a shell left waiting in between (dash,
  // when SHELL is unset or /bin/sh) takes the Ctrl-C as well and exits 130 whatever ser-edge did.
  const child = spawn('script', ['-qfec', `exec '${process.execPath}' '${cli}' run ${args}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let screen = '';
  child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, exited, screen: () => screen };
}

async function until(check: () => boolean, timeoutMs: number, what: string, show: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the terminal showed:\n${show().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the demo on a terminal shows its flag lines and a status line, not JSON, and says where the JSON log is', { skip: SCRIPT_MISSING, timeout: 180_000 }, async () => {
  const state = tempDir('ser-edge-demo-tty-');
  const demo = runOnTerminal('', { SER_EDGE_STATE_DIR: state, SER_EDGE_MQTT_URL: '', SER_EDGE_LOG_LEVEL: '' });
  try {
    await until(() => /▲ HIGH .* raised/.test(demo.screen()), 150_000, 'the first flag line (about 27 s into the demo)', demo.screen);
    const screen = demo.screen();
    assert.match(screen, /logs go to \S*ser-edge\.log \(JSON lines;/);
    assert.match(screen, /watch it with: npx ser-edge watch --broker mqtt:\/\/127\.0\.0\.1:\d+/);
    assert.match(screen, /\d\d:\d\d:\d\d {2}demo {2}▲ HIGH {4}score 0\.\d{3} {2}angry \d+% {2}raised {2}call [0-9A-Z]{26} {2}#\d+/);
    assert.match(screen, /● 1 channel · \d+\.\d windows\/s · (no flag yet|last flag: demo) .* · broker mqtt:\/\/127\.0\.0\.1:\d+ connected/);
    assert.doesNotMatch(screen, /\{"level":/, 'no JSON log line on the terminal');
    const log = readFileSync(join(state, 'ser-edge.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    for (const msg of ['configuration loaded', 'model loaded', 'ser-edge running', 'urgency raise']) assert.ok(log.some((l) => l.msg === msg), `${msg} in the log file`);
  } catch (error) {
    demo.child.kill('SIGTERM');
    throw error;
  }
  // Ctrl-C, as the header says: the terminal sends SIGINT to the program.
  demo.child.stdin.write('\x03');
  assert.equal(await demo.exited, 0, demo.screen().slice(-2000));
  assert.ok(readFileSync(join(state, 'ser-edge.log'), 'utf8').includes('"ser-edge stopped"'), 'an orderly stop');
});

test('--log json on a terminal shows the JSON lines there, as before', { skip: SCRIPT_MISSING, timeout: 60_000 }, async () => {
  const state = tempDir('ser-edge-demo-json-');
  const demo = runOnTerminal('--log json', { SER_EDGE_STATE_DIR: state, SER_EDGE_MQTT_URL: '', SER_EDGE_LOG_LEVEL: '' });
  try {
    await until(() => demo.screen().includes('"msg":"ser-edge running"'), 45_000, 'the running line', demo.screen);
    assert.doesNotMatch(demo.screen(), /logs go to/);
  } finally {
    demo.child.stdin.write('\x03');
    await demo.exited;
  }
});
