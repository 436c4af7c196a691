import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DroppedWindowLog } from '../src/telemetry/dropped-window-log.js';
import { PipelineMetrics } from '../src/telemetry/pipeline-metrics.js';

function setUp(channels: number) {
  const metrics = new PipelineMetrics();
  for (let i = 0; i < channels; i++) metrics.channels.set(`desk-${i}`, { role: 'customer', state: 'running', source: 'mic:hw:1,0', failures: 0, droppedWindows: 0 });
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const log = new DroppedWindowLog({ metrics, logger, served: () => ({ served: 2, live: channels }) });
  const drop = (id: string, n: number) => {
    metrics.channels.get(id)!.droppedWindows += n;
    metrics.droppedWindows += n;
  };
  return { metrics, lines, log, drop };
}

test('the first drops are logged at once, as a warning naming each channel and its count', () => {
  const { lines, log, drop } = setUp(5);
  log.start();
  log.stop();
  log.check(1000);
  assert.equal(lines.length, 0, 'nothing dropped, nothing logged');
  drop('desk-1', 3);
  drop('desk-4', 7);
  log.check(2000);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 40);
  assert.deepEqual(lines[0]!.byChannel, { 'desk-4': 7, 'desk-1': 3 });
  assert.equal(lines[0]!.droppedWindows, 10);
  assert.match(String(lines[0]!.msg), /^windows dropped: 10 on 2 channels \(desk-4 7, desk-1 3\); 2 of 5 live channels are analysed at a time/);
});

test('later drops wait for the 30 s interval, and the next line counts only what was dropped since', () => {
  const { lines, log, drop } = setUp(3);
  log.start();
  log.stop();
  drop('desk-0', 1);
  log.check(0);
  drop('desk-0', 2);
  drop('desk-2', 4);
  log.check(10_000);
  log.check(29_000);
  assert.equal(lines.length, 1, 'one line within 30 s');
  log.check(30_000);
  assert.equal(lines.length, 2);
  assert.deepEqual(lines[1]!.byChannel, { 'desk-2': 4, 'desk-0': 2 });
  assert.equal(lines[1]!.sinceSeconds, 30);
  log.check(90_000);
  assert.equal(lines.length, 2, 'no new drops, no line');
});

test('with thousands of channels the line names the 20 that dropped most and sums the rest', () => {
  const { lines, log, drop } = setUp(2000);
  log.start();
  log.stop();
  for (let i = 0; i < 2000; i++) drop(`desk-${i}`, i < 20 ? 100 : 1);
  log.check(0);
  assert.equal(Object.keys(lines[0]!.byChannel as object).length, 20);
  assert.deepEqual(lines[0]!.otherChannels, { channels: 1980, droppedWindows: 1980 });
  assert.match(String(lines[0]!.msg), /, 1980 other channels 1980 in all\)/);
});
