import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { synthesiseVoice, VOICE_STYLES } from '../src/audio/synthetic-voice.js';
import { GATEWAY_CONFIG_FILE } from '../src/commands/doctor-command.js';
import { loadDaemonConfig } from '../src/config/load-daemon-config.js';
import { encodeRecord } from '../src/mqtt/journal-records.js';
import { outboxDiskBound, outboxSegmentBytes } from '../src/mqtt/outbox.js';
import type { UrgencyEvent } from '../src/mqtt/payload-schemas.js';
import { tempDir, writeWav } from './helpers/audio-fixtures.js';
import { spawnDaemon } from './helpers/daemon-process.js';
import { assertApplied, docBlocks } from './helpers/doc-blocks.js';
import { repoRoot } from './helpers/gateway-install.js';
import { connectSubscriber } from './helpers/mosquitto.js';

/**
 * docs/operations.md is checked against what the code does, so it cannot go stale:
 * - the profile table against firmware-config/ and the outbox's own size arithmetic;
 * - the telemetry table against schemas/telemetry.schema.json and a payload a running
 *   daemon published, both ways (no field left out, none that no longer exists);
 * - the Prometheus table against what the daemon's endpoint serves, both ways;
 * - the outbox sizing against an event record the daemon really made;
 * - the log table against every message src/ logs at warn, error or fatal, both ways;
 * - every fenced block (each has a `<!-- doc-check: config-fragment -->` line) through the
 *   config loader, and the doctor command the Capacity section quotes, run as quoted.
 */

const docPath = join(repoRoot, 'docs', 'operations.md');
const doc = readFileSync(docPath, 'utf8');

/** The text from a `## ` heading starting with `title` to the next `## ` heading. */
function section(title: string): string {
  const start = doc.split('\n').findIndex((l) => l.startsWith(`## ${title}`));
  assert.ok(start >= 0, `docs/operations.md has no "## ${title}" section`);
  const lines = doc.split('\n').slice(start + 1);
  const end = lines.findIndex((l) => l.startsWith('## '));
  return lines.slice(0, end < 0 ? undefined : end).join('\n');
}

/** A markdown table's body rows (after the `|---|` line), as trimmed cells; `marker` is a word of the header row. */
function tableRows(text: string, marker: string): string[][] {
  const lines = text.split('\n');
  const header = lines.findIndex((l) => l.startsWith('|') && l.includes(marker));
  assert.ok(header >= 0, `docs/operations.md: no table whose header names "${marker}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    // A `|` inside a code span is written `\|` in the table.
    rows.push(line.slice(1, line.endsWith('|') ? -1 : undefined).split(/(?<!\\)\|/).map((c) => c.trim().replaceAll('\\|', '|')));
  }
  return rows;
}

/** The text of a cell that is one code span (`x` or ``x with `ticks` ``), else null. */
function codeSpan(cell: string): string | null {
  const m = /^(`+) ?(.*?) ?\1$/.exec(cell);
  return m ? m[2]! : null;
}

/** Every code span in a cell. */
function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/(`+) ?(.+?) ?\1/g)].map((m) => m[2]!);
}

// ---------------------------------------------------------------- the page's config example and command

test('the config example loads through the config loader and sets what it shows; the endpoint it gives is the one the text names', () => {
  const blocks = docBlocks(doc, 'docs/operations.md', ['config-fragment']);
  assert.ok(blocks.length >= 1, 'found the config example');
  const dir = tempDir('ser-edge-docs-ops-config-');
  for (const block of blocks) {
    const at = `docs/operations.md:${block.line}`;
    assert.equal(block.lang, 'json', at);
    const fragment = JSON.parse(block.text) as Record<string, unknown>;
    const file = join(dir, `config-${block.line}.json`);
    writeFileSync(file, JSON.stringify({ extends: 'generic-linux', site: 'lab', gateway: 'gw-ops', ...fragment }));
    const { config } = loadDaemonConfig({ file, env: {} });
    assertApplied(config, fragment, at);
    if (fragment.telemetry !== undefined) {
      const { host, port } = config.telemetry.prometheus;
      assert.ok(section('Prometheus').includes(`\`GET http://${host}:${port}/metrics\``), `${at}: the text names the endpoint this config opens, http://${host}:${port}/metrics`);
    }
  }
});

