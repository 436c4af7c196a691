import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLoopTurns } from '../src/daemon/event-loop-turns.js';

/** Burns the CPU for `ms`, as analysing a channel's block does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** A source that always has work: `units` pieces of 1 ms, taking turns as the runner does. */
async function worker(turns: EventLoopTurns, units: number, log: string[], name: string): Promise<void> {
  for (let i = 0; i < units; i++) {
    if (turns.due) await turns.next();
    busy(1);
    log.push(name);
  }
}

test('busy sources take turns of about turnMs each, and none waits for another to finish', async () => {
  const turns = new EventLoopTurns({ turnMs: 5 });
  const log: string[] = [];
  await Promise.all([worker(turns, 60, log, 'a'), worker(turns, 60, log, 'b'), worker(turns, 60, log, 'c')]);
  // Runs of one source between switches: a turn holds some 5 units of 1 ms.
  const runs: number[] = [];
  for (let i = 0, run = 1; i < log.length; i++, run++) {
    if (log[i + 1] !== log[i]) {
      runs.push(run);
      run = 0;
    }
  }
  assert.ok(runs.length >= 3 * (60 / 10), `the sources alternated (${runs.length} runs)`);
  assert.ok(Math.max(...runs) <= 12, `no source kept the thread much past its turn (longest run ${Math.max(...runs)} units)`);
  const firstThird = log.slice(0, 60);
  assert.ok(['a', 'b', 'c'].every((n) => firstThird.includes(n)), 'every source had a turn within the first third of the work');
});

test('between turns the event loop goes round: a timer set by a busy source fires long before the work is done', async () => {
  const turns = new EventLoopTurns({ turnMs: 5 });
  const log: string[] = [];
  let firedAfter = -1;
  setTimeout(() => (firedAfter = log.length), 0);
  await Promise.all([worker(turns, 200, log, 'a'), worker(turns, 200, log, 'b')]);
  assert.ok(firedAfter >= 0 && firedAfter < 40, `the timer fired after ${firedAfter} of 400 units of work`);
});

test('a source whose turn has not run out goes on without waiting', async () => {
  const turns = new EventLoopTurns({ turnMs: 1000 });
  await turns.next();
  assert.equal(turns.due, false);
  assert.equal(turns.queued, 0);
});

test('with many sources waiting, turns shrink so that a round of all of them stays about roundMs', async () => {
  const turns = new EventLoopTurns({ turnMs: 10, roundMs: 40 });
  const log: string[] = [];
  await Promise.all(Array.from({ length: 20 }, (_, i) => worker(turns, 20, log, `w${i}`)));
  const runs: number[] = [];
  for (let i = 0, run = 1; i < log.length; i++, run++) {
    if (log[i + 1] !== log[i]) {
      runs.push(run);
      run = 0;
    }
  }
  // 40 ms over 20 waiting sources: turns of 2 ms, so runs of 2 or 3 units of 1 ms, not 10.
  const longest = Math.max(...runs.slice(0, -20));
  assert.ok(longest <= 4, `longest run ${longest} units while 20 sources waited`);
});
