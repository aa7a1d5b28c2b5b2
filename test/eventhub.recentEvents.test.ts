import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { RecentEvents } from '../src/hub/eventhub/recentEvents.js';
import type { EventToAppend, StoredEvent } from '../src/store/eventLog.js';

/**
 * Live Event Hub receivers read what was just committed from memory (src/hub/eventhub/recentEvents.ts):
 * what they get must be exactly what the log on SQLite would have returned, and when memory is not
 * sure, the log answers.
 */
describe('recent events: live reads from memory answer as the log does', () => {
  let dir: string;
  let store: SqliteStore;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-recent-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
    await store.eventLog.ensurePartitions(2);
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  const event = (partition: number, properties: EventToAppend['properties'] = {}): EventToAppend => ({
    partition,
    enqueuedTime: 1_000_000 + n,
    body: Buffer.from(`event-${n++}`),
    systemProperties: { 'message-id': `m-${n}`, 'iothub-connection-device-id': 'd', 'iothub-enqueuedtime': new Date(1_000_000 + n).toISOString() },
    properties,
  });

  test('every property type reads back from memory exactly as from SQLite', async () => {
    const recent = new RecentEvents();
    const log = recent.over(store.eventLog);
    const typed: EventToAppend['properties'] = {
      text: 'a',
      empty: '',
      yes: true,
      none: null,
      n: 1.5,
      when: new Date(1_700_000_000_123),
      bytes: Buffer.from([0, 1, 255]),
      int: { type: 'int', value: 5 },
      long: { type: 'long', value: '9007199254740993' },
      uuid: { type: 'uuid', value: '0f8fad5b-d9cb-469f-a165-70867728950e' },
      symbol: { type: 'symbol', value: 'x' },
    };
    const stored = await store.eventLog.append([event(0, typed), event(0), event(1, { only: 'one' })]);
    recent.add(stored);
    const fromMemory = await log.read(0, { sequenceNumber: stored[0]!.sequenceNumber, inclusive: true }, 10);
    const fromSqlite = await store.eventLog.read(0, { sequenceNumber: stored[0]!.sequenceNumber, inclusive: true }, 10);
    assert.equal(fromMemory.length, 2);
    assert.deepEqual(fromMemory, fromSqlite);
    assert.deepEqual(await log.read(1, { sequenceNumber: stored[2]!.sequenceNumber, inclusive: true }, 10), await store.eventLog.read(1, { sequenceNumber: stored[2]!.sequenceNumber, inclusive: true }, 10));
  });

  test('it answers only inside what it holds; a gap, the head, offsets and times go to the log', async () => {
    // Room for four of these events (a ~9-byte body and the 1,024 bytes counted for the rest of one).
    const recent = new RecentEvents(() => true, 4 * 1040);
    const first = await store.eventLog.append([event(0), event(0), event(0)]);
    recent.add(first);
    const seq = first.map((e) => e.sequenceNumber);
    const bodies = (es: StoredEvent[] | undefined) => es?.map((e) => e.body.toString());
    assert.deepEqual(bodies(recent.read(0, { sequenceNumber: seq[0]! }, 10)), bodies(first.slice(1)), 'exclusive');
    assert.deepEqual(bodies(recent.read(0, { sequenceNumber: seq[0]!, inclusive: true }, 2)), bodies(first.slice(0, 2)), 'max');
    assert.deepEqual(recent.read(0, { sequenceNumber: seq[2]! }, 10), [], 'the head: nothing yet, without a query');
    assert.equal(recent.read(0, { sequenceNumber: seq[2]! + 1 }, 10), undefined, 'past the head: the log says');
    assert.equal(recent.read(0, { sequenceNumber: seq[0]! - 1, inclusive: true }, 10), undefined, 'before what it holds');
    assert.equal(recent.read(0, { offset: first[1]!.offset }, 10), undefined);
    assert.equal(recent.read(0, { enqueuedTime: 0 }, 10), undefined);
    assert.equal(recent.read(1, { sequenceNumber: 0 }, 10), undefined, 'a partition it saw nothing of');

    // An append it did not see (a gap in sequence numbers) starts that partition afresh.
    const unseen = await store.eventLog.append([event(0)]);
    const next = await store.eventLog.append([event(0)]);
    recent.add(next);
    assert.equal(recent.read(0, { sequenceNumber: seq[2]! }, 10), undefined, 'the unseen event is not skipped');
    const log = recent.over(store.eventLog);
    assert.deepEqual(bodies(await log.read(0, { sequenceNumber: seq[2]! }, 10)), bodies([...unseen, ...next]), 'the log answers instead');

    // It holds at most its capacity in bytes, the newest (trimmed to three quarters when it is passed).
    const many = await store.eventLog.append(Array.from({ length: 9 }, () => event(0)));
    recent.add(many);
    assert.equal(recent.read(0, { sequenceNumber: many[0]!.sequenceNumber, inclusive: true }, 100), undefined, 'trimmed');
    assert.equal(recent.read(0, { sequenceNumber: many[4]!.sequenceNumber, inclusive: true }, 100), undefined, 'trimmed');
    assert.deepEqual(bodies(recent.read(0, { sequenceNumber: many[5]!.sequenceNumber, inclusive: true }, 100)), bodies(many.slice(5)));
    assert.equal(recent.held().events, 4);
    assert.ok(recent.held().bytes <= 4 * 1040);
  });

  test('IoT Hub-sized messages: memory is bounded in bytes, shared by the partitions, and the newest are still read from it', async () => {
    const budget = 4 * 1024 * 1024;
    const recent = new RecentEvents(() => true, budget);
    const big = (partition: number): EventToAppend => ({ ...event(partition), body: Buffer.alloc(255 * 1024, n) });
    let lastOf: StoredEvent[] = [];
    for (let i = 0; i < 20; i++) {
      lastOf = await store.eventLog.append([big(0), big(1)]);
      recent.add(lastOf);
      assert.ok(recent.held().bytes <= budget, `${recent.held().bytes} bytes held after ${i + 1} appends`);
    }
    // 40 messages of 255 KB (10 MB) went by; what is held is the newest of each partition, up to 2 MB each.
    const held = recent.held();
    assert.ok(held.events >= 10 && held.events <= 16, `${held.events} events held`);
    for (const e of lastOf) {
      const read = recent.read(e.partition, { sequenceNumber: e.sequenceNumber - 3, inclusive: true }, 10);
      assert.equal(read?.length, 4, 'the newest four of the partition from memory');
      assert.ok(read![3]!.body.equals(e.body));
    }
    assert.equal(recent.read(0, { sequenceNumber: lastOf[0]!.sequenceNumber - 19, inclusive: true }, 10), undefined, 'the oldest went to the log');
  });

  test('retention through it empties it (events it held may be gone from the log)', async () => {
    const recent = new RecentEvents();
    const log = recent.over(store.eventLog);
    const stored = await store.eventLog.append([event(1), event(1)]);
    recent.add(stored);
    assert.ok(recent.read(1, { sequenceNumber: stored[0]!.sequenceNumber }, 10));
    assert.equal(await log.deleteBefore(0), 0, 'nothing that old');
    assert.ok(recent.read(1, { sequenceNumber: stored[0]!.sequenceNumber }, 10), 'kept: retention deleted nothing');
    assert.ok((await log.deleteBefore(Number.MAX_SAFE_INTEGER)) > 0);
    assert.equal(recent.read(1, { sequenceNumber: stored[0]!.sequenceNumber }, 10), undefined);
    assert.deepEqual(await log.read(1, { sequenceNumber: stored[0]!.sequenceNumber }, 10), []);
  });

  test('it keeps only the partitions it is told are wanted (those with live readers)', async () => {
    const listened = new Set([1]);
    const recent = new RecentEvents((p) => listened.has(p));
    const stored = await store.eventLog.append([event(0), event(1)]);
    recent.add(stored);
    assert.equal(recent.read(0, { sequenceNumber: stored[0]!.sequenceNumber, inclusive: true }, 10), undefined);
    assert.equal(recent.read(1, { sequenceNumber: stored[1]!.sequenceNumber, inclusive: true }, 10)?.length, 1);
    // A commit while nobody listens drops the partition: its head is no longer known.
    listened.delete(1);
    recent.add(await store.eventLog.append([event(1)]));
    listened.add(1);
    assert.equal(recent.read(1, { sequenceNumber: stored[1]!.sequenceNumber }, 10), undefined);
  });

  test('a body that is a slice of a bigger buffer is kept as its own bytes', () => {
    const recent = new RecentEvents();
    const chunk = Buffer.alloc(65_536, 'y');
    const body = chunk.subarray(100, 356);
    recent.add([{ partition: 0, sequenceNumber: 0, offset: '0', enqueuedTime: 1, body, systemProperties: {}, properties: {} }]);
    const [kept] = recent.read(0, { sequenceNumber: 0, inclusive: true }, 1)!;
    assert.deepEqual(kept!.body, body);
    assert.ok(kept!.body.buffer.byteLength < chunk.buffer.byteLength, 'not a view of the read buffer');
  });
});