test('the doctor command the Capacity section quotes runs, and its capacity row has the data.channels the section reads', () => {
  const quoted = /\(`(node bin\/ser-edge\.js doctor[^`]*)`, the `capacity` row's `data\.channels`\)/.exec(section('Capacity'));
  assert.ok(quoted, 'the Capacity section quotes the doctor command it measured with');
  const [node, ...args] = quoted[1]!.split(' ');
  assert.equal(node, 'node');
  // From the checkout, as quoted; a state directory of its own, not this user's.
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SER_EDGE_') && k !== 'STATE_DIRECTORY')), XDG_STATE_HOME: tempDir('ser-edge-docs-ops-state-') };
  const run = spawnSync(process.execPath, args, { cwd: repoRoot, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.error, undefined, run.error?.message);
  const report = JSON.parse(run.stdout) as { ok: boolean; config: string | null; checks: { check: string; status: string; data?: Record<string, unknown> }[] };
  assert.equal(run.status, report.ok ? 0 : 1, run.stderr);
  assert.equal(report.config, existsSync(GATEWAY_CONFIG_FILE) ? GATEWAY_CONFIG_FILE : null, 'without --config: the gateway\'s config if there is one, else the built-in default');
  const capacity = report.checks.find((c) => c.check === 'capacity');
  assert.ok(capacity, JSON.stringify(report.checks));
  assert.ok(Number.isInteger(capacity.data?.channels) && (capacity.data!.channels as number) >= 1, `data.channels: ${JSON.stringify(capacity.data)}`);
  assert.equal(typeof capacity.data?.configured, 'number');
});

// ---------------------------------------------------------------- log messages in src/

const WILDCARD = '…';
type Level = 'warn' | 'error' | 'fatal';
interface LogCall {
  where: string;
  level: Level;
  /** The message with every part only known at run time as `…`. */
  message: string;
}

/**
 * Calls whose message is not in the call itself: the throttle passes on its callers'
 * messages, and those callers (`.warn(key, fields, 'message')`) are collected as any other
 * call. Keyed by file and the argument's text; a key that no longer matches a call fails.
 */
const PASSED_ON_MESSAGES = new Map([['src/mqtt/warning-throttle.ts message', 'WarningThrottle.warn logs the message its caller gave']]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );
}

/** The arguments of the call whose `(` is at `open`, split at top-level commas (strings, templates and brackets skipped). */
function callArguments(text: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = stringEnd(text, i);
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) {
        args.push(text.slice(start, i));
        return args.map((a) => a.trim()).filter((a) => a !== '');
      }
    } else if (c === ',' && depth === 1) {
      args.push(text.slice(start, i));
      start = i + 1;
    }
  }
  throw new Error(`unclosed call at offset ${open}`);
}

/** The index of the quote closing the string or template that opens at `i`. */
function stringEnd(text: string, i: number): number {
  const quote = text[i]!;
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (quote === '`' && text[j] === '$' && text[j + 1] === '{') {
      let depth = 0;
      for (j++; j < text.length; j++) {
        if (text[j] === "'" || text[j] === '"' || text[j] === '`') j = stringEnd(text, j);
        else if (text[j] === '{') depth++;
        else if (text[j] === '}' && --depth === 0) break;
      }
    } else if (text[j] === quote) return j;
  }
  throw new Error(`unclosed string at offset ${i}`);
}

const unescape = (s: string) => s.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);

