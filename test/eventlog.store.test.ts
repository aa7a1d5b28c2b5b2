import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { EventLogWriter, partitionFor, startRetention } from '../src/hub/messaging/eventLogWriter.js';
import { loadConfig, ConfigError } from '../src/config/index.js';
import { openEventLogReadOnly } from '../src/store/sqlite/eventLogReader.js';
import { hiddenClassChanges } from './support/hiddenClasses.js';

/** The event log as the Event Hub-compatible endpoint (issue 4) will read it, on real SQLite. */
describe('event log: positions, partition info, group commit, retention', () => {
  let dir: string;
  let store: SqliteStore;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-eventlog-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const event = (partition: number, body: string, enqueuedTime: number) => ({
    partition,
    enqueuedTime,
    body: Buffer.from(body),
    systemProperties: { 'message-id': body },
    properties: {},
  });

  test('the partition count is fixed at creation', async () => {
    assert.equal(await store.eventLog.ensurePartitions(4), 4);
    assert.equal(await store.eventLog.ensurePartitions(8), 4);
    const info = await store.eventLog.partitionInfo(2);
    assert.deepEqual(info, { partitionId: 2, beginSequenceNumber: 0, lastSequenceNumber: -1, lastOffset: '-1', lastEnqueuedTime: 0, isEmpty: true });
  });

  test('sequence numbers and byte offsets are per partition; reads from sequence number, offset and enqueued time', async () => {
    const log = store.eventLog;
    const stored = await log.append([event(0, 'a', 1000), event(1, 'x', 1000), event(0, 'bb', 2000), event(0, 'ccc', 3000)]);
    assert.deepEqual(stored.map((e) => [e.partition, e.sequenceNumber]), [[0, 0], [1, 0], [0, 1], [0, 2]]);
    const [a, , b, c] = stored;
    assert.equal(a!.offset, '0');
    assert.ok(Number(b!.offset) > Number(a!.offset) && Number(c!.offset) > Number(b!.offset));

    const bodies = (es: { body: Buffer }[]) => es.map((e) => e.body.toString());
    assert.deepEqual(bodies(await log.read(0, { sequenceNumber: 0 }, 10)), ['bb', 'ccc'], 'exclusive by default');
    assert.deepEqual(bodies(await log.read(0, { sequenceNumber: 0, inclusive: true }, 10)), ['a', 'bb', 'ccc']);
    assert.deepEqual(bodies(await log.read(0, { sequenceNumber: 0, inclusive: true }, 2)), ['a', 'bb']);
    assert.deepEqual(bodies(await log.read(0, { offset: b!.offset, inclusive: true }, 10)), ['bb', 'ccc']);
    assert.deepEqual(bodies(await log.read(0, { offset: b!.offset }, 10)), ['ccc']);
    assert.deepEqual(bodies(await log.read(0, { enqueuedTime: 1500 }, 10)), ['bb', 'ccc']);
    assert.deepEqual(bodies(await log.read(0, { enqueuedTime: 9999 }, 10)), []);
    assert.deepEqual(await log.partitionInfo(0), {
      partitionId: 0,
      beginSequenceNumber: 0,
      lastSequenceNumber: 2,
      lastOffset: c!.offset,
      lastEnqueuedTime: 3000,
      isEmpty: false,
    });
  });

  test('an append to a missing partition commits nothing of its batch', async () => {
    const before = await store.eventLog.partitionInfo(3);
    await assert.rejects(store.eventLog.append([event(3, 'kept?', 1), event(99, 'bad', 1)]));
    assert.deepEqual(await store.eventLog.partitionInfo(3), before);
  });

  test('the writer keeps its partitions\' ends in memory: a failed transaction does not advance them, a reader elsewhere still sees the rows, dropped partitions start over', async () => {
    const logs = store.eventLogs;
    const log = logs.entity('$test/ends');
    await log.ensurePartitions(2);
    const [first] = await log.append([event(0, 'one', 1)]);
    assert.equal(first!.sequenceNumber, 0);
    // The second event fails inside the transaction (NOT NULL body): nothing of the batch counts.
    await assert.rejects(log.append([event(0, 'two', 2), { ...event(0, 'bad', 3), body: null as unknown as Buffer }]));
    const [next] = await log.append([event(0, 'three', 4)]);
    assert.equal(next!.sequenceNumber, 1, 'numbering continues from the last commit');
    // Across entities in one transaction: a failure leaves both entities' ends where they were.
    await assert.rejects(logs.appendAcross([{ entity: '$test/ends', event: event(0, 'four', 5) }, { entity: '$builtin', event: event(99, 'bad', 5) }]));
    const [after] = await logs.appendAcross([{ entity: '$test/ends', event: event(0, 'five', 6) }]);
    assert.equal(after!.sequenceNumber, 2);
    // A reader of the same file (as `fleethub monitor-events` opens it) reads the rows themselves.
    const reader = openEventLogReadOnly(join(dir, 'fleethub.db'))!;
    try {
      assert.equal((await reader.log.partitionInfo(2)).lastSequenceNumber, (await store.eventLog.partitionInfo(2)).lastSequenceNumber);
    } finally {
      reader.close();
    }
    // Partitions removed behind the view's back (routing drops an endpoint's backlog in its own
    // transaction): an append fails as for any missing partition, and partitions made anew start at 0.
    store.db.prepare(`DELETE FROM event_partitions WHERE entity = '$test/ends'`).run();
    store.db.prepare(`DELETE FROM events WHERE entity = '$test/ends'`).run();
    await assert.rejects(log.append([event(0, 'gone', 7)]), /does not exist/);
    await log.ensurePartitions(2);
    assert.equal((await log.append([event(0, 'again', 8)]))[0]!.sequenceNumber, 0);
    await logs.drop('$test/ends');
    await log.ensurePartitions(2);
    assert.equal((await log.append([event(0, 'anew', 9)]))[0]!.sequenceNumber, 0);
  });

  test('group commit: concurrent appends share transactions and each resolves with its own position', async () => {
    let transactions = 0;
    const log = store.eventLog;
    const counted = Object.assign(Object.create(log), { append: (events: never[]) => (transactions++, log.append(events)) });
    const writer = new EventLogWriter(counted, pino({ level: 'silent' }));
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => writer.append(event(2, `m${i}`, 5000 + i))));
    assert.equal(transactions, 1, 'appends made in one turn of the event loop are committed together');
    assert.deepEqual(results.map((r) => r.sequenceNumber), Array.from({ length: 500 }, (_, i) => i));
    assert.deepEqual(results.map((r) => r.body.toString()), Array.from({ length: 500 }, (_, i) => `m${i}`));
    await writer.close();
    await assert.rejects(writer.append(event(2, 'late', 1)));
  });

  test('the events an append returns share one hidden class (none made per event)', async () => {
    // A spread that gains keys (`{ ...event, sequenceNumber }`) made a class per event: ~2 µs each.
    const own = openSqliteStore(join(dir, 'shapes.db'));
    await own.eventLog.ensurePartitions(4);
    const stored = [];
    for (let i = 0; i < 20; i++) stored.push(...(await own.eventLog.append(Array.from({ length: 10 }, (_, j) => event(j % 4, `shape-${i}-${j}`, 3000 + i)))));
    own.close();
    assert.equal(stored.length, 200);
    const changes = hiddenClassChanges(stored);
    assert.ok(changes < 5, `the hidden class changed ${changes} times over 200 events`);
  });

  test('retention drops old events; sequence numbers continue', async () => {
    const now = 10_000 + 3_600_000;
    const stop = startRetention(store.eventLog, 1, pino({ level: 'silent' }), () => now);
    await new Promise((r) => setTimeout(r, 50));
    stop();
    const info = await store.eventLog.partitionInfo(0);
    assert.equal(info.isEmpty, true);
    assert.equal(info.beginSequenceNumber, 3);
    assert.equal(info.lastSequenceNumber, 2);
    const [next] = await store.eventLog.append([event(0, 'later', now)]);
    assert.equal(next!.sequenceNumber, 3);
  });

  test('positions by offset and by time are found over one index (binary search), exactly as a scan would; a clock stepping back does not reorder', async () => {
    const log = store.eventLog;
    // Times step back now and then (clamped at append).
    const times = Array.from({ length: 700 }, (_, i) => 20_000 + i * 7 - (i % 50 === 0 ? 500 : 0));
    const stored = await log.append(times.map((t, i) => event(1, 'e'.repeat(1 + (i % 13)), t)));
    const all = [...(await log.read(1, { sequenceNumber: 0, inclusive: true }, 10_000))];
    assert.equal(all.at(-1)!.sequenceNumber, stored.at(-1)!.sequenceNumber);
    assert.ok(all.length >= 700);
    for (let i = 1; i < all.length; i++) assert.ok(all[i]!.enqueuedTime >= all[i - 1]!.enqueuedTime, 'enqueued times never go back within a partition');
    assert.deepEqual(stored.map((e) => e.enqueuedTime), all.slice(-700).map((e) => e.enqueuedTime), 'the append returns the time it stored');
    const scan = (pick: (e: (typeof all)[number]) => boolean) => all.find(pick)?.sequenceNumber;
    const first = async (from: Parameters<typeof log.read>[1]) => (await log.read(1, from, 1))[0]?.sequenceNumber;
    for (const t of [0, 1000, 1001, 19_999, 20_000, 20_003, 21_234, 24_886, 24_893, 24_894, 99_999]) {
      assert.equal(await first({ enqueuedTime: t }), scan((e) => e.enqueuedTime >= t), `time ${t}`);
    }
    for (const e of [all[0]!, all[1]!, all[350]!, all.at(-2)!, all.at(-1)!]) {
      assert.equal(await first({ offset: e.offset, inclusive: true }), e.sequenceNumber, `offset ${e.offset} inclusive`);
      assert.equal(await first({ offset: e.offset }), scan((x) => Number(x.offset) > Number(e.offset)), `offset ${e.offset}`);
      assert.equal(await first({ offset: String(Number(e.offset) + 1), inclusive: true }), scan((x) => Number(x.offset) >= Number(e.offset) + 1), 'an offset between events');
    }
    // NaN is before nothing and after nothing (as it was in SQL); a retention of NaN hours is refused.
    assert.deepEqual(await log.read(1, { enqueuedTime: NaN }, 10), []);
    assert.equal(await log.deleteBefore(NaN), 0);
    assert.equal((await log.read(1, { sequenceNumber: 0, inclusive: true }, 10_000)).length, all.length);
    assert.throws(() => startRetention(log, NaN, pino({ level: 'silent' })), /retention/);
    // Retention removes a prefix, exactly the events older than the cut.
    const cut = all[400]!.enqueuedTime;
    const expected = all.filter((e) => e.enqueuedTime < cut).length;
    const before = await log.partitionInfo(1);
    const removed = await log.deleteBefore(cut);
    assert.ok(removed >= expected, 'other partitions may lose events too');
    const after = await log.partitionInfo(1);
    assert.equal(after.beginSequenceNumber, all.find((e) => e.enqueuedTime >= cut)!.sequenceNumber);
    assert.equal(after.lastSequenceNumber, before.lastSequenceNumber);
    assert.equal(await first({ enqueuedTime: 0 }), after.beginSequenceNumber);
    // The log keeps one index on its events (the two by offset and time are gone).
    const indexes = store.db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'`).all();
    assert.deepEqual(indexes.map((i) => i.name), ['events_by_sequence']);
  });

  test('the partition of a device is stable and spread', () => {
    assert.equal(partitionFor('thermostat-1', 4), partitionFor('thermostat-1', 4));
    const used = new Set(Array.from({ length: 100 }, (_, i) => partitionFor(`d${i}`, 4)));
    assert.equal(used.size, 4);
  });

  test('eventLog settings are validated', () => {
    const cfg = loadConfig({ env: { FLEETHUB_EVENT_LOG_PARTITIONS: '8' }, cwd: dir });
    assert.deepEqual(cfg.eventLog, { partitions: 8, retentionHours: 24 });
    assert.throws(() => loadConfig({ env: { FLEETHUB_EVENT_LOG_PARTITIONS: '0' }, cwd: dir }), ConfigError);
    assert.throws(() => loadConfig({ flags: { eventLog: { retentionHours: 200 } }, cwd: dir, env: {} }), /retentionHours/);
    assert.throws(() => loadConfig({ flags: { eventLog: { nope: 1 } as never }, cwd: dir, env: {} }), /eventLog.nope/);
  });
});
