import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from '../src/store/sqlite/database.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { openEventLogReadOnly } from '../src/store/sqlite/eventLogReader.js';

/**
 * A data directory written before the event log held many entities and typed properties: the
 * schema of every earlier migration (the event log's DDL is '100-event-log', unchanged in git since
 * it shipped), rows as the old SqliteEventLog wrote them (properties as JSON strings).
 */
function createOldDatabase(path: string): void {
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const upgrade = migrations.findIndex((m) => m.name === '102-event-log-entities');
  assert.ok(upgrade > 0);
  for (const m of migrations.slice(0, upgrade)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run(m.name, new Date().toISOString());
  }
  // The old DDL, as shipped (no entity column, partition as the key).
  const columns = db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('events')`).all().map((c) => c.name);
  assert.deepEqual(columns, ['partition', 'sequence_number', 'byte_offset', 'enqueued_time', 'body', 'system_properties', 'properties']);
  const partition = db.prepare('INSERT INTO event_partitions (partition, last_sequence_number, last_offset, next_offset, last_enqueued_time) VALUES (?, ?, ?, ?, ?)');
  const event = db.prepare('INSERT INTO events (partition, sequence_number, byte_offset, enqueued_time, body, system_properties, properties) VALUES (?, ?, ?, ?, ?, ?, ?)');
  partition.run(0, 1, 40, 80, 2000);
  partition.run(1, -1, -1, 0, 0);
  event.run(0, 0, 0, 1000, Buffer.from('old-0'), JSON.stringify({ 'message-id': 'm0', 'iothub-connection-device-id': 'd1' }), JSON.stringify({ temp: '21.5' }));
  event.run(0, 1, 40, 2000, Buffer.from('old-1'), JSON.stringify({ 'message-id': 'm1' }), JSON.stringify({ alert: 'true' }));
  db.close();
}

describe('event log migration: an existing data directory after the upgrade', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-eventlog-migration-'));
    createOldDatabase(join(dir, 'fleethub.db'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('old rows read as the built-in endpoint\'s, positions continue, and other entities stay apart', async () => {
    const store = openSqliteStore(join(dir, 'fleethub.db'));
    try {
      const log = store.eventLog;
      assert.equal(await log.ensurePartitions(4), 2, 'the partition count survives');
      const events = await log.read(0, { sequenceNumber: -1 }, 10);
      assert.deepEqual(
        events.map((e) => [e.sequenceNumber, e.offset, e.enqueuedTime, e.body.toString(), e.systemProperties['message-id'], e.properties]),
        [
          [0, '0', 1000, 'old-0', 'm0', { temp: '21.5' }],
          [1, '40', 2000, 'old-1', 'm1', { alert: 'true' }],
        ],
      );
      assert.deepEqual(await log.partitionInfo(0), { partitionId: 0, beginSequenceNumber: 0, lastSequenceNumber: 1, lastOffset: '40', lastEnqueuedTime: 2000, isEmpty: false });
      assert.deepEqual((await log.read(0, { offset: '40', inclusive: true }, 10)).map((e) => e.sequenceNumber), [1]);

      const [next] = await log.append([{ partition: 0, enqueuedTime: 3000, body: Buffer.from('new'), systemProperties: {}, properties: { n: 7, ok: false, at: new Date(5000), raw: Buffer.from([1, 2]), id: { type: 'long', value: 42 } } }]);
      assert.equal(next!.sequenceNumber, 2);
      assert.equal(next!.offset, '80');

      // Another entity of the same log: its own partitions and sequence numbers.
      const other = store.eventLogs.entity('ns/orders');
      assert.equal(await other.ensurePartitions(3), 3);
      const [o] = await other.append([{ partition: 0, enqueuedTime: 3000, body: Buffer.from('x'), systemProperties: {}, properties: {} }]);
      assert.equal(o!.sequenceNumber, 0);
      assert.equal((await log.partitionInfo(0)).lastSequenceNumber, 2);
      assert.equal(await other.deleteBefore(4000), 1);
      assert.equal((await log.read(0, { sequenceNumber: -1 }, 10)).length, 3, "retention of one entity leaves the others' events");
      await store.eventLogs.drop('ns/orders');
      assert.equal(await other.ensurePartitions(5), 5, 'a dropped entity is gone');
    } finally {
      store.close();
    }
    // Reopened: typed properties come back with their types.
    const again = openSqliteStore(join(dir, 'fleethub.db'));
    try {
      const [e] = await again.eventLog.read(0, { sequenceNumber: 2, inclusive: true }, 1);
      assert.deepEqual(e!.properties, { n: 7, ok: false, at: new Date(5000), raw: Buffer.from([1, 2]), id: { type: 'long', value: 42 } });
    } finally {
      again.close();
    }
    // `fleethub monitor-events` reads the migrated log.
    const reader = openEventLogReadOnly(join(dir, 'fleethub.db'));
    assert.ok(reader);
    assert.equal(reader.partitions(), 2);
    reader.close();
  });
});
