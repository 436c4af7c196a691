import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Outbox, encodeRecord } from '../src/mqtt/outbox.js';
import { sampleEvent } from './helpers/mosquitto.js';

const tempDir = () => mkdtemp(join(tmpdir(), 'ser-edge-outbox-seg-'));

async function segmentBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) if (name.endsWith('.seg')) total += (await stat(join(dir, name))).size;
  return total;
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

/** A record with a valid checksum whose body no outbox wrote: what a hand edit or an old bug leaves. */
function forged(body: unknown): Buffer {
  return encodeRecord(body as Parameters<typeof encodeRecord>[0]);
}

describe('Outbox segments', () => {
  test("oldestWaitingSeq gives each channel's lowest waiting seq, after acks, drops and a restart that reads copied-forward events", async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 16 * 1024, segmentBytes: 2048 });
    await outbox.start();
    const channelOf = (seq: number) => (seq % 3 === 0 ? 'desk-b' : 'desk-a');
    for (let i = 0; i < 300; i++) {
      const seq = outbox.nextSeq();
      await outbox.append(sampleEvent(seq, { channel: channelOf(seq) }));
    }
    // Everything of desk-b acknowledged but its last; desk-a's oldest acknowledged in turn.
    for (let seq = 1; seq <= 300; seq++) if ((channelOf(seq) === 'desk-b' && seq < 300) || (channelOf(seq) === 'desk-a' && seq < 250)) await outbox.ack(sampleEvent(seq).id);
    const expect = (o: Outbox) => {
      for (const channel of ['desk-a', 'desk-b', 'desk-c']) {
        const seqs = o.pending().filter((e) => e.channel === channel).map((e) => e.seq);
        assert.equal(o.oldestWaitingSeq(channel), seqs.length > 0 ? Math.min(...seqs) : Infinity, channel);
      }
    };
    assert.ok(outbox.droppedCounts.low + outbox.droppedCounts.medium + outbox.droppedCounts.high > 0, 'the small outbox dropped some');
    assert.ok(outbox.oldestWaitingSeq('desk-a') >= 250 && outbox.oldestWaitingSeq('desk-b') === 300, `${outbox.oldestWaitingSeq('desk-a')}, ${outbox.oldestWaitingSeq('desk-b')}`);
    expect(outbox);
    await outbox.stop();
    const reopened = new Outbox({ dir, maxBytes: 16 * 1024, segmentBytes: 2048 });
    await reopened.start();
    expect(reopened);
    for (const e of reopened.pending()) if (e.channel === 'desk-b') await reopened.ack(e.id);
    assert.equal(reopened.oldestWaitingSeq('desk-b'), Infinity, 'no event of desk-b waits');
    await reopened.stop();
  });

  test('appends, acks, seqs and reads stay valid while segments turn over after every few events', async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 16 * 1024, segmentBytes: 4096 });
    await outbox.start();
    const acked = new Set<number>();
    const inFlight: Promise<void>[] = [];
    // Nothing is awaited between calls: every operation lands while earlier ones are
    // writing, opening segments or reclaiming old ones.
    for (let i = 0; i < 3000; i++) {
      const seq = outbox.nextSeq();
      inFlight.push(outbox.append(sampleEvent(seq)));
      if (seq > 3 && seq % 4 !== 0) {
        inFlight.push(outbox.ack(sampleEvent(seq - 3).id));
        acked.add(seq - 3);
      }
      assert.ok(outbox.depth >= 0 && outbox.pending().length === outbox.depth);
    }
    const outcomes = await Promise.allSettled(inFlight);
    assert.deepEqual(outcomes.filter((o) => o.status === 'rejected'), [], 'no operation failed');
    const expected = [...Array(3000).keys()].map((i) => i + 1).filter((s) => !acked.has(s));
    const kept = outbox.pending().map((e) => e.seq);
    const dropped = outbox.droppedCounts;
    assert.equal(kept.length + dropped.low + dropped.medium + dropped.high, expected.length, 'every unacknowledged event is waiting or counted as dropped');
    assert.ok(kept.every((s) => expected.includes(s)));
    assert.ok((await segmentBytes(dir)) <= outbox.diskBound);
    await outbox.stop();

    const reopened = new Outbox({ dir, maxBytes: 16 * 1024, segmentBytes: 4096 });
    await reopened.start();
    assert.deepEqual(reopened.pending().map((e) => e.seq), kept, 'a restart reads back exactly what was waiting');
    assert.equal(reopened.nextSeq(), 3001);
    assert.deepEqual(reopened.setAside, []);
    await reopened.stop();
  });

  test('during an outage (nothing acknowledged) the segments never pass the disk bound, and drops reclaim space', async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 16 * 1024, segmentBytes: 4096 });
    await outbox.start();
    let largest = 0;
    for (let i = 0; i < 1500; i++) {
      const level = i % 3 === 0 ? 'high' : 'medium';
      await outbox.append(sampleEvent(outbox.nextSeq(), { kind: 'raise', level, previousLevel: 'low' }));
      largest = Math.max(largest, await segmentBytes(dir));
    }
    assert.ok(largest <= outbox.diskBound, `largest on disk ${largest} bytes, bound ${outbox.diskBound}`);
    assert.ok(outbox.bytes <= 16 * 1024);
    assert.ok(outbox.droppedCounts.medium > 900, 'medium raises were dropped to make room');
    assert.ok(outbox.pending().every((e) => e.level === 'high'), 'the high raises are what is kept');
    await outbox.stop();
  });

  test('a shrunk maxBytes is honoured at the next start', async () => {
    const dir = await tempDir();
    let outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    for (let i = 0; i < 200; i++) await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.stop();
    outbox = new Outbox({ dir, maxBytes: 8 * 1024, segmentBytes: 4096 });
    await outbox.start();
    assert.ok(outbox.bytes <= 8 * 1024);
    assert.ok((await segmentBytes(dir)) <= outbox.diskBound);
    assert.equal(outbox.nextSeq(), 201);
    await outbox.stop();
  });

  test('a high-water record that is not a safe integer is damage: the segment is set aside and seq continues above every published seq', async () => {
    for (const bad of ['abc', 2 ** 60, -5, 1.5]) {
      const dir = await tempDir();
      let outbox = new Outbox({ dir, maxBytes: 1 << 20 });
      await outbox.start();
      for (let i = 0; i < 5; i++) await outbox.append(sampleEvent(outbox.nextSeq()));
      await outbox.stop();
      const [segment] = await segments(dir);
      const data = await readFile(join(dir, segment!));
      await writeFile(join(dir, segment!), Buffer.concat([data, forged({ t: 'h', seq: bad })]));

      outbox = new Outbox({ dir, maxBytes: 1 << 20 });
      await outbox.start();
      assert.deepEqual(outbox.pending().map((e) => e.seq), [1, 2, 3, 4, 5], `intact events are kept (bad seq ${String(bad)})`);
      assert.equal(outbox.nextSeq(), 6, 'the seq file says 5 was the last handed out');
      await outbox.append(sampleEvent(6));
      assert.equal(outbox.setAside.length, 1);
      assert.match(outbox.setAside[0]!, /damaged\/outbox-\d+\.seg\./);
      assert.ok((await readdir(join(dir, 'damaged'))).length === 1, 'the damaged file is kept for inspection');
      await outbox.stop();
    }
  });

  test('an all-garbage segment is set aside and seq does not start again at 1', async () => {
    const dir = await tempDir();
    let outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    for (let i = 0; i < 7; i++) await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.stop();
    for (const name of await segments(dir)) await writeFile(join(dir, name), Buffer.alloc(3000, 0x5a));

    outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    assert.equal(outbox.depth, 0);
    assert.equal(outbox.nextSeq(), 8);
    assert.equal(outbox.setAside.length, 1);
    await outbox.stop();
  });

  test('with the seq file and the segments both damaged, seq continues from the current time in ms', async () => {
    const dir = await tempDir();
    let outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    for (let i = 0; i < 3; i++) await outbox.append(sampleEvent(outbox.nextSeq()));
    await outbox.stop();
    for (const name of await segments(dir)) await writeFile(join(dir, name), 'not a journal');
    await writeFile(join(dir, 'seq'), 'not a seq file either');

    const before = Date.now();
    outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    const seq = outbox.nextSeq();
    assert.ok(seq > before && seq <= Date.now() + 1, `seq ${seq} continues from the clock`);
    assert.equal(outbox.setAside.length, 2, 'the seq file and the segment are both kept aside');
    await outbox.append(sampleEvent(seq));
    await outbox.stop();
    outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    assert.equal(outbox.nextSeq(), seq + 1, 'and from there on as usual');
    await outbox.stop();
  });

  test('a damaged seq file alone costs nothing: the segments say where seq stands', async () => {
    const dir = await tempDir();
    let outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    for (let i = 0; i < 4; i++) {
      const e = sampleEvent(outbox.nextSeq());
      await outbox.append(e);
      await outbox.ack(e.id);
    }
    await outbox.stop();
    await writeFile(join(dir, 'seq'), Buffer.alloc(32));
    outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    await outbox.start();
    assert.equal(outbox.nextSeq(), 5);
    await outbox.stop();
  });

  test('calls after stop() fail with a clear message, and a stop during start-up wins', async () => {
    const dir = await tempDir();
    const outbox = new Outbox({ dir, maxBytes: 1 << 20 });
    const starting = outbox.start();
    const stopping = outbox.stop();
    await starting;
    await stopping;
    assert.throws(() => outbox.nextSeq(), /is stopped: nextSeq\(\) is not possible after stop\(\)/);
    assert.throws(() => outbox.ack('x'), /is stopped/);
  });
});
