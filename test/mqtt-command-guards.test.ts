import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandRateLimiter } from '../src/mqtt/command-rate-limit.js';
import type { Logger } from '../src/mqtt/logger.js';
import { ReplyTopicPolicy, replyTopicFilterProblem, topicMatchesFilter } from '../src/mqtt/reply-topics.js';
import { gatewayTopics } from '../src/mqtt/topics.js';
import { WarningThrottle } from '../src/mqtt/warning-throttle.js';

function clock() {
  let ms = 0;
  return { now: () => ms, advance: (by: number) => void (ms += by) };
}

test('a command bucket lets a burst through at once, then one command per 60/ratePerMinute seconds', () => {
  const time = clock();
  const limiter = new CommandRateLimiter({ rate: { ratePerMinute: 6, burst: 3 }, now: time.now });
  assert.deepEqual([1, 2, 3].map(() => limiter.take('desk-1').ok), [true, true, true]);
  const refused = limiter.take('desk-1');
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.retryAfterMs, 10_000);
  time.advance(9_999);
  assert.equal(limiter.take('desk-1').ok, false, 'not before the next token');
  time.advance(1);
  assert.equal(limiter.take('desk-1').ok, true);
  assert.equal(limiter.take('desk-1').ok, false);
});

test('each key has its own bucket, and a quiet spell refills it only up to the burst', () => {
  const time = clock();
  const limiter = new CommandRateLimiter({ rate: { ratePerMinute: 60, burst: 2 }, now: time.now });
  limiter.take('a');
  limiter.take('a');
  assert.equal(limiter.take('a').ok, false);
  assert.equal(limiter.take('b').ok, true, 'a flood on one channel leaves the next alone');
  time.advance(3_600_000);
  assert.deepEqual([1, 2, 3].map(() => limiter.take('a').ok), [true, true, false]);
});

test('a sustained flood gets through at the rate and no faster', () => {
  const time = clock();
  const limiter = new CommandRateLimiter({ rate: { ratePerMinute: 6, burst: 6 }, now: time.now });
  let taken = 0;
  // A start every 100 ms for 2 minutes (the last at 119.9 s).
  for (let i = 0; i < 1200; i++, time.advance(100)) if (limiter.take('desk-1').ok) taken++;
  assert.equal(taken, 6 + 11, 'the burst, then one every 10 s');
});

test('a rate of zero or a burst below one is refused when the limiter is built', () => {
  assert.throws(() => new CommandRateLimiter({ rate: { ratePerMinute: 0, burst: 1 } }), RangeError);
  assert.throws(() => new CommandRateLimiter({ rate: { ratePerMinute: 1, burst: 0 } }), RangeError);
});

