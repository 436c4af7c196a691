import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, normalize } from 'node:path';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { tempDir } from './helpers/audio-fixtures.js';
import { assertApplied, docBlocks, shellCommands } from './helpers/doc-blocks.js';
import { bundleCopy, repoRoot, runInstaller, writeCredentialFiles } from './helpers/gateway-install.js';

/**
 * docs/installing.md, run as a technician would, on a gateway whose `/` is a temporary
 * folder. Every fenced block carries a `<!-- doc-check: KIND -->` line saying how it is
 * checked, and every command in a shell block has a check below: a command this test does
 * not know fails it, so the guide cannot gain a command nobody runs.
 *
 * - `build-machine`, `gateway`: shell commands, run in order on the build machine (a
 *   checkout whose dist/bundle is the bundle under test) or on the gateway (its home
 *   folder). The installer runs with `--root`; `/opt/ser-edge`, `/etc/ser-edge`,
 *   `/var/lib/ser-edge` and `/tmp/ser-edge-try` are folders of this test. Commands that
 *   need the gateway's systemd or sound card are checked against the install instead: the
 *   unit they name exists, their options exist (`--help`). `after-new-bundle`: the bundle
 *   is rebuilt and the build-machine blocks replayed first, as the guide says to.
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
  const cliHelp = (args: string[]) => spawnSync(join(root, 'opt/ser-edge/bin/ser-edge'), [...args, '--help'], { encoding: 'utf8' });
  const helpOf = (tool: string, args = ['--help']) => spawnSync(tool, args, { encoding: 'utf8' });
  // Commands that other parts of the same issue add: checked as soon as the CLI has them.
  const PENDING_SUBCOMMANDS = new Set(['devices', 'doctor']);
  const PENDING_SCRIPTS = new Set(['bundle']);

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
      const check = () => assert.ok(scripts[args[1]!] !== undefined, `${at}: package.json has no script "${args[1]}"`);
      if (PENDING_SCRIPTS.has(args[1]!) && scripts[args[1]!] === undefined) {
        return void (await t.test(`${at} (npm run ${args[1]} comes with the bundle branch)`, { todo: true }, check));
      }
      return check();
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
      const sub = args[0]?.startsWith('-') ? [] : args.slice(0, 1);
      const check = () => {
        const help = cliHelp(sub);
        assert.equal(help.status, 0, `${at}: \`ser-edge ${sub.join(' ')} --help\` fails: ${help.stderr}`);
        // An unknown command's --help is the program's: the usage line tells them apart.
        assert.match(help.stdout, new RegExp(`Usage: ser-edge ${sub.join(' ')}\\b`), `${at}: \`ser-edge ${sub.join(' ')}\` is not a command`);
        for (const flag of args.filter((a) => a.startsWith('--'))) assert.ok(help.stdout.includes(flag), `${at}: ser-edge ${sub.join(' ')} has no ${flag}`);
        for (const path of args.filter((a) => a.startsWith('/'))) assert.ok(existsSync(mapPath(path)), `${at}: ${path} is not installed`);
      };
      const known = cliHelp([]).stdout.split('\n').some((l) => l.trim().startsWith(`${sub[0]} `));
      if (sub.length === 1 && PENDING_SUBCOMMANDS.has(sub[0]!) && !known) {
        return void (await t.test(`${at} (\`ser-edge ${sub[0]}\` comes with the devices/doctor branch)`, { todo: true }, check));
      }
      return check();
    }
    if (cmd === 'arecord') {
      if (spawnSync('arecord', ['--version']).status !== 0) return void (await t.test(at, { skip: 'alsa-utils is not installed here' }, () => {}));
      const r = spawnSync('arecord', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `${at}: ${r.stderr}`);
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
