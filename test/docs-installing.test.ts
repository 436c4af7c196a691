import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, normalize } from 'node:path';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { assertApplied, docBlocks, shellCommands } from './helpers/doc-blocks.js';
import { bundleCopy, repoRoot, runInstaller, writeCredentialFiles } from './helpers/gateway-install.js';
import { MOSQUITTO_MISSING, startMosquitto, writeMosquittoPasswords } from './helpers/mosquitto.js';
import { headsetTap, writeStandInArecord } from './helpers/stand-in-arecord.js';

/**
 * docs/installing.md, run as a technician would, on a gateway whose `/` is a temporary
 * folder. Every fenced block carries a `<!-- doc-check: KIND -->` line saying how it is
 * checked, and every command in a shell block has a check below: a command this test does
 * not know fails it, so the guide cannot gain a command nobody runs.
 *
 * - `build-machine`, `gateway`: shell commands, run in order on the build machine (a
 *   checkout whose dist/bundle is the bundle under test) or on the gateway (its home
 *   folder). The installer runs with `--root`; `/opt/ser-edge`, `/etc/ser-edge`,
 *   `/var/lib/ser-edge` and `/tmp/ser-edge-try` are folders of this test. The gateway's
 *   sound card is a stand-in `arecord` first on its PATH (test/helpers/stand-in-arecord.ts:
 *   a headset tap whose caller talks on channel 1), so `arecord -l`, `ser-edge devices` and
 *   `ser-edge devices --listen` run for real without a sound card or alsa-utils. `ser-edge
 *   doctor` runs for real on the config the install wrote, with its broker, TLS and paths
 *   moved onto this test (see runDoctor), as the test's user rather than the service
 *   account. Commands that need the gateway's systemd are checked against the install
 *   instead: the unit they name exists, and the tool has the verb or option.
 *   `after-new-bundle`: the bundle is rebuilt and the build-machine blocks replayed first,
 *   as the guide says to.
 * - `installer-message`: each line is one the installer prints (here, for a Node.js too old).
 * - `output`: what the command before it printed, up to the release's hash.
 * - `config-written`: exactly the config.json the install before it wrote.
 * - `config-fragment`: keys added to that config.json; the result loads.
 */

const guide = join(repoRoot, 'docs', 'installing.md');

const normaliseReleases = (text: string) => text.replaceAll(/(\d+\.\d+\.\d+\S*?)-[0-9a-f]{12}\b/g, '$1-<hash>');