function recordingLogger() {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const logger: Logger = { debug() {}, info() {}, error() {}, warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
  return { logger, warnings };
}

test('a throttled warning is logged at once, then held back for the interval and summed up in one line when it ends', async () => {
  const { logger, warnings } = recordingLogger();
  const throttle = new WarningThrottle({ logger, intervalMs: 150 });
  for (let i = 0; i < 5; i++) throttle.warn('call:desk-1', { channel: 'desk-1', n: i }, 'command refused');
  assert.deepEqual(warnings.map((w) => w.obj.n), [0]);
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(warnings.length, 2);
  assert.equal(warnings[1]!.obj.suppressed, 4);
  assert.equal(warnings[1]!.obj.n, 4, 'the summary carries the latest fields');
  assert.match(warnings[1]!.msg, /command refused \(and 4 more like it/);
  throttle.stop();
});

test('throttled warnings are per key, and a key that went quiet logs its next warning at once', async () => {
  const { logger, warnings } = recordingLogger();
  const throttle = new WarningThrottle({ logger, intervalMs: 100 });
  throttle.warn('a', { key: 'a' }, 'refused');
  throttle.warn('b', { key: 'b' }, 'refused');
  assert.equal(warnings.length, 2);
  await new Promise((r) => setTimeout(r, 200));
  throttle.warn('a', { key: 'a' }, 'refused');
  assert.equal(warnings.length, 3);
  assert.equal(warnings[2]!.obj.suppressed, undefined);
  throttle.stop();
});

test('stopping the throttle writes out what it still held back', () => {
  const { logger, warnings } = recordingLogger();
  const throttle = new WarningThrottle({ logger, intervalMs: 60_000 });
  throttle.warn('a', {}, 'refused');
  throttle.warn('a', {}, 'refused');
  throttle.stop();
  assert.deepEqual(warnings.map((w) => w.obj.suppressed), [undefined, 1]);
});

test('topic filters match as MQTT says: + is one level, # is the rest (and the parent), $ topics only literally', () => {
  assert.equal(topicMatchesFilter('ser/v1/+/ops/replies/#', 'ser/v1/lyon-2/ops/replies/alice/7'), true);
  assert.equal(topicMatchesFilter('ser/v1/+/ops/replies/#', 'ser/v1/lyon-2/ops/replies'), true);
  assert.equal(topicMatchesFilter('ser/v1/+/ops/replies/#', 'ser/v1/lyon-2/ops'), false);
  assert.equal(topicMatchesFilter('a/+/c', 'a/b/c/d'), false);
  assert.equal(topicMatchesFilter('a/+/c', 'a//c'), true);
  assert.equal(topicMatchesFilter('#', '$SYS/broker'), false);
  assert.equal(topicMatchesFilter('$SYS/#', '$SYS/broker'), true);
});

test('a reply topic filter with a misplaced wildcard or an unknown placeholder is named as such', () => {
  assert.equal(replyTopicFilterProblem('ser/v1/{site}/ops/replies/#'), null);
  assert.equal(replyTopicFilterProblem('ops/{gateway}/{command}/+'), null);
  assert.match(replyTopicFilterProblem('ops/#/x') ?? '', /'#' must be a whole level, and the last one/);
  assert.match(replyTopicFilterProblem('ops/a+') ?? '', /'\+' must be a whole level/);
  assert.match(replyTopicFilterProblem('ops/{operator}') ?? '', /placeholder \{operator\}; the known ones are \{site\}, \{gateway\}, \{command\}/);
  assert.match(replyTopicFilterProblem('$SYS/#') ?? '', /belong to the broker/);
  assert.match(replyTopicFilterProblem('') ?? '', /empty/);
});

test("by default a reply may go to the command's own reply topic or an operators' inbox of the site, and nowhere else", () => {
  const topics = gatewayTopics('lyon-2', 'row-a');
  const policy = new ReplyTopicPolicy({ topics, site: 'lyon-2', gateway: 'row-a' });
  assert.equal(policy.refusal('ser/v1/lyon-2/row-a/cmd/ping/reply', 'ping'), null);
  assert.equal(policy.refusal('ser/v1/lyon-2/ops/replies/alice', 'ping'), null);
  assert.match(policy.refusal('ser/v1/lyon-2/row-a/cmd/call/reply', 'ping') ?? '', /neither ser\/v1\/lyon-2\/row-a\/cmd\/ping\/reply nor under commands\.replyTopics \(ser\/v1\/lyon-2\/ops\/replies\/#\)/);
  assert.match(policy.refusal('ser/v1/paris/ops/replies/alice', 'ping') ?? '', /neither/, "another site's inbox");
  assert.match(policy.refusal('operators/alice', 'ping') ?? '', /neither/);
});

test('contract topics of any gateway are refused as response topics whatever the filters allow', () => {
  const topics = gatewayTopics('lyon-2', 'row-a');
  const policy = new ReplyTopicPolicy({ topics, site: 'lyon-2', gateway: 'row-a', filters: ['ser/v1/#'] });
  const cases: [string, RegExp][] = [
    ['ser/v1/lyon-2/row-a/status', /this gateway's status topic/],
    ['ser/v1/lyon-2/row-a/telemetry', /this gateway's telemetry topic/],
    ['ser/v1/lyon-2/row-a/model', /this gateway's model topic/],
    ['ser/v1/lyon-2/row-a/channel/desk-1/urgency', /this gateway's channel urgency topic/],
    ['ser/v1/lyon-2/row-a/channel/desk-1/state', /this gateway's channel state topic/],
    ['ser/v1/lyon-2/row-a/cmd/call', /this gateway's command topic call/],
    ['ser/v1/lyon-2/row-b/status', /the gateway lyon-2\/row-b's status topic/],
    ['ser/v1/lyon-2/row-b/cmd/ping', /the gateway lyon-2\/row-b's command topic ping/],
    ['ser/v1/lyon-2/row-b/cmd/ping/reply', /the gateway lyon-2\/row-b's reply topic/],
    ['ser/v1/lyon-2/+/status', /wildcards/],
    ['$SYS/broker/log', /belong to the broker/],
    ['', /empty/],
  ];
  for (const [topic, reason] of cases) assert.match(policy.refusal(topic, 'ping') ?? 'allowed', reason, topic);
  assert.equal(policy.refusal('ser/v1/lyon-2/row-a/cmd/call/reply', 'ping'), null, 'what the filter allows and is not a contract topic');
});

test('{site}, {gateway} and {command} in a reply topic filter stand for this gateway and the command answered', () => {
  const topics = gatewayTopics('lyon-2', 'row-a');
  const policy = new ReplyTopicPolicy({ topics, site: 'lyon-2', gateway: 'row-a', filters: ['ops/{site}/{gateway}/{command}/+'] });
  assert.equal(policy.refusal('ops/lyon-2/row-a/ping/alice', 'ping'), null);
  assert.notEqual(policy.refusal('ops/lyon-2/row-a/call/alice', 'ping'), null);
  assert.notEqual(policy.refusal('ops/lyon-2/row-b/ping/alice', 'ping'), null);
  assert.deepEqual(policy.filters, ['ops/lyon-2/row-a/{command}/+']);
});
