import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { INSTALL_REASONS, ModelState, StatusPayload } from '../src/mqtt/payload-schemas.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { assertApplied, docBlocks, shellCommands, type DocBlock } from './helpers/doc-blocks.js';
import { labSiteConfig, spawnDaemon, writeSyntheticModel, writeVoiceWav, type DaemonProcess } from './helpers/daemon-process.js';
import { bundleVariant } from './helpers/model-updates.js';
import { MOSQUITTO_MISSING, OPENSSL_MISSING, connectSubscriber, generateTestCertificates, startMosquitto, type Mosquitto, type TestSubscriber } from './helpers/mosquitto.js';

/**
 * docs/model-updates.md, run as a field tech would, in the guide's order, against a real
 * mosquitto set up as a site's broker (TLS, a login per client, the example ACL) and three
 * real gateways (`ser-edge run` child processes). Every fenced block carries a
 * `<!-- doc-check: KIND -->` line saying how it is checked, and a command this test does
 * not know fails it, so the guide cannot gain a step nobody runs:
 *
 * - `workstation`: shell commands on the tech's machine, run with a temporary home: `ser-edge`
 *   is bin/ser-edge.js and must exit 0; `scp` copies to a gateway's home or to the web server's
 *   folder; `rm -rf` removes what the guide made in the home.
 * - `gateway`: shell commands run on each of the three gateways, with `/etc/ser-edge` a folder
 *   of that gateway; `systemctl restart ser-edge` restarts its daemon with its config.json.
 * - `config-fragment`: keys added to each gateway's config.json (the result must load);
 *   `config-defaults`: values the config has when it does not set them.
 * - `output`: what the `ser-edge` command before it printed; `output-excerpt`: lines of it, in
 *   order, a line ending in `…` standing for any line that starts with what comes before.
 * - `acl`: lines of firmware-config/mosquitto-acl.conf, the broker's ACL here.
 * - `reason-table`, `tool-reason-table` (above a table, not a fenced block): see their tests.
 *
 * The guide's placeholders stand for this test's machine: `mqtt.callcentre.example:8883` is
 * the broker on localhost and its free port (its certificate names localhost),
 * `files.callcentre.example` an https server on another port, `/etc/ssl/certs/callcentre-ca.pem`
 * the test CA, `~` (shown as /home/tech) a temporary home. The gateways' model.dir, shown as
 * the shipped cremad-call 4.0.0, is a copy of the synthetic model under that name, and
 * the new bundle in `~/bundles/cremad-call-4.1.0` a copy with the newer version; the
 * stand-in for the shipped model is unsigned, so the gateways' configs allow that, as the
 * shipped model's default does. A shadow trial of N minutes lasts TRIAL_MINUTES here. Outputs
 * are compared with key ids, sha256s and numbers other than versions left out, and runs of
 * spaces as one (the columns then align on other widths).
 *
 * After each step that changes a gateway (a publish, promote, discard or rollback, a restart)
 * the gateways' retained `…/model` must be what STEPS says, in order.
 */

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const guidePath = join(repoRoot, 'docs', 'model-updates.md');
const guide = readFileSync(guidePath, 'utf8');
const cli = join(repoRoot, 'bin', 'ser-edge.js');
const aclFile = join(repoRoot, 'firmware-config', 'mosquitto-acl.conf');

const PASSWD_MISSING = spawnSync('mosquitto_passwd', ['-h']).error ? 'mosquitto_passwd is not installed (Debian package mosquitto)' : false;
const skip = MOSQUITTO_MISSING || OPENSSL_MISSING || PASSWD_MISSING;

const SITE = 'lyon-2';
const GATEWAYS = ['desk-row-a', 'desk-row-b', 'desk-row-c'] as const;
type Gateway = (typeof GATEWAYS)[number];
const SHOWN_HOME = '/home/tech';
const TRIAL_MINUTES = 0.25;

