import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Outbox, dropRank, encodeRecord, readJournal } from '../src/mqtt/outbox.js';
import { sampleEvent } from './helpers/mosquitto.js';

const tempDir = () => mkdtemp(join(tmpdir(), 'ser-edge-outbox-'));
/** What the outbox occupies on disk: all its segment files. */
async function segmentBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) if (name.endsWith('.seg')) total += (await stat(join(dir, name))).size;
  return total;
}
async function newestSegment(dir: string): Promise<string> {
  return join(dir, (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort().at(-1)!);
}
/** node:fs/promises does not export the FileHandle class; one handle's prototype is it. */
const FileHandleClass = await (async () => {
  const probe = await open(process.execPath, 'r');
  await probe.close();
  return probe.constructor as { prototype: object };
})();

async function opened(dir: string, maxBytes = 1024 * 1024): Promise<Outbox> {
  const outbox = new Outbox({ dir, maxBytes });
  await outbox.start();
  return outbox;
}

/**
 * Until the returned function is called (or the test ends), every FileHandle.write of a
 * buffer takes at most `limit` bytes, as a nearly full disk or an interrupted write would;
 * with `budget`, all writes together take at most that many bytes and then none.
 */
function shortWrites(t: TestContext, limit: number, budget = Infinity): () => void {
  const proto = FileHandleClass.prototype as { write: (...args: unknown[]) => Promise<{ bytesWritten: number; buffer: unknown }> };
  const original = proto.write;
  let left = budget;
  proto.write = function (this: unknown, data: unknown, offset?: unknown, length?: unknown, position?: unknown) {
    if (!Buffer.isBuffer(data)) return original.call(this, data, offset, length, position);
    const from = typeof offset === 'number' ? offset : 0;
    const asked = typeof length === 'number' ? length : data.length - from;
    const take = Math.min(asked, limit, left);
    if (take === 0) return Promise.resolve({ bytesWritten: 0, buffer: data });
    left -= take;
    return original.call(this, data, from, take, position ?? null);
  };
  const restore = () => {
    proto.write = original;
  };
  t.after(restore);
  return restore;
}

describe('Outbox', () => {
  test('appended events are pending in seq order until acked', async () => {
    const outbox = await opened(await tempDir());
    for (const seq of [outbox.nextSeq(), outbox.nextSeq(), outbox.nextSeq()]) await outbox.append(sampleEvent(seq));
    assert.deepEqual(outbox.pending().map((e) => e.seq), [1, 2, 3]);
    await outbox.ack(sampleEvent(2).id);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [1, 3]);
    assert.equal(outbox.depth, 2);
    await outbox.stop();
  });

  test('unacked events and the seq counter survive a restart', async () => {
    const dir = await tempDir();
    let outbox = await opened(dir);
    for (let i = 0; i < 5; i++) await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.ack(sampleEvent(1).id);
    await outbox.ack(sampleEvent(5).id);
    await outbox.stop();
    outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [2, 3, 4]);
    assert.equal(outbox.nextSeq(), 6, 'the seq of an acked and compacted event is never reused');
    await outbox.stop();
  });

  test('the seq continues after every event was acked and compacted away', async () => {
    const dir = await tempDir();
    let outbox = await opened(dir);
    for (let i = 0; i < 3; i++) {
      const e = sampleEvent(outbox.nextSeq());
      await outbox.append(e);
      await outbox.ack(e.id);
    }
    await outbox.stop();
    outbox = await opened(dir);
    assert.equal(outbox.depth, 0);
    assert.equal(outbox.nextSeq(), 4);
    await outbox.stop();
  });

  test('segments whose events were all acknowledged leave the disk whole', async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 64 * 1024, segmentBytes: 4096 });
    await outbox.start();
    for (let i = 0; i < 400; i++) {
      const e = sampleEvent(outbox.nextSeq());
      await outbox.append(e);
      await outbox.ack(e.id);
    }
    const size = await segmentBytes(dir);
    assert.ok(size <= 2 * 4096, `segments hold ${size} bytes after 400 acked events`);
    assert.ok(outbox.segmentPaths.length <= 2);
    await outbox.stop();
  });

  test('a torn final record is skipped and what is appended after it reads back intact', async () => {
    const dir = await tempDir();
    let outbox = await opened(dir);
    await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.stop();
    const torn = encodeRecord({ t: 'e', e: sampleEvent(3) });
    await appendFile(await newestSegment(dir), torn.subarray(0, torn.length - 20));

    outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [1, 2]);
    const seq = outbox.nextSeq();
    await outbox.append(sampleEvent(seq));
    await outbox.stop();
    outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [1, 2, seq]);
    await outbox.stop();
  });

  test('a damaged record in the middle loses only itself, not the records after it', () => {
    const records = [1, 2, 3].map((s) => encodeRecord({ t: 'e', e: sampleEvent(s) }));
    records[1]![40] ^= 0xff;
    const { records: read, skippedBytes } = readJournal(Buffer.concat(records));
    assert.deepEqual(read.map((r) => (r.t === 'e' ? r.e.seq : -1)), [1, 3]);
    assert.equal(skippedBytes, records[1]!.length);
  });

  test('when full it drops the oldest medium raises first, then the oldest high, and counts them by level', async () => {
    const raise = (seq: number, level: 'medium' | 'high') => sampleEvent(seq, { kind: 'raise', level, previousLevel: 'low' });
    const one = encodeRecord({ t: 'e', e: raise(1, 'medium') }).length;
    const outbox = await opened(await tempDir(), one * 4 + 10);
    for (const level of ['high', 'medium', 'high', 'medium'] as const) await outbox.append(raise(outbox.nextSeq(), level));
    await outbox.append(raise(outbox.nextSeq(), 'high'));
    assert.deepEqual(outbox.pending().map((e) => `${e.seq}:${e.level}`), ['1:high', '3:high', '4:medium', '5:high']);
    await outbox.append(raise(outbox.nextSeq(), 'high'));
    await outbox.append(raise(outbox.nextSeq(), 'high'));
    assert.deepEqual(outbox.pending().map((e) => `${e.seq}:${e.level}`), ['3:high', '5:high', '6:high', '7:high']);
    await outbox.append(raise(outbox.nextSeq(), 'medium'));
    assert.deepEqual(outbox.pending().map((e) => e.seq), [3, 5, 6, 7], 'a medium raise arriving at an outbox full of high ones is the one dropped');
    assert.deepEqual(outbox.droppedCounts, { low: 0, medium: 3, high: 1 });
    await outbox.stop();
  });

  test('when full a clear ranks with the level it ends, so clears are not dropped ahead of the raises they end', async () => {
    // A long outage: calls raise and clear while nothing can be sent.
    const raise = (seq: number, level: 'medium' | 'high') => sampleEvent(seq, { callId: `call-${seq}`, kind: 'raise', level, previousLevel: 'low' });
    const clear = (seq: number, from: 'medium' | 'high') => sampleEvent(seq, { callId: `call-${seq}`, kind: 'clear', level: 'low', previousLevel: from });
    const largest = Math.max(...[raise(1, 'medium'), raise(1, 'high'), clear(1, 'medium'), clear(1, 'high')].map((e) => encodeRecord({ t: 'e', e }).length));
    const outbox = await opened(await tempDir(), largest * 4);
    await outbox.append(raise(outbox.nextSeq(), 'high'));
    await outbox.append(clear(outbox.nextSeq(), 'high'));
    await outbox.append(raise(outbox.nextSeq(), 'medium'));
    await outbox.append(clear(outbox.nextSeq(), 'medium'));
    const summary = () => outbox.pending().map((e) => `${e.seq}:${e.kind}:${e.level}`);

    await outbox.append(raise(outbox.nextSeq(), 'high'));
    assert.deepEqual(summary(), ['1:raise:high', '2:clear:low', '4:clear:low', '5:raise:high'], 'the oldest medium-ranked event goes first');
    await outbox.append(clear(outbox.nextSeq(), 'high'));
    assert.deepEqual(summary(), ['1:raise:high', '2:clear:low', '5:raise:high', '6:clear:low'], 'a clear of a medium flag ranks medium');
    await outbox.append(raise(outbox.nextSeq(), 'high'));
    assert.deepEqual(summary(), ['2:clear:low', '5:raise:high', '6:clear:low', '7:raise:high'], 'clears of high flags outlive older high raises');
    assert.deepEqual(outbox.droppedCounts, { low: 1, medium: 1, high: 1 });
    await outbox.stop();
  });

  test('a clear without previousLevel ranks one level above the level it came down to', () => {
    const { previousLevel: _omitted, ...bare } = sampleEvent(1, { kind: 'clear', level: 'low' });
    assert.equal(dropRank(bare), dropRank(sampleEvent(2, { kind: 'raise', level: 'medium', previousLevel: 'low' })));
    assert.equal(dropRank({ ...bare, level: 'medium' }), dropRank(sampleEvent(3, { kind: 'raise', level: 'high', previousLevel: 'medium' })));
  });

  test('a short write is continued until the whole record is on disk', async (t) => {
    const dir = await tempDir();
    let outbox = await opened(dir);
    const restore = shortWrites(t, 7);
    for (let i = 0; i < 3; i++) await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.ack(sampleEvent(2).id);
    await outbox.stop();
    restore();
    outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [1, 3]);
    await outbox.stop();
  });

  test('a write that takes no bytes at all fails the append instead of reporting the event stored', async (t) => {
    const dir = await tempDir();
    const outbox = await opened(dir);
    const restore = shortWrites(t, 0);
    await assert.rejects(outbox.append(sampleEvent(outbox.nextSeq())), /took 0 of \d+ bytes and then no more; check the free space/);
    restore();
    assert.equal(outbox.depth, 0);
    await outbox.stop();
  });

  test('an event that does not match the schema is refused with the field named', async () => {
    const outbox = await opened(await tempDir());
    await assert.rejects(outbox.append({ ...sampleEvent(1), score: 7 }), /score/);
    await outbox.stop();
  });

  test('events made durable before a kill -9 are all there after restart, and the seq continues', async () => {
    const dir = await tempDir();
    const outboxModule = fileURLToPath(new URL('../src/mqtt/outbox.js', import.meta.url));
    const helperModule = fileURLToPath(new URL('./helpers/mosquitto.js', import.meta.url));
    // The child reports each seq only after append() resolved, i.e. after fdatasync.
    const script = `
      const { Outbox } = await import(${JSON.stringify(outboxModule)});
      const { sampleEvent } = await import(${JSON.stringify(helperModule)});
      const outbox = new Outbox({ dir: ${JSON.stringify(dir)}, maxBytes: 64 * 1024 * 1024 });
      await outbox.start();
      for (;;) {
        const seq = outbox.nextSeq();
        await outbox.append(sampleEvent(seq));
        if (seq % 3 === 0) await outbox.ack(sampleEvent(seq - 1).id);
        process.stdout.write(seq + '\\n');
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let durable: number[] = [];
    await new Promise<void>((resolve) => {
      let buffered = '';
      child.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        durable = durable.concat(lines.map(Number));
        if (durable.length >= 150 && child.signalCode === null && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.once('exit', r));
    // Power loss can also cut the last write short; simulate that on top of the kill.
    const torn = encodeRecord({ t: 'e', e: sampleEvent(1_000_000) });
    await appendFile(await newestSegment(dir), torn.subarray(0, 30));

    const outbox = await opened(dir);
    const pendingSeqs = new Set(outbox.pending().map((e) => e.seq));
    const acked = new Set(durable.filter((s) => s % 3 === 0).map((s) => s - 1));
    for (const seq of durable) {
      if (!acked.has(seq)) assert.ok(pendingSeqs.has(seq), `durable event ${seq} was lost`);
    }
    assert.ok(!pendingSeqs.has(1_000_000), 'the torn record was skipped');
    const next = outbox.nextSeq();
    assert.ok(next > Math.max(...durable), `seq ${next} continues after ${Math.max(...durable)}`);
    await outbox.stop();
  });

  test('a start with a non-positive maxBytes is refused with what to set', async () => {
    const outbox = new Outbox({ dir: await tempDir(), maxBytes: 0 });
    await assert.rejects(outbox.start(), /maxBytes must be a positive number/);
  });

  test('the single-file journal of an older version is taken over: its waiting events and seq continue, and the file goes', async () => {
    const dir = await tempDir();
    const legacy = [encodeRecord({ t: 'h', seq: 40 }), ...[38, 39, 41].map((s) => encodeRecord({ t: 'e', e: sampleEvent(s) })), encodeRecord({ t: 'a', id: sampleEvent(39).id })];
    await writeFile(join(dir, 'outbox.journal'), Buffer.concat(legacy));
    await writeFile(join(dir, 'outbox.journal.tmp'), 'half a compaction');
    let outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [38, 41]);
    assert.equal(outbox.nextSeq(), 42);
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('outbox.journal')), []);
    assert.deepEqual(outbox.setAside, []);
    await outbox.stop();
    outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [38, 41]);
    await outbox.stop();
  });

  test('an event the broker refused for good is kept in rejected.jsonl and leaves the queue for good', async () => {
    const dir = await tempDir();
    let outbox = await opened(dir);
    await outbox.append(sampleEvent(1, { channel: 'closed' }));
    await outbox.append(sampleEvent(2));
    await outbox.reject(sampleEvent(1).id, '0x87 not authorised');
    assert.deepEqual(outbox.pending().map((e) => e.seq), [2]);
    assert.equal(outbox.rejectedCount, 1);
    const kept = (await readFile(outbox.rejectedPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { reason: string; event: { seq: number; channel: string }; rejectedAt: string });
    assert.equal(kept.length, 1);
    assert.equal(kept[0]!.reason, '0x87 not authorised');
    assert.equal(kept[0]!.event.seq, 1);
    assert.equal(kept[0]!.event.channel, 'closed');
    assert.ok(!Number.isNaN(Date.parse(kept[0]!.rejectedAt)));
    await outbox.reject('01UNKNOWNUNKNOWNUNKNOWN000', 'ignored');
    assert.equal(outbox.rejectedCount, 1, 'an unknown id is ignored');
    await outbox.stop();
    outbox = await opened(dir);
    assert.deepEqual(outbox.pending().map((e) => e.seq), [2], 'a refused event does not come back after a restart');
    await outbox.stop();
  });

  test('rejected.jsonl is rotated to rejected.jsonl.1 at its bound, keeping the latest refusals', async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 1 << 20, rejectedMaxBytes: 2500 });
    await outbox.start();
    for (let seq = 1; seq <= 8; seq++) {
      await outbox.append(sampleEvent(seq));
      await outbox.reject(sampleEvent(seq).id, '0x87 not authorised');
    }
    const seqs = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { event: { seq: number } }).event.seq);
    const current = await seqs(outbox.rejectedPath);
    const previous = await seqs(`${outbox.rejectedPath}.1`);
    assert.ok((await readFile(outbox.rejectedPath)).length <= 2500);
    assert.equal(current.at(-1), 8, 'the newest refusal is in the current file');
    assert.deepEqual([...previous, ...current], [...Array(previous.length + current.length).keys()].map((i) => 8 - previous.length - current.length + 1 + i), 'the two files hold the latest refusals in order');
    assert.equal(outbox.rejectedCount, 8);
    await outbox.stop();
  });

  test('a refused event whose rejected-file write fails stays in the outbox, and leaves no torn line behind', async (t) => {
    const dir = await tempDir();
    const outbox = await opened(dir);
    await outbox.append(sampleEvent(1));
    await outbox.append(sampleEvent(2));
    await outbox.reject(sampleEvent(1).id, '0x87 not authorised');
    const before = await readFile(outbox.rejectedPath, 'utf8');
    const restore = shortWrites(t, Infinity, 40); // the disk fills 40 bytes into the next line
    await assert.rejects(outbox.reject(sampleEvent(2).id, '0x87 not authorised'), /cannot write refused event .* it stays in the outbox/);
    restore();
    assert.deepEqual(outbox.pending().map((e) => e.seq), [2]);
    assert.equal(await readFile(outbox.rejectedPath, 'utf8'), before, 'the partial line was cut off again');
    await outbox.reject(sampleEvent(2).id, '0x87 not authorised');
    const lines = (await readFile(outbox.rejectedPath, 'utf8')).trim().split('\n');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { event: { seq: number } }).event.seq), [1, 2]);
    await outbox.stop();
  });

  test('segments of refused events leave the disk like those of acknowledged events', async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 20_000 });
    await outbox.start();
    for (let seq = 1; seq <= 600; seq++) {
      await outbox.append(sampleEvent(seq));
      await outbox.reject(sampleEvent(seq).id, '0x87 not authorised');
    }
    const size = await segmentBytes(dir);
    assert.ok(size <= outbox.diskBound, `segments hold ${size} bytes, within the bound ${outbox.diskBound}`);
    assert.equal(outbox.depth, 0);
    await outbox.stop();
  });
});
