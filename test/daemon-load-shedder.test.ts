import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoadShedder } from '../src/daemon/load-shedder.js';

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const served = (shedder: LoadShedder, channels: string[]) => channels.filter((id) => shedder.serves(id));

/**
 * Drives a shedder as the runners would: every 100 ms each source reports one block, of
 * which the CPU analyses `capacity` channels per second of wall time in all, while the
 * lag follows from serving more (it grows) or fewer (it shrinks).
 */
function simulate(shedder: LoadShedder, sources: { key: object; channels: string[] }[], capacity: number, seconds: number, start = { ms: 0, lag: 0 }) {
  const block = 0.1;
  let { ms, lag } = start;
  for (let step = 0; step < seconds / block; step++) {
    ms += block * 1000;
    const wanted = shedder.servedChannels;
    // Serving more than the CPU carries, the sources fall behind by the share of each second it
    // cannot analyse; serving fewer, the backlog drains at the share left over.
    lag = Math.max(0, lag + block * (1 - capacity / wanted));
    const analysed = Math.min(wanted, capacity);
    for (const { key, channels } of sources) {
      const share = served(shedder, channels).length / Math.max(1, wanted);
      shedder.blockArrived(key, lag, ms);
      shedder.blockDone(key, analysed * share * block, ms);
    }
  }
  return { ms, lag };
}

test('while the sources keep up, every live channel is served', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const a = { key: {}, channels: ids('a', 100) };
  shedder.enlist(a.key, a.channels);
  simulate(shedder, [a], 1000, 10);
  assert.equal(shedder.servedChannels, 100);
  assert.equal(served(shedder, a.channels).length, 100);
});

test('when the lag passes half of maxLagSeconds and grows, the served channels are cut below what the CPU analysed in real time', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const a = { key: {}, channels: ids('a', 1000) };
  shedder.enlist(a.key, a.channels);
  // 1000 channels on a CPU that carries 250: 0.75 s more lag each second, past 2.5 s after some 3.4 s,
  // then halved twice (a cut is by half at most) and cut to 90% of the 250 that kept up.
  const { lag } = simulate(shedder, [a], 250, 7);
  assert.ok(shedder.servedChannels <= 0.9 * 250 && shedder.servedChannels >= 200, `served ${shedder.servedChannels}`);
  assert.ok(lag < 5, `the cut came before the lag reached maxLagSeconds (lag ${lag.toFixed(2)} s)`);
});

test('once the backlog has drained, the served channels grow back until they meet the capacity, and the lag stays within maxLagSeconds', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const a = { key: {}, channels: ids('a', 1000) };
  shedder.enlist(a.key, a.channels);
  let at = simulate(shedder, [a], 250, 5);
  let maxLag = 0;
  let minServed = Infinity;
  let maxServed = 0;
  for (let second = 0; second < 120; second++) {
    at = simulate(shedder, [a], 250, 1, at);
    maxLag = Math.max(maxLag, at.lag);
    if (second > 30) {
      minServed = Math.min(minServed, shedder.servedChannels);
      maxServed = Math.max(maxServed, shedder.servedChannels);
    }
  }
  assert.ok(maxLag < 5, `lag stayed under 5 s (at most ${maxLag.toFixed(2)} s)`);
  assert.ok(minServed >= 200 && maxServed <= 320, `served between ${minServed} and ${maxServed} of a capacity of 250`);
});

test('a stall (the CPU taken away for seconds) halves the served channels at most, and they grow back once caught up', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const a = { key: {}, channels: ids('a', 100) };
  shedder.enlist(a.key, a.channels);
  let at = simulate(shedder, [a], 1000, 3);
  // A block that took 6 s; the runner then skips to the present.
  shedder.blockArrived(a.key, 0, at.ms);
  shedder.blockDone(a.key, 0, at.ms + 6000);
  at = simulate(shedder, [a], 1000, 1, { ms: at.ms + 6000, lag: 0 });
  assert.ok(shedder.servedChannels >= 50 && shedder.servedChannels < 100, `served ${shedder.servedChannels} right after the stall`);
  simulate(shedder, [a], 1000, 20, at);
  assert.equal(shedder.servedChannels, 100);
});