// ------------------------------------------------------------------ the guide's blocks


const KINDS = ['workstation', 'gateway', 'config-fragment', 'config-defaults', 'output', 'output-excerpt', 'acl'];
const TABLE_KINDS = ['reason-table', 'tool-reason-table'];



/** The markdown table right below a `<!-- doc-check: KIND -->` line: its body rows, as trimmed cells. */
function tableAfter(kind: string): string[][] {
  const lines = guide.split('\n');
  const at = lines.findIndex((l) => l === `<!-- doc-check: ${kind} -->`);
  assert.ok(at >= 0, `docs/model-updates.md has no <!-- doc-check: ${kind} --> table`);
  assert.ok(lines[at + 1]?.startsWith('|') && /^\|(-+\|)+$/.test(lines[at + 2] ?? ''), `docs/model-updates.md:${at + 2}: a table must follow the ${kind} marker`);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 3)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
  }
  return rows;
}

// ------------------------------------------------------------------ comparing outputs

/** What varies from run to run and machine to machine, left out of both sides. */
function comparable(text: string): string {
  return text
    .replaceAll(/\b[0-9a-f]{64}\b/g, '<sha256>')
    .replaceAll(/\b[0-9a-f]{16}\b/g, '<key id>')
    .replaceAll(/(?<![\d.])\d+(?:\.\d+)?(?![\d.])/g, '#')
    .split('\n')
    .map((l) => l.replaceAll(/ {2,}/g, ' ').trimEnd())
    .join('\n')
    .trim();
}

function assertOutput(block: DocBlock, printed: string, at: string): void {
  const shown = comparable(block.text).split('\n');
  const actual = comparable(printed).split('\n');
  if (block.kind === 'output') {
    assert.deepEqual(shown, actual, `${at}: the output shown is not what the command prints:\n${printed}`);
    return;
  }
  let from = 0;
  for (const line of shown) {
    const prefix = line.endsWith('…') ? line.slice(0, -1) : null;
    const found = actual.findIndex((l, i) => i >= from && (prefix === null ? l === line : l.startsWith(prefix)));
    assert.ok(found >= 0, `${at}: \`${line}\` is not among the lines printed (in this order):\n${printed}`);
    from = found + 1;
  }
}


/** `base` with `extra` merged in: objects key by key, anything else replaced. */
function merged(base: unknown, extra: unknown): unknown {
  if (base === null || extra === null || typeof base !== 'object' || typeof extra !== 'object' || Array.isArray(base) || Array.isArray(extra)) return extra;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(extra)) out[key] = merged(out[key], value);
  return out;
}

/** Every string of a JSON value, mapped. */
function mapStrings(value: unknown, map: (s: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, map)]));
  return value;
}

// ------------------------------------------------------------------ what each step leaves on the gateways

interface Expected {
  active: string;
  staged?: string | null;
  previous?: string | null;
  /** The staged model's trial is over. */
  trialDone?: boolean;
  lastRollback?: 'command' | 'failed_start';
}
type Step = { after: 'restart' | 'publish' | 'promote' | 'discard' | 'rollback'; why: string; gateways: Record<Gateway, Expected> };
const every = (expected: Expected): Record<Gateway, Expected> => ({ 'desk-row-a': expected, 'desk-row-b': expected, 'desk-row-c': expected });

