import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { tempDir } from './helpers/audio-fixtures.js';
import {
  assertInstalled,
  bundleCopy,
  installerSource,
  listTree,
  packageVersion,
  runInstaller,
  SYSTEMD_TOOLS_MISSING,
  writeCredentialFiles,
  type TreeEntry,
} from './helpers/gateway-install.js';
import { MOSQUITTO_MISSING, connectSubscriber, startMosquitto } from './helpers/mosquitto.js';

const nodeOnPath = spawnSync('bash', ['-c', `PATH=${join(process.execPath, '..')}:$PATH command -v node`], { encoding: 'utf8' }).stdout.trim();

function freshInstall(extra: string[] = []) {
  const bundle = bundleCopy();
  const work = tempDir('ser-edge-install-');
  const root = join(work, 'root');
  const files = writeCredentialFiles(work);
  const options = [
    '--profile', 'raspberry-pi-4', '--site', 'lyon-2', '--gateway', 'desk-row-a', '--broker', 'mqtts://mqtt.callcentre.example:8883',
    '--ca', files.ca, '--cert', files.cert, '--key', files.key, '--username-file', files.username, '--password-file', files.password,
  ];
  const run = runInstaller(['--root', root, ...options, ...extra], { bundle });
  assertInstalled(run);
  return { bundle, work, root, files, options, run };
}

function releaseOf(root: string, link: 'current' | 'previous'): string | undefined {
  const entry = listTree(join(root, 'opt', 'ser-edge')).get(link);
  return entry?.type === 'link' ? entry.target.replace(/^releases\//, '') : undefined;
}

const fileMode = (path: string) => statSync(path).mode & 0o7777;

test('a first install under --root writes exactly the layout: the release, the wrapper, the config, the credentials, the unit, the account and the state directory', () => {
  const { bundle, root, files, run } = freshInstall();
  const id = releaseOf(root, 'current')!;
  assert.match(id, new RegExp(`^${packageVersion.replaceAll('.', '\\.')}-[0-9a-f]{12}$`), 'a release is named by version and content');

  const expected = new Map<string, TreeEntry>();
  const dir = (path: string, mode = 0o755) => expected.set(path, { type: 'dir', mode });
  const file = (path: string, mode: number) => expected.set(path, { type: 'file', mode });
  for (const d of ['etc', 'etc/systemd', 'etc/systemd/system', 'etc/sysusers.d', 'opt', 'opt/ser-edge', 'opt/ser-edge/bin', 'opt/ser-edge/releases', 'usr', 'usr/local', 'usr/local/bin', 'var', 'var/lib']) dir(d);
  dir('etc/ser-edge', 0o750);
  for (const f of ['ca.pem', 'gateway.pem', 'gateway.key', 'mqtt-username', 'mqtt-password', 'config.json']) file(`etc/ser-edge/${f}`, 0o640);
  file('etc/systemd/system/ser-edge.service', 0o644);
  file('etc/sysusers.d/ser-edge.conf', 0o644);
  file('opt/ser-edge/bin/ser-edge', 0o755);
  expected.set('opt/ser-edge/current', { type: 'link', target: `releases/${id}` });
  expected.set('usr/local/bin/ser-edge', { type: 'link', target: '/opt/ser-edge/bin/ser-edge' });
  dir('var/lib/ser-edge', 0o750);
  // The release is the bundle, file for file, root-owned modes whatever the copy had.
  dir(`opt/ser-edge/releases/${id}`);
  for (const [path, entry] of listTree(bundle)) {
    const mode = entry.type === 'dir' ? 0o755 : path === 'install-gateway.sh' ? 0o755 : 0o644;
    expected.set(`opt/ser-edge/releases/${id}/${path}`, { type: entry.type === 'dir' ? 'dir' : 'file', mode });
  }
  const written = listTree(root);
  assert.deepEqual([...written.keys()].sort(), [...expected.keys()].sort(), 'no file more, no file less');
  for (const [path, entry] of expected) assert.deepEqual(written.get(path), entry, path);

  for (const path of listTree(bundle).keys()) {
    if (statSync(join(bundle, path)).isFile()) assert.ok(readFileSync(join(root, 'opt/ser-edge/releases', id, path)).equals(readFileSync(join(bundle, path))), `${path} is copied as is`);
  }
  for (const [name, source] of [['ca.pem', files.ca], ['gateway.pem', files.cert], ['gateway.key', files.key], ['mqtt-username', files.username], ['mqtt-password', files.password]] as const) {
    assert.equal(readFileSync(join(root, 'etc/ser-edge', name), 'utf8'), readFileSync(source, 'utf8'), `${name} is a copy of the file given`);
  }
  assert.equal(readFileSync(join(root, 'etc/systemd/system/ser-edge.service'), 'utf8'), readFileSync(join(bundle, 'firmware-config/ser-edge.service'), 'utf8'), 'the unit is the bundle\'s');
  assert.deepEqual(
    readFileSync(join(root, 'etc/sysusers.d/ser-edge.conf'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')),
    ['u ser-edge - "ser-edge speech-emotion daemon" /var/lib/ser-edge', 'm ser-edge audio'],
  );
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'etc/ser-edge/config.json'), 'utf8')), {
    $schema: '/opt/ser-edge/current/schemas/config.schema.json',
    extends: 'raspberry-pi-4',
    site: 'lyon-2',
    gateway: 'desk-row-a',
    stateDir: '/var/lib/ser-edge',
    mqtt: {
      url: 'mqtts://mqtt.callcentre.example:8883',
      requireTls: true,
      tls: { ca: '/etc/ser-edge/ca.pem', cert: '/etc/ser-edge/gateway.pem', key: '/etc/ser-edge/gateway.key' },
      usernameFile: '/etc/ser-edge/mqtt-username',
      passwordFile: '/etc/ser-edge/mqtt-password',
    },
  });

  assert.deepEqual(run.wouldRun, [
    'apt-get install -y --no-install-recommends alsa-utils',
    'systemd-sysusers /etc/sysusers.d/ser-edge.conf',
    'chown root:ser-edge /etc/ser-edge /etc/ser-edge/ca.pem /etc/ser-edge/gateway.pem /etc/ser-edge/gateway.key /etc/ser-edge/mqtt-username /etc/ser-edge/mqtt-password /etc/ser-edge/config.json',
    'chown ser-edge:ser-edge /var/lib/ser-edge',
    'systemctl daemon-reload',
    'systemctl enable ser-edge',
    'systemctl restart ser-edge',
  ]);
  assert.equal(run.stderr, '', 'a clean install warns about nothing');
});