/** A message expression (literals, templates, `+`) as text, with what only the running code knows as `…`. */
function messagePattern(expression: string): string {
  const operands: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i]!;
    if (c === "'" || c === '"' || c === '`') i = stringEnd(expression, i);
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === '+' && depth === 0) {
      operands.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  operands.push(expression.slice(start).trim());
  let out = '';
  for (const operand of operands) {
    const quote = operand[0];
    if ((quote === "'" || quote === '"') && stringEnd(operand, 0) === operand.length - 1) {
      out += unescape(operand.slice(1, -1));
    } else if (quote === '`' && stringEnd(operand, 0) === operand.length - 1) {
      const body = operand.slice(1, -1);
      for (let i = 0; i < body.length; i++) {
        if (body[i] === '\\') out += unescape(body.slice(i, ++i + 1));
        else if (body[i] === '$' && body[i + 1] === '{') {
          let depth = 0;
          for (i++; i < body.length; i++) {
            if (body[i] === "'" || body[i] === '"' || body[i] === '`') i = stringEnd(body, i);
            else if (body[i] === '{') depth++;
            else if (body[i] === '}' && --depth === 0) break;
          }
          out += WILDCARD;
        } else out += body[i];
      }
    } else {
      out += WILDCARD;
    }
  }
  return out.replace(/…+/g, WILDCARD);
}

