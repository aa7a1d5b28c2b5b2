import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { DELETE_SLICE } from '../src/store/sqlite/eventLog.js';
import { countTurns } from './support/turns.js';

/**
 * Retention on real SQLite: a sweep deletes a minute's events at once (600,000 rows at 10,000
 * messages a second), so it deletes them DELETE_SLICE at a time with turns of the event loop
 * between, and keeps what is appended meanwhile.
 */
describe('event log retention: deleted in slices, a turn of the event loop between them', () => {
  let dir: string;
  let store: SqliteStore;
  const T0 = 1_000_000;
  const OLD = DELETE_SLICE * 2 + 500;
  const events = (from: number, count: number, time: (i: number) => number) =>
    Array.from({ length: count }, (_, i) => ({
      partition: 0,
      enqueuedTime: time(from + i),
      body: Buffer.from(`e-${from + i}`),
      systemProperties: { 'message-id': `e-${from + i}` },
      properties: {},
    }));
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-retention-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
    await store.eventLog.ensurePartitions(2);
    // OLD events a millisecond apart, then one more slice's worth.
    await store.eventLog.append(events(0, OLD + DELETE_SLICE, (i) => T0 + i));
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${OLD} expired events go in ${Math.ceil(OLD / DELETE_SLICE)} slices, each in a turn of its own; the rest stay`, async () => {
    const clock = countTurns();
    const deleted = await store.eventLog.deleteBefore(T0 + OLD);
    const turns = clock.stop();
    assert.equal(deleted, OLD);
    assert.ok(turns >= Math.ceil(OLD / DELETE_SLICE) - 1, `the event loop turned ${turns} times while it deleted`);
    const info = await store.eventLog.partitionInfo(0);
    assert.equal(info.beginSequenceNumber, OLD);
    assert.equal(info.lastSequenceNumber, OLD + DELETE_SLICE - 1);
    const [first] = await store.eventLog.read(0, { sequenceNumber: 0, inclusive: true }, 1);
    assert.equal(first?.sequenceNumber, OLD);
  });

  test('everything expired: events appended between the slices are newer, and stay', async () => {
    // Three slices' worth expired: the 1 left by the test above and 2 more.
    const kept = await store.eventLog.partitionInfo(0);
    await store.eventLog.append(events(kept.lastSequenceNumber + 1, 2 * DELETE_SLICE, (i) => T0 + i));
    const before = await store.eventLog.partitionInfo(0);
    const deleting = store.eventLog.deleteBefore(T0 + 10_000_000);
    // Between two slices (the first ran synchronously within the call), as a device's message would.
    await new Promise((r) => setImmediate(r));
    await store.eventLog.append(events(before.lastSequenceNumber + 1, 3, () => T0 + 20_000_000));
    assert.equal(await deleting, 3 * DELETE_SLICE);
    const left = await store.eventLog.read(0, { sequenceNumber: 0, inclusive: true }, 10);
    assert.deepEqual(
      left.map((e) => e.sequenceNumber),
      [before.lastSequenceNumber + 1, before.lastSequenceNumber + 2, before.lastSequenceNumber + 3],
    );
  });

  test('an expiry time that is not a number deletes nothing', async () => {
    assert.equal(await store.eventLog.deleteBefore(NaN), 0);
  });
});