test('docs/installing.md: every block is checked, and the walk-through runs from a bare gateway to uninstalled', async (t: TestContext) => {
  const blocks = docBlocks(readFileSync(guide, 'utf8'), 'docs/installing.md');
  assert.ok(blocks.length > 10, 'found the guide\'s blocks');

  const work = tempDir('ser-edge-docs-install-');
  const buildMachine = join(work, 'checkout');
  const home = join(work, 'home');
  const root = join(work, 'gateway-root');
  const tryRoot = join(work, 'ser-edge-try');
  mkdirSync(join(buildMachine, 'dist'), { recursive: true });
  mkdirSync(home);
  mkdirSync(root);
  const bundle = bundleCopy();
  cpSync(bundle, join(buildMachine, 'dist', 'bundle'), { recursive: true });
  writeCredentialFiles(buildMachine);

  const onGateway: [string, string][] = [
    ['/tmp/ser-edge-try', tryRoot],
    ['/opt/ser-edge', join(root, 'opt/ser-edge')],
    ['/etc/ser-edge', join(root, 'etc/ser-edge')],
    ['/var/lib/ser-edge', join(root, 'var/lib/ser-edge')],
  ];
  const mapPath = (word: string) => {
    for (const [from, to] of onGateway) if (word === from || word.startsWith(`${from}/`)) return to + word.slice(from.length);
    return word;
  };
  const unitInstalled = () => existsSync(join(root, 'etc/systemd/system/ser-edge.service'));
  const helpOf = (tool: string, args = ['--help']) => spawnSync(tool, args, { encoding: 'utf8' });

  // The gateway's headset: the stand-in arecord, first on PATH for everything run on the gateway.
  const arecord = await writeStandInArecord(join(work, 'gateway-bin'), { channels: headsetTap(8, 1) });
  const gatewayEnv: NodeJS.ProcessEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SER_EDGE_'))), PATH: arecord.pathWith(process.env.PATH) };
  const onGatewayPath = (command: string, args: string[]) => spawnSync(command, args, { cwd: home, env: gatewayEnv, encoding: 'utf8', timeout: 120_000 });
  const serEdge = (args: string[]) => onGatewayPath(join(root, 'opt/ser-edge/bin/ser-edge'), args);
  /** The device string `ser-edge devices` printed, and the mapping `devices --listen` suggested: what the guide's config must say. */
  let listedDevice: string | null = null;
  let heardMapping: { index: number; role: string }[] | null = null;

  // The central broker, for doctor: the test's own mosquitto, which takes the login of the credential files the guide copies.
  const credentials = { username: readFileSync(join(buildMachine, 'mqtt-username'), 'utf8').trim(), password: readFileSync(join(buildMachine, 'mqtt-password'), 'utf8').trim() };
  const broker = MOSQUITTO_MISSING ? null : await startMosquitto({ passwordFile: writeMosquittoPasswords(join(work, 'mosquitto-passwords'), { [credentials.username]: credentials.password }) });
  t.after(() => broker?.stop());

  /**
   * `ser-edge doctor --config <root>/etc/ser-edge/config.json [--json]` on the config the
   * install wrote, with what points off this machine pointed at this test for the run (and
   * the file put back after): mqtt.url at the test's mosquitto (plain, on loopback, so the
   * TLS settings are dropped: the guide's CA and certificate are placeholders), and the
   * state directory and credential files at their places under the root. The profile's
   * headset source records from the stand-in arecord. Every row passes (or does not apply)
   * but the clock's, which is this host's.
   */
  const runDoctor = async (at: string, configPath: string, json: boolean) => {
    if (broker === null) return void (await t.test(at, { skip: MOSQUITTO_MISSING }, () => {}));
    const file = mapPath(configPath);
    const written = readFileSync(file, 'utf8');
    const config = JSON.parse(written) as { stateDir: string; mqtt: Record<string, unknown> };
    const { tls: _tls, requireTls: _requireTls, ...mqtt } = config.mqtt;
    assert.ok(typeof mqtt.usernameFile === 'string' && typeof mqtt.passwordFile === 'string', `${at}: the install configured the login`);
    writeFileSync(file, JSON.stringify({ ...config, stateDir: mapPath(config.stateDir), mqtt: { ...mqtt, url: broker.url, usernameFile: mapPath(mqtt.usernameFile), passwordFile: mapPath(mqtt.passwordFile) } }, null, 2));
    let run;
    try {
      run = serEdge(['doctor', '--config', file, ...(json ? ['--json'] : [])]);
    } finally {
      writeFileSync(file, written);
    }
    assert.equal(run.error, undefined, `${at}: ${run.error?.message}`);
    const rows: [check: string, status: string, detail: string][] = json
      ? (JSON.parse(run.stdout) as { checks: { check: string; status: string; detail: string }[] }).checks.map((c) => [c.check, c.status, c.detail])
      : [...run.stdout.matchAll(/^(PASS|WARN|FAIL|SKIP) {2}(\S+) +(.*)$/gm)].map((m) => [m[2]!, m[1]!.toLowerCase(), m[3]!]);
    const statuses = Object.fromEntries(rows.filter(([check]) => check !== 'clock').map(([check, status]) => [check, status]));
    assert.deepEqual(
      statuses,
      { node: 'pass', config: 'pass', recorder: 'pass', capture: 'pass', model: 'pass', 'model-signature': 'pass', 'model-keys': 'skip', 'model-store': 'pass', broker: 'pass', 'state-dir': 'pass', disk: 'pass', capacity: 'pass' },
      `${at}:\n${run.stdout}\n${run.stderr}`,
    );
    const detail = (check: string) => rows.find(([c]) => c === check)![2];
    assert.match(detail('capture'), /mic:plughw:CARD=Headset,DEV=0 delivers audio: /, at);
    assert.match(detail('broker'), /^connected to mqtt:\/\/127\.0\.0\.1:\d+: MQTT 5 in \d+ ms, no TLS, username from mqtt\.usernameFile$/, at);
    const clock = rows.find(([c]) => c === 'clock')!;
    assert.equal(run.status, clock[1] === 'fail' ? 1 : 0, `${at}: exits 0 unless a check fails (here only this host's clock could)`);
  };

  let lastOutput = '';
  const buildRuns: { line: number; words: string[] }[] = [];

  const runBuildMachine = async (line: number, words: string[], replay = false) => {
    const at = `docs/installing.md:${line}: ${words.join(' ')}`;
    const [cmd, ...args] = words;
    // Replayed for a new bundle: only what makes and copies it runs again.
    if (replay && cmd === 'npm') return;
    if (cmd === 'npm' && args[0] === 'ci' && args.length === 1) {
      assert.match(readFileSync(join(repoRoot, '.ci/run'), 'utf8'), /^npm ci$/m, `${at}: CI runs it`);
      return;
    }
    if (cmd === 'npm' && args[0] === 'run' && args.length === 2) {
      const scripts = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
      assert.ok(scripts[args[1]!] !== undefined, `${at}: package.json has no script "${args[1]}"`);
      return;
    }
    if (cmd === 'tar') {
      const r = spawnSync('tar', args, { cwd: buildMachine, encoding: 'utf8' });
      assert.equal(r.status, 0, `${at}: ${r.stderr}`);
      return;
    }
    if (cmd === 'scp' && args.length >= 2 && /^[a-z]+@[a-z.-]+:$/.test(args.at(-1)!)) {
      for (const file of args.slice(0, -1)) copyFileSync(join(buildMachine, file), join(home, basename(file)));
      return;
    }
    assert.fail(`${at}: no check for this build-machine command in test/docs-installing.test.ts`);
  };

  const runGateway = async (line: number, words: string[]) => {
    const at = `docs/installing.md:${line}: ${words.join(' ')}`;
    let rest = words;
    let sudo = false;
    let runAs: string | null = null;
    if (rest[0] === 'sudo') {
      sudo = true;
      rest = rest.slice(1);
      if (rest[0] === '-u') {
        runAs = rest[1]!;
        rest = rest.slice(2);
      }
    }
    const [cmd, ...args] = rest as [string, ...string[]];

    if (cmd.endsWith('/install-gateway.sh')) {
      const script = cmd.startsWith('./') ? join(home, cmd) : mapPath(cmd);
      const hasRoot = args.includes('--root');
      assert.ok(hasRoot || sudo, `${at}: installing on the machine needs sudo`);
      const run = runInstaller([...args.map(mapPath), ...(hasRoot ? [] : ['--root', root])], { script, cwd: home });
      assert.equal(run.status, 0, `${at}: exit ${run.status}\n${run.stdout}\n${run.stderr}`);
      lastOutput = run.stdout.replaceAll(tryRoot, '/tmp/ser-edge-try');
      return;
    }
    if (cmd === 'tar') {
      const r = spawnSync('tar', args, { cwd: home, encoding: 'utf8' });
      assert.equal(r.status, 0, `${at}: ${r.stderr}`);
      return;
    }
    if (cmd === 'rm' && args[0] === '-rf') {
      for (const target of args.slice(1)) {
        const path = isAbsolute(target) ? mapPath(target) : join(home, target);
        assert.ok(path.startsWith(work) && !normalize(target).startsWith('..'), `${at}: removes only what the guide made`);
        rmSync(path, { recursive: true, force: true });
      }
      return;
    }
    if (cmd === 'node' && args.join(' ') === '--version') {
      assert.match(spawnSync(process.execPath, ['--version'], { encoding: 'utf8' }).stdout, /^v\d+\./);
      return;
    }
    if (cmd === 'uname' && args.join(' ') === '-m') {
      assert.equal(spawnSync('uname', ['-m']).status, 0);
      return;
    }
    if (cmd === 'ser-edge' || cmd === '/opt/ser-edge/bin/ser-edge') {
      if (runAs !== null) assert.equal(runAs, 'ser-edge', `${at}: the service account is ser-edge`);
      if (cmd === 'ser-edge') assert.equal(readlinkSync(join(root, 'usr/local/bin/ser-edge')), '/opt/ser-edge/bin/ser-edge', `${at}: the install puts ser-edge on the PATH`);
      const [sub, ...rest] = args;
      if (sub === 'devices' && rest.length === 0) {
        const run = serEdge(['devices']);
        assert.equal(run.status, 0, `${at}: exit ${run.status}\n${run.stdout}\n${run.stderr}`);
        // The stand-in's card, as the guide says `devices` shows it: channels, rates and the device string for the config.
        const card = new RegExp(`^ {2}card ${arecord.cardNumber}, device 0: USB Headset — USB Audio\n {6}channels 2, rates 16000 Hz, formats S16_LE\n {6}device: (\\S+)$`, 'm').exec(run.stdout);
        assert.ok(card, `${at}: the headset is not listed as the guide describes:\n${run.stdout}`);
        listedDevice = card[1]!;
        assert.equal(listedDevice, 'plughw:CARD=Headset,DEV=0', `${at}: the device string the guide names`);
        return;
      }
      if (sub === 'devices' && rest[0] === '--listen' && rest[2] === '--seconds' && rest.length === 4) {
        assert.equal(rest[1], listedDevice, `${at}: listens to the device \`ser-edge devices\` listed`);
        const run = serEdge(args);
        assert.equal(run.status, 0, `${at}: exit ${run.status}\n${run.stdout}\n${run.stderr}`);
        assert.match(run.stdout, new RegExp(`^Listened to mic:${rest[1]} for ${Number(rest[3]).toFixed(1)} s:$`, 'm'), `${at}: listens for --seconds`);
        // The stand-in's caller talks on channel 1, as in the guide's example mapping.
        assert.match(run.stdout, /^Caller's side: channel 1 — map it as "customer", channel 0 as "agent" \(clear\)\.$/m, `${at}:\n${run.stdout}`);
        heardMapping = JSON.parse(/^ {2}"channels": (\[.*\])$/m.exec(run.stdout)![1]!) as { index: number; role: string }[];
        return;
      }
      if (sub === 'doctor' && rest[0] === '--config' && (rest.length === 2 || (rest.length === 3 && rest[2] === '--json'))) {
        assert.ok(existsSync(mapPath(rest[1]!)), `${at}: ${rest[1]} is not installed`);
        return runDoctor(at, rest[1]!, rest[2] === '--json');
      }
      assert.fail(`${at}: no check for this ser-edge command in test/docs-installing.test.ts`);
    }
    if (cmd === 'arecord') {
      // The stand-in (first on the gateway's PATH), whose card `ser-edge devices` then lists.
      const run = onGatewayPath('arecord', args);
      assert.equal(run.status, 0, `${at}: ${run.stderr}`);
      if (args.join(' ') === '-l') assert.match(run.stdout, /^card \d+: Headset \[USB Headset\], device 0: USB Audio/m, at);
      return;
    }
    if (cmd === 'systemctl') {
      const [verb, unit, ...more] = args;
      assert.equal(more.length, 0, at);
      assert.equal(unit, 'ser-edge', `${at}: the unit is ser-edge`);
      assert.ok(unitInstalled(), `${at}: the install wrote no ser-edge unit`);
      assert.ok(['status', 'restart', 'edit', 'stop', 'start'].includes(verb!), `${at}: no check for systemctl ${verb}`);
      assert.ok(sudo || verb === 'status', `${at}: systemctl ${verb} needs sudo`);
      assert.match(helpOf('systemctl').stdout, new RegExp(`^\\s+${verb} `, 'm'), `${at}: systemctl has no ${verb}`);
      return;
    }
    if (cmd === 'journalctl') {
      assert.equal(args[args.indexOf('-u') + 1], 'ser-edge', `${at}: -u ser-edge`);
      assert.ok(unitInstalled(), `${at}: the install wrote no ser-edge unit`);
      const help = helpOf('journalctl').stdout;
      for (const flag of args.filter((a) => a.startsWith('-'))) assert.match(help, new RegExp(`(^|[\\s,])${flag}([\\s=,]|$)`, 'm'), `${at}: journalctl has no ${flag}`);
      const output = args[args.indexOf('-o') + 1];
      if (args.includes('-o')) assert.match(helpOf('journalctl', ['-o', 'help']).stdout, new RegExp(`^${output}$`, 'm'), `${at}: no output mode ${output}`);
      return;
    }
    if (cmd === 'sudoedit') {
      assert.ok(args.length === 1 && existsSync(mapPath(args[0]!)), `${at}: ${args[0]} is not installed`);
      return;
    }
    assert.fail(`${at}: no check for this gateway command in test/docs-installing.test.ts`);
  };

  // What the installer prints when Node.js is too old, for the installer-message block.
  const oldNode = join(work, 'old-node');
  writeFileSync(oldNode, '#!/bin/sh\necho 18.19.0\n', { mode: 0o755 });
  const nodeMessage = runInstaller(['--root', join(work, 'unused'), '--node', oldNode, '--profile', 'generic-linux', '--site', 's', '--gateway', 'g', '--broker', 'mqtt://h:1883'], { bundle }).stderr;

  let writtenConfigChecked = false;
  for (const block of blocks) {
    const at = `docs/installing.md:${block.line}`;
    switch (block.kind) {
      case 'build-machine':
        assert.equal(block.lang, 'sh', at);
        for (const { line, words } of shellCommands(block, 'docs/installing.md')) {
          await runBuildMachine(line, words);
          buildRuns.push({ line, words });
        }
        break;
      case 'gateway':
        assert.equal(block.lang, 'sh', at);
        if (block.flags.includes('after-new-bundle')) {
          appendFileSync(join(buildMachine, 'dist/bundle/ser-edge.mjs'), '// the next release\n');
          for (const { line, words } of buildRuns) await runBuildMachine(line, words, true);
        }
        for (const { line, words } of shellCommands(block, 'docs/installing.md')) await runGateway(line, words);
        break;
      case 'installer-message':
        for (const line of block.text.split('\n').filter((l) => l.trim() !== '')) {
          assert.ok(nodeMessage.split('\n').some((m) => m.trim() === line.trim()), `${at}: the installer does not print \`${line}\`; it prints:\n${nodeMessage}`);
        }
        break;
      case 'output':
        assert.equal(normaliseReleases(block.text), normaliseReleases(lastOutput.trimEnd()), `${at}: the output shown is not what the command prints`);
        break;
      case 'config-written':
        assert.deepEqual(JSON.parse(block.text), JSON.parse(readFileSync(join(root, 'etc/ser-edge/config.json'), 'utf8')), `${at}: not the config the install wrote`);
        writtenConfigChecked = true;
        break;
      case 'config-fragment': {
        const fragment = JSON.parse(block.text) as Record<string, unknown>;
        const merged = { ...JSON.parse(readFileSync(join(root, 'etc/ser-edge/config.json'), 'utf8')), ...fragment };
        const file = join(root, 'etc/ser-edge/config-with-fragment.json');
        writeFileSync(file, JSON.stringify(merged));
        const { config } = loadDaemonConfig({ file, profileDir: join(root, 'opt/ser-edge/current/firmware-config'), env: {} });
        rmSync(file);
        assertApplied(config, fragment, at);
        const sources = fragment.sources as { device?: string; channels: { index: number; role: string }[] }[] | undefined;
        if (sources !== undefined) {
          // The guide's mapping is what `ser-edge devices --listen` told the installer, for the device it listed.
          assert.ok(heardMapping !== null && listedDevice !== null, `${at}: the guide maps the channels before listening to them`);
          assert.equal(sources[0]!.device, listedDevice, `${at}: the device string \`ser-edge devices\` printed`);
          const pairs = (channels: { index: number; role: string }[]) => channels.map((c) => [c.index, c.role]).sort();
          assert.deepEqual(pairs(sources[0]!.channels), pairs(heardMapping), `${at}: the mapping \`ser-edge devices --listen\` suggested`);
        }
        break;
      }
      default:
        assert.fail(`${at}: unknown doc-check kind "${block.kind}"`);
    }
  }
  assert.ok(writtenConfigChecked, 'the guide shows the config the installer writes');
  // The walk-through ends with --uninstall --purge: nothing of ser-edge is left.
  for (const path of ['opt/ser-edge', 'etc/ser-edge', 'var/lib/ser-edge', 'etc/systemd/system/ser-edge.service', 'etc/sysusers.d/ser-edge.conf']) {
    assert.ok(!existsSync(join(root, path)), `${path} is gone after the guide's last step`);
  }
});

test('docs/installing.md is linked from the README', () => {
  assert.match(readFileSync(join(repoRoot, 'README.md'), 'utf8'), /\]\(docs\/installing\.md\)/);
});