test('the wrapper runs the active release with the Node.js found on the PATH at install time', () => {
  const { root } = freshInstall();
  const wrapper = readFileSync(join(root, 'opt/ser-edge/bin/ser-edge'), 'utf8');
  assert.match(wrapper, new RegExp(`^node='${nodeOnPath}'$`, 'm'));
  assert.match(wrapper, /exec "\$node" "\$here\/\.\.\/current\/ser-edge\.mjs" "\$@"/);
  const version = spawnSync(join(root, 'opt/ser-edge/bin/ser-edge'), ['--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), packageVersion);
});

test('the wrapper says what to do when the Node.js it was installed with is gone', () => {
  const work = tempDir('ser-edge-install-node-');
  const fakeNode = join(work, 'node');
  writeFileSync(fakeNode, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
  const { root } = freshInstall(['--node', fakeNode]);
  const ok = spawnSync(join(root, 'opt/ser-edge/bin/ser-edge'), ['--version'], { encoding: 'utf8' });
  assert.equal(ok.stdout.trim(), packageVersion, '--node is the Node.js the wrapper runs');
  chmodSync(fakeNode, 0o644);
  const gone = spawnSync(join(root, 'opt/ser-edge/bin/ser-edge'), ['--version'], { encoding: 'utf8' });
  assert.equal(gone.status, 127);
  assert.match(gone.stderr, /install Node\.js 20 or newer and run install-gateway\.sh again/);
});

test('the written unit passes systemd-analyze verify, with the wrapper it runs in place', { skip: SYSTEMD_TOOLS_MISSING }, () => {
  const { root } = freshInstall();
  const unit = readFileSync(join(root, 'etc/systemd/system/ser-edge.service'), 'utf8');
  const settings = unit.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
  for (const line of [
    'ExecStart=/opt/ser-edge/bin/ser-edge run --config /etc/ser-edge/config.json',
    'User=ser-edge',
    'Group=ser-edge',
    'SupplementaryGroups=audio',
    'StateDirectory=ser-edge',
    'ReadWritePaths=/var/lib/ser-edge',
    'ProtectHome=yes',
    'ProtectSystem=strict',
    'RestartPreventExitStatus=2',
  ]) {
    assert.ok(settings.includes(line), `the unit has ${line}`);
  }
  assert.ok(!settings.some((l) => l.startsWith('DynamicUser=')), 'a static account, so the key files have a group to be readable by');
  assert.ok(!settings.some((l) => l.startsWith('ConfigurationDirectory=')), 'the installer owns /etc/ser-edge (0750 root:ser-edge); systemd would make it 0755');

  // verify resolves the unit's dependencies (sysinit.target, …) and ExecStart inside --root:
  // a copy of the install with this machine's systemd unit library beside it.
  const verifyRoot = join(tempDir('ser-edge-verify-'), 'root');
  cpSync(root, verifyRoot, { recursive: true, verbatimSymlinks: true });
  cpSync('/usr/lib/systemd/system', join(verifyRoot, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  const verify = () => spawnSync('systemd-analyze', ['verify', `--root=${verifyRoot}`, 'ser-edge.service'], { encoding: 'utf8' });
  const clean = verify();
  assert.equal(clean.status, 0, clean.stderr);
  assert.equal(clean.stderr, '', 'verify prints unknown keys and other problems as warnings, with exit 0');
  chmodSync(join(verifyRoot, 'opt/ser-edge/bin/ser-edge'), 0o644);
  const broken = verify();
  assert.notEqual(broken.status, 0, 'verify checks that ExecStart is there and executable');
  assert.match(broken.stderr, /\/opt\/ser-edge\/bin\/ser-edge is not executable/);
});

test('the written config loads, with the profile resolved from the installed release', () => {
  const { root } = freshInstall();
  const { config, layers } = loadDaemonConfig({
    file: join(root, 'etc/ser-edge/config.json'),
    profileDir: join(root, 'opt/ser-edge/current/firmware-config'),
    env: {},
  });
  assert.deepEqual(layers, [join(root, 'opt/ser-edge/current/firmware-config/raspberry-pi-4.json'), join(root, 'etc/ser-edge/config.json')]);
  assert.equal(config.profile, 'raspberry-pi-4');
  assert.equal(config.site, 'lyon-2');
  assert.equal(config.gateway, 'desk-row-a');
  assert.equal(config.stateDir, '/var/lib/ser-edge');
  assert.equal(config.outbox.dir, '/var/lib/ser-edge/outbox');
  assert.equal(config.mqtt.url, 'mqtts://mqtt.callcentre.example:8883');
  assert.equal(config.mqtt.requireTls, true);
  assert.deepEqual(config.mqtt.tls, { ca: '/etc/ser-edge/ca.pem', cert: '/etc/ser-edge/gateway.pem', key: '/etc/ser-edge/gateway.key', rejectUnauthorized: true, allowUntrusted: false });
  assert.equal(config.mqtt.passwordFile, '/etc/ser-edge/mqtt-password');
  assert.equal(config.sources[0]?.type, 'microphone', 'the profile brings the headset source');
});

test('the account file makes a system user ser-edge, with its own group, in the audio group', { skip: SYSTEMD_TOOLS_MISSING }, () => {
  const { root } = freshInstall();
  // Applied to a copy that has Debian's audio group, as systemd-sysusers does on the gateway.
  const target = join(tempDir('ser-edge-sysusers-'), 'root');
  mkdirSync(join(target, 'etc'), { recursive: true });
  cpSync(join(root, 'etc/sysusers.d'), join(target, 'etc/sysusers.d'), { recursive: true });
  writeFileSync(join(target, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  writeFileSync(join(target, 'etc/group'), 'root:x:0:\naudio:x:29:\n');
  const result = spawnSync('systemd-sysusers', [`--root=${target}`], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const user = readFileSync(join(target, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('ser-edge:'))?.split(':');
  assert.ok(user, 'the user exists');
  assert.ok(Number(user[2]) < 1000, `a system user (uid ${user[2]})`);
  assert.equal(user[5], '/var/lib/ser-edge');
  assert.match(user[6]!, /nologin$/);
  const groups = readFileSync(join(target, 'etc/group'), 'utf8').split('\n');
  assert.ok(groups.includes('audio:x:29:ser-edge'), 'a member of the existing audio group');
  assert.ok(groups.some((g) => g.startsWith(`ser-edge:x:${user[3]}:`)), 'its own group, the one /etc/ser-edge is readable by');
});

test('the installed program runs the installed config, with a profile file of the site\'s own, against a real broker', { skip: MOSQUITTO_MISSING, timeout: 120_000 }, async () => {
  const broker = await startMosquitto();
  try {
    const bundle = bundleCopy();
    const work = tempDir('ser-edge-install-run-');
    const root = join(work, 'root');
    const profile = join(work, 'lab-desk.json');
    writeFileSync(profile, JSON.stringify({ extends: 'generic-linux', profile: 'lab-desk', sources: [{ type: 'demo', channels: [{ id: 'desk-1', role: 'customer' }] }] }));
    assertInstalled(runInstaller(['--root', root, '--profile', profile, '--site', 'lab', '--gateway', 'installed', '--broker', broker.url], { bundle }));
    const config = JSON.parse(readFileSync(join(root, 'etc/ser-edge/config.json'), 'utf8'));
    assert.equal(config.extends, 'profiles/lab-desk.json', 'relative to config.json, so it resolves the same on the gateway');
    assert.equal(readFileSync(join(root, 'etc/ser-edge/profiles/lab-desk.json'), 'utf8'), readFileSync(profile, 'utf8'));
    assert.equal(fileMode(join(root, 'etc/ser-edge/profiles/lab-desk.json')), 0o640);
    assert.equal(config.mqtt.requireTls, undefined, 'a plain broker gets no requireTls');

    const subscriber = await connectSubscriber(broker.url, ['ser/v1/lab/installed/status']);
    // As the unit runs it, except the state directory: /var/lib/ser-edge is the gateway's, not this machine's.
    const daemon = spawn(join(root, 'opt/ser-edge/bin/ser-edge'), ['run', '--config', join(root, 'etc/ser-edge/config.json')], {
      env: { ...process.env, SER_EDGE_STATE_DIR: join(root, 'var/lib/ser-edge'), SER_EDGE_MQTT_URL: '', SER_EDGE_SITE: '', SER_EDGE_GATEWAY: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    daemon.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    process.once('exit', () => daemon.kill('SIGKILL'));
    try {
      await subscriber.waitFor((m) => m.json<{ state: string }>().state === 'online', 60_000, 'the installed gateway\'s online status').catch((error: Error) => {
        throw new Error(`${error.message}\n${stderr.slice(-3000)}`);
      });
    } finally {
      daemon.kill('SIGTERM');
      await subscriber.client.endAsync(true);
    }
    assert.equal(await exited, 0, stderr.slice(-3000));
    assert.ok(existsSync(join(root, 'var/lib/ser-edge/outbox')), 'the outbox is in the state directory');
  } finally {
    await broker.stop();
  }
});

/** A rebuilt bundle: same version, other content, so another release. */
function rebuild(bundle: string, note: string): void {
  appendFileSync(join(bundle, 'ser-edge.mjs'), `// ${note}\n`);
}

test('an upgrade in place keeps the config, the credentials, the state and the outbox, and keeps the release before for rollback', () => {
  const { bundle, root, options } = freshInstall();
  const first = releaseOf(root, 'current')!;
  const configPath = join(root, 'etc/ser-edge/config.json');
  const edited = JSON.parse(readFileSync(configPath, 'utf8'));
  edited.calls = { callSilenceSeconds: 45 };
  writeFileSync(configPath, `${JSON.stringify(edited, null, 2)}\n`);
  mkdirSync(join(root, 'var/lib/ser-edge/outbox'));
  writeFileSync(join(root, 'var/lib/ser-edge/outbox/seq'), '4711\n');
  writeFileSync(join(root, 'var/lib/ser-edge/outbox/outbox-000000000001.seg'), Buffer.from([1, 2, 3, 4]));
  const before = { config: readFileSync(configPath), etc: listTree(join(root, 'etc/ser-edge')), state: listTree(join(root, 'var/lib/ser-edge')) };

  rebuild(bundle, 'release two');
  // The same command as the first install, as an automated rollout would run it.
  const upgrade = runInstaller(['--root', root, ...options], { bundle });
  assertInstalled(upgrade);
  const second = releaseOf(root, 'current')!;
  assert.notEqual(second, first);
  assert.equal(releaseOf(root, 'previous'), first);
  assert.ok(readFileSync(configPath).equals(before.config), 'config.json is untouched');
  assert.deepEqual(listTree(join(root, 'etc/ser-edge')), before.etc);
  assert.deepEqual(listTree(join(root, 'var/lib/ser-edge')), before.state);
  assert.equal(readFileSync(join(root, 'var/lib/ser-edge/outbox/seq'), 'utf8'), '4711\n');
  assert.deepEqual([...readFileSync(join(root, 'var/lib/ser-edge/outbox/outbox-000000000001.seg'))], [1, 2, 3, 4]);
  assert.match(upgrade.stdout, /kept \/etc\/ser-edge\/config\.json as it is, without --profile --site --gateway --broker --ca --cert --key --username-file --password-file \(add --reconfigure/);
  assert.match(upgrade.stdout, /kept \/var\/lib\/ser-edge and everything in it/);
  assert.ok(upgrade.wouldRun.includes('systemctl restart ser-edge'), 'the running program is replaced');
  assert.ok(!upgrade.wouldRun.some((c) => c.includes('/var/lib/ser-edge')), 'not even the state directory\'s owner is touched');

  rebuild(bundle, 'release three');
  assertInstalled(runInstaller(['--root', root], { bundle }));
  assert.equal(releaseOf(root, 'previous'), second);
  assert.deepEqual(readdirSync(join(root, 'opt/ser-edge/releases')).sort(), [second, releaseOf(root, 'current')!].sort(), 'two releases are kept: the active one and the one before');
});

test('installing the same bundle again changes no release', () => {
  const { bundle, root } = freshInstall();
  const tree = listTree(join(root, 'opt/ser-edge'));
  const again = runInstaller(['--root', root], { bundle });
  assertInstalled(again);
  assert.match(again.stdout, /release \S+ is already in \/opt\/ser-edge\/releases/);
  assert.deepEqual(listTree(join(root, 'opt/ser-edge')), tree, 'no previous link to itself, nothing copied');
});

test('the installed copy of the installer can reinstall its own release', () => {
  const { root } = freshInstall();
  const again = runInstaller(['--root', root], { script: join(root, 'opt/ser-edge/current/install-gateway.sh') });
  assertInstalled(again);
  assert.match(again.stdout, /is already in \/opt\/ser-edge\/releases/);
});

test('--reconfigure rewrites only the settings given, and keeps the old config as a backup', () => {
  const { bundle, root } = freshInstall();
  const configPath = join(root, 'etc/ser-edge/config.json');
  const edited = JSON.parse(readFileSync(configPath, 'utf8'));
  edited.calls = { callSilenceSeconds: 45 };
  writeFileSync(configPath, `${JSON.stringify(edited, null, 2)}\n`);
  const old = readFileSync(configPath, 'utf8');

  const run = runInstaller(['--root', root, '--reconfigure', '--broker', 'mqtts://mqtt2.callcentre.example:8883', '--site', 'lyon-3'], { bundle });
  assertInstalled(run);
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  assert.deepEqual(config, { ...edited, site: 'lyon-3', mqtt: { ...edited.mqtt, url: 'mqtts://mqtt2.callcentre.example:8883' } });
  const backups = readdirSync(join(root, 'etc/ser-edge')).filter((f) => f.endsWith('.bak'));
  assert.equal(backups.length, 1);
  assert.match(backups[0]!, /^config\.json\.\d{8}T\d{6}Z\.bak$/);
  assert.equal(readFileSync(join(root, 'etc/ser-edge', backups[0]!), 'utf8'), old);
  assert.equal(fileMode(join(root, 'etc/ser-edge', backups[0]!)), 0o640, 'the backup is as private as the config');
  assert.equal(fileMode(configPath), 0o640);
});

test('--reconfigure to a plain mqtt:// broker drops the TLS settings that no longer apply', () => {
  const { bundle, root } = freshInstall();
  assertInstalled(runInstaller(['--root', root, '--reconfigure', '--broker', 'mqtt://10.0.0.5:1883'], { bundle }));
  const config = JSON.parse(readFileSync(join(root, 'etc/ser-edge/config.json'), 'utf8'));
  assert.deepEqual(config.mqtt, { url: 'mqtt://10.0.0.5:1883', usernameFile: '/etc/ser-edge/mqtt-username', passwordFile: '/etc/ser-edge/mqtt-password' });
});

test('new credential files replace the old ones on an upgrade, the config staying as it is', () => {
  const { bundle, root, work } = freshInstall();
  const renewed = join(work, 'renewed.pem');
  writeFileSync(renewed, '-----BEGIN CERTIFICATE-----\nrenewed\n-----END CERTIFICATE-----\n');
  const config = readFileSync(join(root, 'etc/ser-edge/config.json'));
  const key = join(work, 'renewed.key');
  writeFileSync(key, 'renewed key\n');
  assertInstalled(runInstaller(['--root', root, '--cert', renewed, '--key', key], { bundle }));
  assert.equal(readFileSync(join(root, 'etc/ser-edge/gateway.pem'), 'utf8'), readFileSync(renewed, 'utf8'));
  assert.equal(readFileSync(join(root, 'etc/ser-edge/gateway.key'), 'utf8'), 'renewed key\n');
  assert.equal(fileMode(join(root, 'etc/ser-edge/gateway.key')), 0o640);
  assert.ok(readFileSync(join(root, 'etc/ser-edge/config.json')).equals(config));
});

test('--rollback makes the previous release active again and keeps the newer one as previous', () => {
  const { bundle, root } = freshInstall();
  const first = releaseOf(root, 'current')!;
  rebuild(bundle, 'release two');
  assertInstalled(runInstaller(['--root', root], { bundle }));
  const second = releaseOf(root, 'current')!;
  const back = runInstaller(['--root', root, '--rollback'], { bundle });
  assertInstalled(back);
  assert.equal(releaseOf(root, 'current'), first);
  assert.equal(releaseOf(root, 'previous'), second);
  assert.deepEqual(back.wouldRun, ['systemctl daemon-reload', 'systemctl enable ser-edge', 'systemctl restart ser-edge']);
  const version = spawnSync(join(root, 'opt/ser-edge/bin/ser-edge'), ['--version'], { encoding: 'utf8' });
  assert.equal(version.stdout.trim(), packageVersion, 'the wrapper follows current');
});

test('--rollback with no release before says so and changes nothing', () => {
  const { bundle, root } = freshInstall();
  const tree = listTree(root);
  const run = runInstaller(['--root', root, '--rollback'], { bundle });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /there is no previous release in \/opt\/ser-edge to go back to/);
  assert.deepEqual(listTree(root), tree);
});

test('--uninstall removes the service and the program, and keeps the config, the credentials, the state and the account', () => {
  const { root } = freshInstall();
  writeFileSync(join(root, 'var/lib/ser-edge/marker'), 'outbox would be here\n');
  const kept = { etc: listTree(join(root, 'etc/ser-edge')), state: listTree(join(root, 'var/lib/ser-edge')) };
  // Run from the installed copy, as docs/installing.md says: it deletes itself on the way.
  const run = runInstaller(['--root', root, '--uninstall'], { script: join(root, 'opt/ser-edge/current/install-gateway.sh') });
  assertInstalled(run);
  assert.deepEqual(run.wouldRun, ['systemctl disable --now ser-edge', 'systemctl daemon-reload']);
  assert.ok(!existsSync(join(root, 'opt/ser-edge')));
  assert.ok(!existsSync(join(root, 'etc/systemd/system/ser-edge.service')));
  assert.ok(!existsSync(join(root, 'usr/local/bin/ser-edge')));
  assert.deepEqual(listTree(join(root, 'etc/ser-edge')), kept.etc);
  assert.deepEqual(listTree(join(root, 'var/lib/ser-edge')), kept.state);
  assert.ok(existsSync(join(root, 'etc/sysusers.d/ser-edge.conf')), 'the account stays: the state is its');
  assert.match(run.stdout, /--uninstall --purge removes them/);
});

test('--uninstall --purge also removes the config, the state and the account', () => {
  const { bundle, root } = freshInstall();
  writeFileSync(join(root, 'var/lib/ser-edge/marker'), 'outbox would be here\n');
  const run = runInstaller(['--root', root, '--uninstall', '--purge'], { bundle });
  assertInstalled(run);
  assert.deepEqual(run.wouldRun, ['systemctl disable --now ser-edge', 'systemctl daemon-reload', 'userdel ser-edge']);
  for (const path of ['opt/ser-edge', 'etc/ser-edge', 'var/lib/ser-edge', 'etc/sysusers.d/ser-edge.conf', 'etc/systemd/system/ser-edge.service', 'usr/local/bin/ser-edge']) {
    assert.ok(!existsSync(join(root, path)), `${path} is gone`);
  }
});

test('a reinstall after --uninstall carries on with the kept config and state', () => {
  const { bundle, root } = freshInstall();
  writeFileSync(join(root, 'var/lib/ser-edge/marker'), 'kept\n');
  const config = readFileSync(join(root, 'etc/ser-edge/config.json'));
  assertInstalled(runInstaller(['--root', root, '--uninstall'], { bundle }));
  assertInstalled(runInstaller(['--root', root], { bundle }));
  assert.ok(readFileSync(join(root, 'etc/ser-edge/config.json')).equals(config));
  assert.equal(readFileSync(join(root, 'var/lib/ser-edge/marker'), 'utf8'), 'kept\n');
  assert.ok(existsSync(join(root, 'opt/ser-edge/bin/ser-edge')));
});

test('--no-start installs without enabling or starting the service', () => {
  const { run } = freshInstall(['--no-start']);
  assert.deepEqual(run.wouldRun.filter((c) => c.startsWith('systemctl')), ['systemctl daemon-reload']);
  assert.match(run.stdout, /not started \(--no-start\); when the config is ready: sudo systemctl enable --now ser-edge/);
});

test('a ser-edge already on the PATH (an npm install) is left alone, with a warning', () => {
  const bundle = bundleCopy();
  const work = tempDir('ser-edge-install-path-');
  const root = join(work, 'root');
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  writeFileSync(join(root, 'usr/local/bin/ser-edge'), '#!/bin/sh\n# npm\n', { mode: 0o755 });
  const run = runInstaller(['--root', root, '--profile', 'generic-linux', '--site', 's', '--gateway', 'g', '--broker', 'mqtt://10.0.0.5:1883'], { bundle });
  assertInstalled(run);
  assert.equal(readFileSync(join(root, 'usr/local/bin/ser-edge'), 'utf8'), '#!/bin/sh\n# npm\n');
  assert.match(run.stderr, /\/usr\/local\/bin\/ser-edge is another ser-edge \(an npm install\?\), left as it is/);
});

test('the installer finds the bundle beside itself, or at dist/bundle when it runs from a checkout', () => {
  const bundle = bundleCopy();
  const checkout = tempDir('ser-edge-checkout-');
  mkdirSync(join(checkout, 'scripts'));
  cpSync(installerSource, join(checkout, 'scripts/install-gateway.sh'));
  writeFileSync(join(checkout, 'package.json'), '{"name":"ser-edge"}\n');
  const args = (root: string) => ['--root', root, '--profile', 'generic-linux', '--site', 's', '--gateway', 'g', '--broker', 'mqtt://10.0.0.5:1883'];
  const missing = runInstaller(args(join(checkout, 'root-a')), { script: join(checkout, 'scripts/install-gateway.sh') });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no bundle in .*\/dist\/bundle/);
  assert.match(missing.stderr, /npm ci && npm run bundle/);
  cpSync(bundle, join(checkout, 'dist/bundle'), { recursive: true });
  assertInstalled(runInstaller(args(join(checkout, 'root-b')), { script: join(checkout, 'scripts/install-gateway.sh') }));
  assert.ok(existsSync(join(checkout, 'root-b/opt/ser-edge/current/ser-edge.mjs')));
  assertInstalled(runInstaller([...args(join(checkout, 'root-c')), '--bundle', bundle], { script: installerSource }));
});

test('Node.js older than 20 is refused with the commands that install a newer one', () => {
  const bundle = bundleCopy();
  const work = tempDir('ser-edge-install-old-node-');
  const oldNode = join(work, 'node');
  writeFileSync(oldNode, '#!/bin/sh\necho 18.19.0\n', { mode: 0o755 });
  const root = join(work, 'root');
  const run = runInstaller(['--root', root, '--node', oldNode, '--profile', 'generic-linux', '--site', 's', '--gateway', 'g', '--broker', 'mqtt://10.0.0.5:1883'], { bundle });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /Node\.js 20 or newer is needed \(.*\/node is version 18\.19\.0\)/);
  assert.match(run.stderr, /curl -fsSL https:\/\/deb\.nodesource\.com\/setup_22\.x -o nodesource_setup\.sh/);
  assert.match(run.stderr, /sudo apt-get install -y nodejs/);
  assert.deepEqual(readdirSync(root), [], 'nothing was written');
});

test('wrong options and inputs exit 2 with a message naming the option, and write nothing', () => {
  const bundle = bundleCopy();
  const work = tempDir('ser-edge-install-errors-');
  const files = writeCredentialFiles(work);
  const notJson = join(work, 'desk.json');
  writeFileSync(notJson, '{ "extends": ');
  const empty = join(work, 'empty');
  writeFileSync(empty, '');
  const base = ['--profile', 'raspberry-pi-4', '--site', 'lyon-2', '--gateway', 'g', '--broker', 'mqtts://mqtt.example:8883'];
  const cases: [string, string[], RegExp][] = [
    ['a first install without its options', [], /a first install needs --profile --site --gateway --broker/],
    ['an unknown profile', ['--profile', 'raspbery-pi-4', '--site', 's', '--gateway', 'g', '--broker', 'mqtt://h:1883'], /--profile raspbery-pi-4: no such profile in the bundle\n {2}use one of: .*raspberry-pi-4/],
    ['a profile file that is not JSON', ['--profile', notJson, '--site', 's', '--gateway', 'g', '--broker', 'mqtt://h:1883'], /--profile .*desk\.json: not valid JSON/],
    ['a site that is no topic level', [...base, '--site', 'lyon/2'], /--site lyon\/2: use letters, digits/],
    ['a gateway with a wildcard', [...base, '--gateway', 'desk+'], /--gateway desk\+: use letters, digits/],
    ['a broker without a scheme', [...base, '--broker', '10.0.0.5:1883'], /--broker 10\.0\.0\.5:1883: add the scheme: mqtts:\/\/10\.0\.0\.5:1883 \(TLS\) or mqtt:\/\/10\.0\.0\.5:1883/],
    ['a broker with another scheme', [...base, '--broker', 'http://h'], /--broker http:\/\/h: use mqtts:\/\/host:8883/],
    ['a certificate without its key', [...base, '--cert', files.cert], /--cert needs --key/],
    ['a key without its certificate', [...base, '--key', files.key], /--key needs --cert/],
    ['TLS files for a plain broker', [...base, '--broker', 'mqtt://h:1883', '--ca', files.ca], /--ca\/--cert\/--key are for a TLS broker, but the broker is mqtt:\/\//],
    ['a file that cannot be read', [...base, '--ca', join(work, 'nope.pem')], /--ca .*nope\.pem: cannot read this file/],
    ['an empty credential file', [...base, '--password-file', empty], /--password-file .*empty: the file is empty/],
    ['an unknown option', [...base, '--sites', 'x'], /unknown option '--sites'/],
    ['an option with =', ['--profile=raspberry-pi-4'], /write '--profile raspberry-pi-4' \(a space, not '='\)/],
    ['an option without its value', [...base, '--gateway'], /--gateway needs a value/],
    ['--purge alone', ['--purge'], /--purge goes with --uninstall/],
    ['--uninstall with install options', ['--uninstall', '--site', 's'], /--uninstall takes no install options \(got: --site\)/],
    ['a folder that is not a bundle', [...base, '--bundle', work], /is not a complete ser-edge bundle: ser-edge\.mjs is missing/],
  ];
  for (const [what, args, message] of cases) {
    const root = join(work, `root-${what.replaceAll(/\W+/g, '-')}`);
    const run = runInstaller(['--root', root, ...args], { bundle });
    assert.equal(run.status, 2, `${what}: exit 2\n${run.stderr}`);
    assert.match(run.stderr, message, what);
    assert.ok(!existsSync(root) || readdirSync(root).length === 0, `${what}: nothing written`);
  }
});

test('--help describes every option and exits 0', () => {
  const run = runInstaller(['--help'], { script: installerSource });
  assert.equal(run.status, 0);
  // The options the parser knows: the patterns of its case statements.
  const script = readFileSync(installerSource, 'utf8');
  const parsed = new Set([...script.matchAll(/--[a-z][a-z-]+(?= \||\))/g)].map((m) => m[0]));
  assert.ok(parsed.size >= 18, `found the parser's options: ${[...parsed].join(' ')}`);
  for (const option of parsed) assert.ok(run.stdout.includes(option), `--help mentions ${option}`);
});

test('the script is valid bash, and shellcheck-clean where shellcheck is installed', (t) => {
  const syntax = spawnSync('bash', ['-n', installerSource], { encoding: 'utf8' });
  assert.equal(syntax.status, 0, syntax.stderr);
  if (spawnSync('shellcheck', ['--version']).status !== 0) {
    t.skip('shellcheck is not installed (apt-get install shellcheck to run this check)');
    return;
  }
  const lint = spawnSync('shellcheck', [installerSource], { encoding: 'utf8' });
  assert.equal(lint.status, 0, lint.stdout);
});

/**
 * Without --root, as root: in a private mount namespace whose /etc is an overlay and whose
 * /opt, /var/lib, /usr/local/bin and /run are empty, so the machine itself is not touched.
 * systemctl and apt-get are stand-ins that log their calls (there is no systemd here);
 * the account, chown and the permissions are real.
 */
function realInstallSandbox(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (a real install creates an account and changes owners)';
  const probe = tempDir('ser-edge-ns-probe-');
  mkdirSync(join(probe, 'lower'));
  mkdirSync(join(probe, 'upper'));
  mkdirSync(join(probe, 'work'));
  mkdirSync(join(probe, 'merged'));
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t overlay overlay -o lowerdir=${probe}/lower,upperdir=${probe}/upper,workdir=${probe}/work ${probe}/merged && mount -t tmpfs none ${probe}/merged`]);
  return r.status === 0 ? false : 'needs unshare -m with overlay and tmpfs mounts (a private mount namespace)';
}
const NO_SANDBOX = realInstallSandbox();

function inSandbox(script: string, env: Record<string, string> = {}): { status: number | null; out: string; calls: string[] } {
  const dir = tempDir('ser-edge-ns-');
  for (const d of ['upper', 'work', 'bin']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'bin/systemctl'), `#!/bin/sh\necho "systemctl $*" >> ${dir}/calls\ncase "$1" in is-active) exit \${FAKE_ACTIVE:-0} ;; show) echo 0 ;; esac\nexit 0\n`, { mode: 0o755 });
  writeFileSync(join(dir, 'bin/journalctl'), `#!/bin/sh\necho "journalctl $*" >> ${dir}/calls\necho "invalid config: /etc/ser-edge/config.json: site: (the daemon's last line)"\n`, { mode: 0o755 });
  writeFileSync(join(dir, 'bin/apt-get'), `#!/bin/sh\necho "apt-get $*" >> ${dir}/calls\nexit 0\n`, { mode: 0o755 });
  const setup = [
    'set -eu',
    `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/upper,workdir=${dir}/work /etc`,
    'for d in /opt /var/lib /usr/local/bin /run; do mount -t tmpfs none "$d"; done',
    // Refuse to go on unless every place the installer writes is a throwaway mount.
    'for d in /etc /opt /var/lib /usr/local/bin /run; do mountpoint -q "$d"; done',
    'mkdir -p /run/systemd/system',
    `export PATH=${dir}/bin:${join(process.execPath, '..')}:$PATH`,
    'set +e',
  ].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', `${setup}\n${script}`], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n') : [];
  return { status: r.status, out: r.stdout + r.stderr, calls };
}

test('a real install creates the account, gives the key files to it alone, starts the unit, and --purge takes it all away', { skip: NO_SANDBOX }, () => {
  const bundle = bundleCopy();
  const work = tempDir('ser-edge-real-install-');
  const files = writeCredentialFiles(work);
  const q = (s: string) => `'${s}'`;
  const result = inSandbox(`
bash ${q(join(bundle, 'install-gateway.sh'))} --profile raspberry-pi-4 --site lyon-2 --gateway desk-row-a --broker mqtts://mqtt.example:8883 \\
  --ca ${q(files.ca)} --cert ${q(files.cert)} --key ${q(files.key)} --username-file ${q(files.username)} --password-file ${q(files.password)}
echo "installed=$?"
for f in /etc/ser-edge /etc/ser-edge/config.json /etc/ser-edge/gateway.key /etc/ser-edge/mqtt-password /var/lib/ser-edge; do echo "owner $f $(stat -c '%U:%G %a' "$f")"; done
echo "groups=$(id -nG ser-edge)"
su -s /bin/sh ser-edge -c 'cat /etc/ser-edge/gateway.key >/dev/null' && echo "service-reads-key=yes"
su -s /bin/sh nobody -c 'cat /etc/ser-edge/gateway.key >/dev/null' 2>/dev/null || echo "nobody-reads-key=no"
echo "service-runs=$(su -s /bin/sh ser-edge -c '/opt/ser-edge/bin/ser-edge --version')"
bash /opt/ser-edge/current/install-gateway.sh --uninstall --purge
echo "purged=$?"
getent passwd ser-edge >/dev/null || echo "account-gone=yes"
`);
  const out = result.out;
  assert.equal(result.status, 0, out);
  assert.match(out, /^installed=0$/m, out);
  assert.match(out, /^owner \/etc\/ser-edge root:ser-edge 750$/m);
  assert.match(out, /^owner \/etc\/ser-edge\/config\.json root:ser-edge 640$/m);
  assert.match(out, /^owner \/etc\/ser-edge\/gateway\.key root:ser-edge 640$/m);
  assert.match(out, /^owner \/etc\/ser-edge\/mqtt-password root:ser-edge 640$/m);
  assert.match(out, /^owner \/var\/lib\/ser-edge ser-edge:ser-edge 750$/m);
  assert.match(out, /^groups=ser-edge audio$/m);
  assert.match(out, /^service-reads-key=yes$/m);
  assert.match(out, /^nobody-reads-key=no$/m);
  assert.match(out, new RegExp(`^service-runs=${packageVersion.replaceAll('.', '\\.')}$`, 'm'), 'the service account can run the wrapper, the release and its Node.js');
  assert.match(out, /^purged=0$/m);
  assert.match(out, /^account-gone=yes$/m);
  assert.deepEqual(
    result.calls.filter((c) => !c.startsWith('apt-get')),
    [
      'systemctl daemon-reload',
      'systemctl enable ser-edge',
      'systemctl restart ser-edge',
      'systemctl is-active --quiet ser-edge',
      'systemctl show -p NRestarts --value ser-edge',
      'systemctl disable --now ser-edge',
      'systemctl daemon-reload',
    ],
  );
});

test('a real install whose service does not stay up fails, showing the service\'s last log lines', { skip: NO_SANDBOX }, () => {
  const bundle = bundleCopy();
  const result = inSandbox(
    `bash '${join(bundle, 'install-gateway.sh')}' --profile generic-linux --site s --gateway g --broker mqtt://10.0.0.5:1883; echo "installed=$?"`,
    { FAKE_ACTIVE: '3' },
  );
  assert.match(result.out, /^installed=1$/m, result.out);
  assert.match(result.out, /the daemon's last line/);
  assert.match(result.out, /ser-edge did not stay up \(its last log lines are above\): fix what they name in \/etc\/ser-edge\/config\.json, then sudo systemctl restart ser-edge/);
  assert.ok(result.calls.includes('journalctl -u ser-edge -n 20 --no-pager'));
});