function logCalls(): { calls: LogCall[]; passedOn: Set<string> } {
  const calls: LogCall[] = [];
  const passedOn = new Set<string>();
  for (const file of sourceFiles(join(repoRoot, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const name = relative(repoRoot, file);
    for (const m of text.matchAll(/([A-Za-z_$][\w$]*)\s*\??\.(warn|error|fatal)\(/g)) {
      // console.* is a command's own output to its user, not a log line.
      if (m[1] === 'console') continue;
      const where = `${name}:${text.slice(0, m.index).split('\n').length}`;
      const args = callArguments(text, m.index! + m[0].length - 1);
      const last = args.at(-1) ?? '';
      const message = messagePattern(last);
      if (message === WILDCARD) {
        assert.ok(PASSED_ON_MESSAGES.has(`${name} ${last}`), `${where}: ${m[0]} logs a message this test cannot read (${last}); write it as a literal or template, or list it in PASSED_ON_MESSAGES with why`);
        passedOn.add(`${name} ${last}`);
        continue;
      }
      calls.push({ where, level: m[2] as Level, message });
    }
  }
  return { calls, passedOn };
}

/** The doc writes a run-time part as `…` or as a named `{placeholder}`. */
const docMessage = (text: string) => text.replace(/\{[a-zA-Z][\w .-]*\}/g, WILDCARD).replace(/…+/g, WILDCARD);

test('every message src/ logs at warn, error or fatal has a row in the log table, at its level, and every row is a message src/ still logs', () => {
  const { calls, passedOn } = logCalls();
  assert.ok(calls.length > 30, `found the log calls (${calls.length})`);
  for (const key of PASSED_ON_MESSAGES.keys()) assert.ok(passedOn.has(key), `PASSED_ON_MESSAGES lists "${key}", which no longer matches a call: remove it`);

  const rows = tableRows(section('Log lines'), 'message');
  const documented = new Map<string, Set<string>>();
  for (const [levels, cell] of rows) {
    const span = codeSpan(cell ?? '');
    assert.ok(span !== null, `log table: the message cell "${cell}" is not one code span`);
    const key = docMessage(span);
    assert.ok(!documented.has(key), `log table: "${span}" is listed twice`);
    documented.set(key, new Set(levels!.split(/[ ,/]+/).filter(Boolean)));
  }
  const missing = calls.filter((c) => !documented.has(c.message));
  assert.deepEqual(
    missing.map((c) => `${c.where} ${c.level}: ${c.message}`),
    [],
    'log lines with no row in docs/operations.md (Log lines): add each, with what it means and what to do',
  );
  for (const call of calls) {
    assert.ok(documented.get(call.message)!.has(call.level), `${call.where}: "${call.message}" is logged at ${call.level}; the log table says ${[...documented.get(call.message)!].join(', ')}`);
  }
  const logged = new Set(calls.map((c) => c.message));
  const gone = [...documented.keys()].filter((m) => !logged.has(m));
  assert.deepEqual(gone, [], 'rows of the log table that no message in src/ matches any more: remove or reword them');
  for (const [message, levels] of documented) {
    const used = new Set(calls.filter((c) => c.message === message).map((c) => c.level));
    for (const level of levels) assert.ok(used.has(level as Level), `log table: "${message}" is listed at ${level}, but src/ logs it only at ${[...used].join(', ')}`);
  }
});

// ---------------------------------------------------------------- profiles and the outbox bound

interface Profile {
  profile: string;
  model: { backends: string[]; threads: number };
  audio: { blockMs: number; maxLagSeconds: number };
  outbox: { maxBytes: number; segmentBytes?: number };
  telemetry: { intervalSeconds: number };
}

const MiB = 1024 * 1024;
/** `16 MiB`, `1 MiB`, `18.02 MiB`, `640 KiB` → bytes. */
function bytesOf(text: string): number {
  const m = /^([\d.]+) (KiB|MiB)$/.exec(text.replaceAll('`', '').trim());
  assert.ok(m, `"${text}" is not a size in KiB or MiB`);
  return Number(m[1]) * (m[2] === 'MiB' ? MiB : 1024);
}

test('the profile table says what each firmware-config profile sets, and the outbox segment and disk bound the outbox computes from it', () => {
  const files = readdirSync(join(repoRoot, 'firmware-config')).filter((f) => f.endsWith('.json') && f !== 'site-example.json');
  const rows = tableRows(section('Capacity'), 'profile');
  assert.deepEqual(rows.map((r) => codeSpan(r[0]!)).sort(), files.map((f) => f.replace(/\.json$/, '')).sort(), 'one row per profile in firmware-config/');
  for (const row of rows) {
    const [name, backends, threads, block, lag, maxBytes, segment, bound, interval] = row as [string, ...string[]];
    const p = JSON.parse(readFileSync(join(repoRoot, 'firmware-config', `${codeSpan(name)}.json`), 'utf8')) as Profile;
    const at = `profile table, ${p.profile}`;
    assert.equal(backends, p.model.backends.join(', '), `${at}: model.backends`);
    assert.equal(Number(threads), p.model.threads, `${at}: model.threads`);
    assert.equal(block, `${p.audio.blockMs} ms`, `${at}: audio.blockMs`);
    assert.equal(lag, `${p.audio.maxLagSeconds} s`, `${at}: audio.maxLagSeconds`);
    assert.equal(bytesOf(maxBytes!), p.outbox.maxBytes, `${at}: outbox.maxBytes`);
    assert.equal(bytesOf(segment!), outboxSegmentBytes(p.outbox), `${at}: segment size`);
    assert.ok(Math.abs(bytesOf(bound!) - outboxDiskBound(p.outbox)) < 0.01 * MiB, `${at}: disk bound ${bound}, the outbox's is ${(outboxDiskBound(p.outbox) / MiB).toFixed(2)} MiB`);
    assert.equal(interval, `${p.telemetry.intervalSeconds} s`, `${at}: telemetry.intervalSeconds`);
  }
});

// ---------------------------------------------------------------- a running daemon

/** Record keys (ids the gateway chooses) as the doc writes them. */
const PLACEHOLDERS: Record<string, string> = {
  'pipeline.latencyMs': '{stage}',
  'pipeline.channels': '{channel}',
  'pipeline.outboxDropped': '{level}',
  agentStrain: '{channel}',
};

/** Leaf paths of a payload, with the keys of PLACEHOLDERS objects replaced. */
function payloadPaths(value: unknown, path = '', out = new Set<string>()): Set<string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    out.add(path);
    return out;
  }
  for (const [key, child] of Object.entries(value)) {
    const name = PLACEHOLDERS[path] ?? key;
    payloadPaths(child, path === '' ? name : `${path}.${name}`, out);
  }
  return out;
}

/**
 * Fields the schema leaves to `looseObject` and a payload carries only on some gateways or
 * in some states, so neither source above shows them here: the code that writes each.
 */
const CONDITIONAL_FIELDS = new Map<string, [file: string, text: string]>([
  ['health.gpu.model', ['src/telemetry/health-probe.ts', 'model: board']],
  ['pipeline.channels.{channel}.lastError', ['src/telemetry/telemetry-reporter.ts', 'lastError: health.lastError']],
]);

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
}