const STEPS: Step[] = [
  { after: 'restart', why: 'the key is trusted; nothing else changes', gateways: every({ active: '4.0.0', staged: null, previous: null }) },
  {
    after: 'publish',
    why: 'the shadow trial on the canary',
    gateways: { 'desk-row-a': { active: '4.0.0', staged: '4.1.0', trialDone: true }, 'desk-row-b': { active: '4.0.0', staged: null }, 'desk-row-c': { active: '4.0.0', staged: null } },
  },
  {
    after: 'promote',
    why: 'promoted on the canary',
    gateways: { 'desk-row-a': { active: '4.1.0', staged: null, previous: '4.0.0' }, 'desk-row-b': { active: '4.0.0', previous: null }, 'desk-row-c': { active: '4.0.0', previous: null } },
  },
  { after: 'publish', why: 'the whole site on the new model', gateways: every({ active: '4.1.0', staged: null, previous: '4.0.0' }) },
  { after: 'rollback', why: 'rolled back', gateways: every({ active: '4.0.0', previous: '4.1.0', lastRollback: 'command' }) },
  { after: 'publish', why: 'the new model again, by url', gateways: every({ active: '4.1.0', previous: '4.0.0' }) },
  { after: 'restart', why: 'the old key withdrawn: what it signed no longer runs', gateways: every({ active: '4.0.0', previous: '4.1.0', lastRollback: 'failed_start' }) },
  { after: 'publish', why: 'the bundle signed with the new key', gateways: every({ active: '4.1.0', previous: '4.0.0' }) },
];

function problems(state: ModelState | undefined, expected: Expected): string[] {
  if (state === undefined) return ['no …/model yet'];
  const out: string[] = [];
  if (state.active?.version !== expected.active) out.push(`active ${state.active?.version}, not ${expected.active}`);
  if (expected.staged !== undefined && (state.staged?.version ?? null) !== expected.staged) out.push(`staged ${state.staged?.version ?? null}, not ${expected.staged}`);
  if (expected.previous !== undefined && (state.previous?.version ?? null) !== expected.previous) out.push(`previous ${state.previous?.version ?? null}, not ${expected.previous}`);
  if (expected.trialDone && !state.staged?.shadow?.done) out.push(`its trial is not over (${JSON.stringify(state.staged?.shadow ?? null)})`);
  if (expected.lastRollback !== undefined && state.lastRollback?.cause !== expected.lastRollback) out.push(`last rollback ${state.lastRollback?.cause ?? 'none'}, not ${expected.lastRollback}`);
  return out;
}

// ------------------------------------------------------------------ the run

interface GatewayMachine {
  id: Gateway;
  /** The gateway's `/`: etc/ser-edge, var/lib/ser-edge, home/tech. */
  root: string;
  home: string;
  etc: string;
  configFile: string;
  daemon: DaemonProcess | null;
}

