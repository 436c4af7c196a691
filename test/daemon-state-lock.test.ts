import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { daemonTestSite, labSiteConfig, spawnDaemon } from './helpers/daemon-process.js';

const { site, skip } = daemonTestSite('ser-edge-state-lock-');

const config = (gateway: string, overrides: Record<string, unknown> = {}) =>
  labSiteConfig(site, gateway, [{ type: 'file', path: site.voiceWav, realtime: false, loop: true, channels: [{ id: 'desk-1', role: 'customer' }] }], overrides);
const running = (l: Record<string, unknown>) => l.msg === 'ser-edge running';

test('a second daemon on the same state directory exits 2 naming the directory and the process that holds it', { skip }, async () => {
  const first = spawnDaemon(join(site.dir, 'gw-twice-1.json'), config('gw-twice'));
  try {
    await first.waitForLog(running, 20_000, 'the first daemon running');
    // Another gateway name, the same state directory: what a copied config does.
    const second = spawnDaemon(join(site.dir, 'gw-twice-2.json'), { ...config('gw-other'), stateDir: join(site.dir, 'gw-twice') });
    const { code } = await second.exited;
    assert.equal(code, 2, second.stderr());
    assert.match(second.stderr(), new RegExp(`state directory ${join(site.dir, 'gw-twice')} is in use by another ser-edge \\(pid ${first.child.pid} `));
    assert.equal(first.child.exitCode, null, 'the first daemon runs on');
  } finally {
    first.child.kill('SIGTERM');
    await first.exited;
  }
});

test('a lock left by a daemon killed with SIGKILL does not block the next start', { skip }, async () => {
  const file = join(site.dir, 'gw-killed.json');
  const first = spawnDaemon(file, config('gw-killed'));
  await first.waitForLog(running, 20_000, 'the first daemon running');
  first.child.kill('SIGKILL');
  await first.exited;
  const second = spawnDaemon(file);
  try {
    await second.waitForLog(running, 20_000, 'the restarted daemon running');
  } finally {
    second.child.kill('SIGTERM');
    assert.equal((await second.exited).code, 0);
  }
});

test('a lock whose pid now belongs to another process, or to none, is stale', { skip }, async () => {
  const stateDir = join(site.dir, 'gw-stale');
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  for (const holder of [
    { pid: Number(gone), startTicks: 1, host: (await import('node:os')).hostname(), since: '2026-01-01T00:00:00Z' },
    // Our own pid, but a start time it never had: a pid reused after a reboot.
    { pid: process.pid, startTicks: 1, host: (await import('node:os')).hostname(), since: '2026-01-01T00:00:00Z' },
  ]) {
    spawnSync('mkdir', ['-p', stateDir]);
    writeFileSync(join(stateDir, 'ser-edge.lock'), JSON.stringify(holder));
    const daemon = spawnDaemon(join(site.dir, 'gw-stale.json'), config('gw-stale'));
    try {
      await daemon.waitForLog(running, 20_000, `a start over a stale lock of pid ${holder.pid}`);
    } finally {
      daemon.child.kill('SIGTERM');
      assert.equal((await daemon.exited).code, 0);
    }
  }
});

test('a state directory that cannot be created stops start-up at once with exit 2 and what to do', { skip }, async () => {
  const notADir = join(site.dir, 'a-file');
  writeFileSync(notADir, 'not a directory');
  const daemon = spawnDaemon(join(site.dir, 'gw-unwritable.json'), { ...config('gw-unwritable'), stateDir: join(notADir, 'state') });
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  assert.match(daemon.stderr(), /state directory .*a-file\/state cannot be written \(ENOTDIR\): create it and give the service user write access/);
});

test('an urgency log line has one level key, the severity, and the urgency under its own name', { skip }, async () => {
  const daemon = spawnDaemon(join(site.dir, 'gw-log.json'), config('gw-log'));
  try {
    const line = await daemon.waitForLog((l) => l.msg === 'urgency raise', 20_000, 'an urgency raise');
    assert.equal(line.level, 30);
    assert.ok(['medium', 'high'].includes(line.urgency as string));
    const raw = daemon.stderr().split('\n').find((l) => l.includes('"msg":"urgency raise"'))!;
    assert.equal(raw.match(/"level":/g)?.length, 1, raw);
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  }
});