/** Leaf paths the JSON Schema describes (a record's values under its placeholder). */
function schemaPaths(schema: JsonSchema, path = '', out = new Set<string>()): Set<string> {
  const variants = schema.anyOf ?? [schema];
  const objects = variants.filter((v) => v.properties !== undefined || typeof v.additionalProperties === 'object');
  if (objects.length === 0) {
    out.add(path);
    return out;
  }
  const join = (name: string) => (path === '' ? name : `${path}.${name}`);
  for (const v of objects) {
    for (const [key, child] of Object.entries(v.properties ?? {})) schemaPaths(child, join(PLACEHOLDERS[path] ?? key), out);
    if (typeof v.additionalProperties === 'object' && v.properties === undefined) {
      assert.ok(PLACEHOLDERS[path] !== undefined, `telemetry.schema.json: ${path} is a record; name its keys in PLACEHOLDERS and in the doc`);
      schemaPaths(v.additionalProperties, join(PLACEHOLDERS[path]!), out);
    }
  }
  return out;
}

test('a running daemon: its telemetry fields and Prometheus metrics are the ones the doc lists, and an event record is the size the outbox sizing assumes', async () => {
  const dir = tempDir('ser-edge-docs-ops-');
  // The demo's caller (calm, then angry) on the customer channel, a calm agent beside it,
  // replayed faster than real time with the shipped model: flags, telemetry, agent strain.
  const rate = 16000;
  const customer = new Float32Array(40 * rate);
  customer.set(synthesiseVoice(VOICE_STYLES.calm, 20, rate, 11));
  customer.set(synthesiseVoice(VOICE_STYLES.angry, 20, rate, 12), 20 * rate);
  const agent = synthesiseVoice(VOICE_STYLES.calm, 40, rate, 13);
  const wav = await writeWav(join(dir, 'desk.wav'), [customer, agent], rate, '16');
  const daemon = spawnDaemon(join(dir, 'ops.json'), {
    site: 'lab',
    gateway: 'gw-ops',
    stateDir: join(dir, 'state'),
    mqtt: { embedded: { port: 0 } },
    telemetry: { intervalSeconds: 1, prometheus: { enabled: true, port: 0 } },
    sources: [
      {
        type: 'file',
        path: wav,
        realtime: false,
        loop: true,
        channels: [
          { index: 0, id: 'desk-1', role: 'customer' },
          { index: 1, id: 'desk-1-agent', role: 'agent' },
        ],
      },
    ],
  });
  try {
    const broker = await daemon.waitForLog((l) => String(l.msg).startsWith('no mqtt.url configured'), 30_000, 'the embedded broker');
    const sub = await connectSubscriber(String(broker.url), ['ser/v1/lab/gw-ops/channel/+/urgency', 'ser/v1/lab/gw-ops/telemetry'], { protocolVersion: 4 });
    try {
      const flag = await sub.waitFor((m) => m.topic.endsWith('/urgency'), 60_000, 'an urgency event');
      const telemetry = await sub.waitFor(
        (m) => m.topic.endsWith('/telemetry') && Object.keys((m.json() as { agentStrain?: object }).agentStrain ?? {}).length > 0 && (m.json() as { pipeline: { latencyMs: object } }).pipeline.latencyMs !== undefined,
        30_000,
        'telemetry with agent strain',
      );

      // ---- telemetry fields, both ways
      const documented = new Set(tableRows(section('Telemetry'), 'field').flatMap((r) => codeSpans(r[0]!)));
      const schema = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'telemetry.schema.json'), 'utf8')) as JsonSchema;
      const known = new Set([...schemaPaths(schema), ...payloadPaths(telemetry.json()), ...CONDITIONAL_FIELDS.keys()]);
      for (const [field, [file, text]] of CONDITIONAL_FIELDS) assert.ok(readFileSync(join(repoRoot, file), 'utf8').includes(text), `${field}: ${file} no longer writes ${text}; update CONDITIONAL_FIELDS and the doc`);
      assert.deepEqual([...known].filter((p) => !documented.has(p)).sort(), [], 'telemetry fields (schema or a real payload) missing from the Telemetry table');
      assert.deepEqual([...documented].filter((p) => !known.has(p)).sort(), [], 'fields in the Telemetry table that neither the schema nor the payload has');

      // ---- Prometheus metrics, both ways
      const prometheus = await daemon.waitForLog((l) => String(l.msg).startsWith('Prometheus endpoint'), 10_000, 'the metrics endpoint');
      const text = await (await fetch(String(prometheus.url))).text();
      const served = new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
      assert.ok(served.size > 20, 'scraped the endpoint');
      for (const name of served) assert.match(name, /^ser_edge_/, 'every metric carries the ser_edge_ prefix');
      const metricsSection = section('Prometheus');
      const named = new Set([...metricsSection.matchAll(/\bser_edge_[a-z0-9_]+/g)].map((m) => m[0]));
      assert.deepEqual([...served].filter((n) => !named.has(n)).sort(), [], 'metrics the endpoint serves that the Prometheus section does not name');
      assert.deepEqual([...named].filter((n) => !served.has(n)).sort(), [], 'metrics the Prometheus section names that the endpoint does not serve');

      // ---- the outbox sizing's record size
      const event = flag.json() as UrgencyEvent;
      const recordBytes = encodeRecord({ t: 'e', e: event }).length;
      const sizing = section('Outbox sizing');
      const assumed = /an event record is about \*\*(\d+) bytes\*\*/.exec(sizing);
      assert.ok(assumed, 'the Outbox sizing section says "an event record is about **N bytes**"');
      const assumedBytes = Number(assumed[1]);
      assert.ok(Math.abs(recordBytes - assumedBytes) <= 0.15 * assumedBytes, `an event record of the shipped model is ${recordBytes} bytes; the doc assumes ${assumedBytes}`);
      // The outage table: events that fit, and hours at each rate of its header, from that record size.
      const header = sizing.split('\n').find((l) => l.startsWith('|') && l.includes('events that fit'))!;
      const rates = header.split('|').slice(3, -1).map((c) => Number(/([\d,]+) events an hour/.exec(c)![1]!.replaceAll(',', '')));
      const outages = tableRows(sizing, 'events that fit');
      assert.ok(outages.length >= 3 && rates.length >= 3, 'the outage table has rows and rates');
      for (const [size, fit, ...hours] of outages as [string, string, ...string[]][]) {
        const events = Math.floor(bytesOf(size) / assumedBytes);
        assert.equal(Number(fit.replaceAll(',', '')), events, `outage table, ${size}: events that fit`);
        hours.forEach((cell, i) => {
          const expected = events / rates[i]!;
          const stated = Number(/^([\d.,]+) h$/.exec(cell)![1]!.replaceAll(',', ''));
          assert.ok(Math.abs(stated - expected) <= Math.max(0.01 * expected, 0.05), `outage table, ${size} at ${rates[i]} events an hour: ${cell}; the arithmetic gives ${expected.toFixed(1)} h`);
        });
      }
    } finally {
      await sub.end();
    }
  } finally {
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
  }
});