test('docs/model-updates.md: every block is checked, and the workflow runs from a new key pair to a site on a model signed by a replacement key', { skip, timeout: 420_000 }, async () => {
  const blocks = docBlocks(guide, 'docs/model-updates.md', KINDS);
  assert.ok(blocks.filter((b) => b.kind === 'workstation').length > 8, "found the guide's blocks");

  const work = tempDir('ser-edge-docs-model-updates-');
  const home = join(work, 'workstation-home');
  const www = join(work, 'srv', 'www');
  mkdirSync(join(home, '.config', 'ser-edge'), { recursive: true });
  mkdirSync(www, { recursive: true });
  mkdirSync(join(work, 'certs'));
  const certs = generateTestCertificates(join(work, 'certs'));

  // The broker: TLS, one login per client, the example ACL.
  const passwd = join(work, 'passwd');
  const users = [...GATEWAYS, 'model-operator', 'central-queue'];
  for (const [i, user] of users.entries()) {
    const made = spawnSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwd, user, `password-of-${user}`], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
  }
  writeFileSync(join(home, '.config', 'ser-edge', 'model-operator.username'), 'model-operator\n');
  writeFileSync(join(home, '.config', 'ser-edge', 'model-operator.password'), 'password-of-model-operator\n');
  const broker: Mosquitto = await startMosquitto({
    tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile },
    extraConfig: ['allow_anonymous false', `password_file ${passwd}`, `acl_file ${aclFile}`],
  });
  const brokerUrl = `mqtts://localhost:${broker.port}`;

  // The web server the gateways download bundles from.
  const files: Server = createServer({ cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) }, (req, res) => {
    const path = join(www, normalize(decodeURIComponent(new URL(req.url ?? '/', 'https://x').pathname)));
    if (!path.startsWith(www) || !existsSync(path) || !statSync(path).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': statSync(path).size });
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  const filesUrl = `https://localhost:${(files.address() as AddressInfo).port}`;

  // The models: the shipped one on the gateways, the new one on the workstation.
  const synthetic = await writeSyntheticModel(work);
  const shipped = await bundleVariant(synthetic, join(work, 'shipped', 'cremad-call-4.0.0'), { name: 'cremad-call', version: '4.0.0' });
  await bundleVariant(synthetic, join(home, 'bundles', 'cremad-call-4.1.0'), { name: 'cremad-call', version: '4.1.0' });
  const call = await writeVoiceWav(join(work, 'call.wav'), [['angry', 5], ['calm', 7]]);

  const truth: TestSubscriber = await connectSubscriber(brokerUrl, [`ser/v1/${SITE}/+/status`, `ser/v1/${SITE}/+/model`], {
    username: 'central-queue',
    password: 'password-of-central-queue',
    ca: readFileSync(certs.caFile),
  });
  const latest = (gateway: string, kind: 'model' | 'status', from = 0) => {
    const m = truth.messages.filter((x, i) => i >= from && x.topic === `ser/v1/${SITE}/${gateway}/${kind}` && x.payload.length > 0).at(-1);
    return m === undefined ? undefined : kind === 'model' ? ModelState.parse(m.json()) : StatusPayload.parse(m.json());
  };

  const machines: GatewayMachine[] = GATEWAYS.map((id) => {
    const root = join(work, id);
    const machine = { id, root, home: join(root, 'home/tech'), etc: join(root, 'etc/ser-edge'), configFile: join(root, 'etc/ser-edge/config.json'), daemon: null };
    mkdirSync(machine.home, { recursive: true });
    mkdirSync(machine.etc, { recursive: true });
    copyFileSync(certs.caFile, join(machine.etc, 'ca.pem'));
    writeFileSync(join(machine.etc, 'mqtt-username'), `${id}\n`);
    writeFileSync(join(machine.etc, 'mqtt-password'), `password-of-${id}\n`);
    // As install-gateway.sh writes it, with the test's audio, model and timings.
    const config = labSiteConfig({ dir: root, brokerUrl, modelDir: shipped }, id, [{ type: 'file', path: call, realtime: true, loop: true, channels: [{ id: 'hs1', role: 'customer' }] }], {
      site: SITE,
      stateDir: join(root, 'var/lib/ser-edge'),
      mqtt: { requireTls: true, tls: { ca: join(machine.etc, 'ca.pem') }, usernameFile: join(machine.etc, 'mqtt-username'), passwordFile: join(machine.etc, 'mqtt-password') },
      model: { dir: shipped, allowUnsigned: true },
      // The web server's certificate is from the test CA: the stand-in for the system's CAs.
      update: { caFile: certs.caFile, confirmAfterSeconds: 3600 },
    });
    writeFileSync(machine.configFile, JSON.stringify(config, null, 2));
    return machine;
  });

  const startGateway = async (machine: GatewayMachine) => {
    const mark = truth.messages.length;
    machine.daemon = spawnDaemon(machine.configFile);
    const deadline = Date.now() + 30_000;
    while (latest(machine.id, 'model', mark) === undefined || (latest(machine.id, 'status', mark) as StatusPayload | undefined)?.state !== 'online') {
      if (machine.daemon.child.exitCode !== null) assert.fail(`${machine.id} exited (${machine.daemon.child.exitCode}):\n${machine.daemon.stderr().slice(-3000)}`);
      assert.ok(Date.now() < deadline, `${machine.id} did not come up within 30 s:\n${machine.daemon.stderr().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopGateway = async (machine: GatewayMachine) => {
    const daemon = machine.daemon;
    machine.daemon = null;
    if (daemon === null || daemon.child.exitCode !== null) return;
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0, `${machine.id} stopped cleanly`);
  };

  // Paths and addresses of the guide, as they are on this machine (see the file comment).
  const onWorkstation = (word: string): string => {
    let out = word
      .replace(/^~(?=\/|$)/, home)
      .replace('mqtts://mqtt.callcentre.example:8883', brokerUrl)
      .replace('https://files.callcentre.example', filesUrl);
    if (out === '/etc/ssl/certs/callcentre-ca.pem') out = certs.caFile;
    return out;
  };
  const onGateway = (machine: GatewayMachine, word: string): string =>
    word.startsWith('/etc/ser-edge/') || word === '/etc/ser-edge' ? machine.etc + word.slice('/etc/ser-edge'.length) : word.startsWith('/') ? word : join(machine.home, word);
  /** What a command printed, with this machine's paths and addresses written as the guide's. */
  const asShown = (text: string): string => {
    let out = text.replaceAll(home, SHOWN_HOME).replaceAll(brokerUrl, 'mqtts://mqtt.callcentre.example:8883').replaceAll(filesUrl, 'https://files.callcentre.example');
    for (const m of machines) out = out.replaceAll(m.etc, '/etc/ser-edge').replaceAll(join(m.root, 'var/lib/ser-edge'), '/var/lib/ser-edge');
    return out;
  };

  let steps = 0;
  const checkStep = async (after: Step['after'], at: string) => {
    const step = STEPS[steps++];
    assert.ok(step, `${at}: changes the gateways, and STEPS has no step left for it`);
    assert.equal(after, step.after, `${at}: STEPS expects a ${step.after} here (${step.why})`);
    const deadline = Date.now() + (Object.values(step.gateways).some((e) => e.trialDone) ? TRIAL_MINUTES * 60_000 + 30_000 : 15_000);
    for (;;) {
      const wrong = GATEWAYS.flatMap((g) => problems(latest(g, 'model') as ModelState | undefined, step.gateways[g]).map((p) => `${g}: ${p}`));
      if (wrong.length === 0) return;
      assert.ok(Date.now() < deadline, `${at}: after "${step.why}", the gateways' retained …/model is not as expected:\n${wrong.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  let printed: string | null = null;
  const runTool = async (args: string[], at: string): Promise<string> => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: home, env: { ...process.env, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `${at}: exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    return stdout;
  };

  const runWorkstation = async (line: number, words: string[]) => {
    const at = `docs/model-updates.md:${line}: ${words.join(' ')}`;
    const [cmd, ...args] = words as [string, ...string[]];
    if (cmd === 'ser-edge') {
      const mapped = args.map(onWorkstation);
      const shadow = mapped.indexOf('--shadow');
      if (shadow >= 0) mapped[shadow + 1] = String(TRIAL_MINUTES);
      printed = asShown(await runTool(mapped, at));
      const verb = args[0] === 'model' ? args[1] : undefined;
      if (verb === 'publish' || verb === 'promote' || verb === 'discard' || verb === 'rollback') await checkStep(verb, at);
      return;
    }
    printed = null;
    if (cmd === 'scp' && args.length === 2) {
      const from = onWorkstation(args[0]!);
      const to = /^tech@([a-z0-9.-]+):(.*)$/.exec(args[1]!);
      assert.ok(to, `${at}: copies to tech@HOST:PATH`);
      const machine = machines.find((m) => m.id === to[1]);
      let target: string;
      if (machine) target = to[2] === '' ? join(machine.home, from.split('/').at(-1)!) : join(machine.home, to[2]!);
      else {
        assert.equal(to[1], 'files.callcentre.example', `${at}: a gateway of the site or the web server`);
        assert.ok(to[2]!.startsWith('/srv/www/'), `${at}: into the web server's /srv/www`);
        target = join(www, to[2]!.slice('/srv/www/'.length), to[2]!.endsWith('/') ? from.split('/').at(-1)! : '');
      }
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(from, target);
      return;
    }
    if (cmd === 'rm' && args[0] === '-rf' && args.length === 2) {
      const target = onWorkstation(args[1]!);
      assert.ok(target.startsWith(`${home}/`) && existsSync(target), `${at}: removes something the guide made in the home`);
      rmSync(target, { recursive: true });
      return;
    }
    assert.fail(`${at}: no check for this workstation command in test/docs-model-updates.test.ts`);
  };

  const runGateway = async (line: number, words: string[]): Promise<boolean> => {
    const at = `docs/model-updates.md:${line}: ${words.join(' ')}`;
    printed = null;
    const [sudo, cmd, ...args] = words as [string, string, ...string[]];
    if (sudo === 'sudoedit' && words.length === 2) {
      for (const m of machines) assert.ok(existsSync(onGateway(m, words[1]!)), `${at}: ${words[1]} is not on ${m.id}`);
      return false;
    }
    assert.equal(sudo, 'sudo', `${at}: changing /etc/ser-edge takes sudo`);
    if (cmd === 'install' && args[0] === '-m' && args.length === 4) {
      assert.ok(args[3]!.startsWith('/etc/ser-edge/'), `${at}: into /etc/ser-edge`);
      for (const m of machines) {
        const target = onGateway(m, args[3]!);
        copyFileSync(onGateway(m, args[2]!), target);
        chmodSync(target, Number.parseInt(args[1]!, 8));
      }
      return false;
    }
    if (cmd === 'rm' && args.length === 1) {
      assert.ok(args[0]!.startsWith('/etc/ser-edge/'), `${at}: removes a file of /etc/ser-edge`);
      for (const m of machines) rmSync(onGateway(m, args[0]!));
      return false;
    }
    if (cmd === 'systemctl' && args.join(' ') === 'restart ser-edge') {
      await Promise.all(machines.map(async (m) => {
        await stopGateway(m);
        await startGateway(m);
      }));
      return true;
    }
    assert.fail(`${at}: no check for this gateway command in test/docs-model-updates.test.ts`);
  };

  const profileDir = join(repoRoot, 'firmware-config');
  try {
    await Promise.all(machines.map(startGateway));
    for (const block of blocks) {
      const at = `docs/model-updates.md:${block.line}`;
      switch (block.kind) {
        case 'workstation':
          assert.equal(block.lang, 'sh', at);
          for (const { line, words } of shellCommands(block, 'docs/model-updates.md')) await runWorkstation(line, words);
          break;
        case 'gateway': {
          assert.equal(block.lang, 'sh', at);
          let restarted = false;
          for (const { line, words } of shellCommands(block, 'docs/model-updates.md')) restarted = (await runGateway(line, words)) || restarted;
          if (restarted) await checkStep('restart', at);
          break;
        }
        case 'output':
        case 'output-excerpt':
          assert.ok(printed !== null, `${at}: an output block must follow a ser-edge command`);
          assertOutput(block, printed, at);
          break;
        case 'config-fragment': {
          const fragment = JSON.parse(block.text) as Record<string, unknown>;
          for (const m of machines) {
            const here = mapStrings(fragment, (s) => onGateway(m, s));
            writeFileSync(m.configFile, JSON.stringify(merged(JSON.parse(readFileSync(m.configFile, 'utf8')), here), null, 2));
            assertApplied(loadDaemonConfig({ file: m.configFile, profileDir, env: {} }).config, here, `${at} (${m.id})`);
          }
          break;
        }
        case 'config-defaults': {
          const bare = JSON.parse(readFileSync(machines[0]!.configFile, 'utf8')) as Record<string, unknown>;
          for (const key of Object.keys(JSON.parse(block.text) as object)) delete bare[key];
          const file = join(work, 'defaults.json');
          writeFileSync(file, JSON.stringify(bare));
          assertApplied(loadDaemonConfig({ file, profileDir, env: {} }).config, JSON.parse(block.text), `${at}: the defaults`);
          break;
        }
        case 'acl': {
          const acl = readFileSync(aclFile, 'utf8');
          assert.ok(acl.includes(`${block.text}\n`), `${at}: these lines are not, together and in this order, in firmware-config/mosquitto-acl.conf`);
          break;
        }
      }
    }
    assert.equal(steps, STEPS.length, `the guide made ${steps} of the ${STEPS.length} changes STEPS expects`);
    // The rest of the workstation is as the guide left it: the old pair gone, the new one kept.
    assert.deepEqual(readdirSync(home).filter((f) => f.startsWith('ser-edge-keys')), ['ser-edge-keys-2']);
  } finally {
    await Promise.all(machines.map((m) => stopGateway(m).catch(() => {})));
    await truth.end();
    files.closeAllConnections();
    files.close();
    await broker.stop();
  }
});

test('the reason table has one row for every reason code of a model command reply, and none other', () => {
  const codes = tableAfter('reason-table').map((row) => /^`([a-z0-9_]+)`$/.exec(row[0]!)?.[1] ?? row[0]!);
  assert.deepEqual([...codes].sort(), [...INSTALL_REASONS].sort());
  assert.equal(new Set(codes).size, codes.length, 'no code twice');
  for (const row of tableAfter('reason-table')) assert.ok(row.length === 3 && row[1]!.length > 10 && row[2]!.length > 5, `the row of ${row[0]} says what happened and what to do`);
});

test('the table of the tool’s own reasons names only codes the fleet tools or the gateway’s command layer give', () => {
  const sources = ['src/commands/fleet/rollout.ts', 'src/mqtt/mqtt-link.ts'].map((f) => readFileSync(join(repoRoot, f), 'utf8')).join('\n');
  for (const row of tableAfter('tool-reason-table')) {
    const code = /^`([a-z0-9_]+)`$/.exec(row[0]!)?.[1];
    assert.ok(code, `a code in backticks: ${row[0]}`);
    assert.ok(sources.includes(`'${code}'`), `${code} is given by neither rollout.ts nor mqtt-link.ts`);
    assert.ok(!(INSTALL_REASONS as readonly string[]).includes(code), `${code} belongs in the reason table`);
  }
});

test('every doc-check marker is one the test knows', () => {
  for (const m of guide.matchAll(/<!-- doc-check: ([a-z-]+) -->/g)) assert.ok([...KINDS, ...TABLE_KINDS].includes(m[1]!), `unknown doc-check kind ${m[1]}`);
});

/** A heading's anchor as GitHub makes it. */
const slug = (heading: string) => heading.trim().toLowerCase().replaceAll(/[^\p{L}\p{N} _-]/gu, '').replaceAll(' ', '-');
const anchorsOf = (file: string) => new Set(readFileSync(file, 'utf8').split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => slug(l.replace(/^#+ /, ''))));

test('docs/model-updates.md is linked from the README and from operations.md, and every link into or out of it names a heading that exists', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  assert.match(readme, /\]\(docs\/model-updates\.md\)/);
  const operations = readFileSync(join(repoRoot, 'docs', 'operations.md'), 'utf8');
  assert.match(operations, /\]\(model-updates\.md[#)]/);
  const links = [
    ...[...operations.matchAll(/\]\((model-updates\.md)#([^)]+)\)/g)].map((m) => [m[1]!, m[2]!]),
    ...[...guide.matchAll(/\]\(([a-z-]+\.md)#([^)]+)\)/g)].map((m) => [m[1]!, m[2]!]),
  ];
  assert.ok(links.length > 0);
  for (const [file, anchor] of links) assert.ok(anchorsOf(join(repoRoot, 'docs', file!)).has(anchor!), `${file}#${anchor}: no such heading`);
});