test('a source stuck in a long block counts as lagging while it works, before it reports the block done', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const busy = { key: {}, channels: ids('busy', 100) };
  const idle = { key: {}, channels: ids('idle', 100) };
  shedder.enlist(busy.key, busy.channels);
  shedder.enlist(idle.key, idle.channels);
  // Both keep up for 3 s; then the busy source starts a block it needs 8 s for, while the idle one goes on.
  const at = simulate(shedder, [busy, idle], 1000, 3);
  shedder.blockArrived(busy.key, 0, at.ms);
  for (let ms = at.ms + 100; ms <= at.ms + 8000; ms += 100) {
    shedder.blockArrived(idle.key, 0, ms);
    shedder.blockDone(idle.key, 0.1 * 10, ms);
  }
  assert.ok(shedder.servedChannels < 200, `the shedder cut while the busy source was still on its block (served ${shedder.servedChannels})`);
});

test('the served run moves on every rotateSeconds, so every channel of every source is served in turn', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5, rotateSeconds: 10 });
  const a = { key: {}, channels: ids('a', 300) };
  const b = { key: {}, channels: ids('b', 300) };
  shedder.enlist(a.key, a.channels);
  shedder.enlist(b.key, b.channels);
  let at = simulate(shedder, [a, b], 150, 5);
  const everServed = new Set<string>();
  for (let second = 0; second < 120; second++) {
    at = simulate(shedder, [a, b], 150, 1, at);
    for (const id of [...a.channels, ...b.channels]) if (shedder.serves(id)) everServed.add(id);
  }
  assert.equal(everServed.size, 600, `every channel was served at some point (${everServed.size} of 600)`);
});

test('the channels served at one time are a contiguous run that stays put between rotations, so their windows can form', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5, rotateSeconds: 30 });
  const a = { key: {}, channels: ids('a', 400) };
  shedder.enlist(a.key, a.channels);
  let at = simulate(shedder, [a], 100, 8);
  at = simulate(shedder, [a], 100, 1, at);
  const first = served(shedder, a.channels);
  at = simulate(shedder, [a], 100, 3, at);
  const later = served(shedder, a.channels);
  const kept = first.filter((id) => later.includes(id)).length;
  assert.ok(kept >= Math.min(first.length, later.length) * 0.8, `most served channels stay served over 3 s (${kept} of ${first.length})`);
  const positions = later.map((id) => Number(id.slice(1)));
  const gaps = positions.slice(1).filter((p, i) => p !== positions[i]! + 1).length;
  assert.ok(gaps <= 1, `one run (wrapping at most once), got ${gaps + 1} runs`);
});

test('while load is shed, every source has its share of the served channels at once', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const sources = Array.from({ length: 4 }, (_, s) => ({ key: {}, channels: ids(`s${s}-`, 100) }));
  for (const { key, channels } of sources) shedder.enlist(key, channels);
  simulate(shedder, sources, 100, 8);
  assert.ok(shedder.servedChannels < 100, `served ${shedder.servedChannels}`);
  const shares = sources.map(({ channels }) => served(shedder, channels).length);
  assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `served per source: ${shares.join(', ')}`);
});

test('a withdrawn source leaves the rota and a source enlisted while all are served is served at once', () => {
  const shedder = new LoadShedder({ maxLagSeconds: 5 });
  const a = { key: {}, channels: ids('a', 10) };
  const b = { key: {}, channels: ids('b', 5) };
  shedder.enlist(a.key, a.channels);
  shedder.enlist(b.key, b.channels);
  assert.equal(shedder.liveChannels, 15);
  assert.equal(shedder.servedChannels, 15);
  shedder.withdraw(b.key);
  assert.equal(shedder.liveChannels, 10);
  assert.equal(shedder.serves('a3'), true);
  assert.equal(shedder.serves('replay-channel'), true, 'channels outside the rota (replay sources) are always served');
});
