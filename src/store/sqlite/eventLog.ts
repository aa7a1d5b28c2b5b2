import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Db } from './database.js';
import { BUILT_IN_ENTITY, type EventLog, type EventLogs, type EventPosition, type EventToAppend, type PartitionInfo, type StoredEvent } from '../eventLog.js';
import { decodeProperties, encodeProperties } from './propertyJson.js';

/**
 * Most events one retention DELETE removes (a few milliseconds of SQLite) before the event loop
 * gets a turn. Exported for tests.
 */
export const DELETE_SLICE = 2000;

interface PartitionRow {
  entity?: string;
  partition: number;
  last_sequence_number: number;
  last_offset: number;
  next_offset: number;
  last_enqueued_time: number;
}

interface EventRow {
  partition: number;
  sequence_number: number;
  byte_offset: number;
  enqueued_time: number;
  body: Buffer;
  system_properties: string;
  properties: string;
}

/** The log of every entity in one database: views per entity share its tables. */
export class SqliteEventLogs implements EventLogs {
  private readonly views = new Map<string, SqliteEventLog>();
  private readonly dropAll;
  private readonly appendAll;

  constructor(private readonly db: Db) {
    const dropEvents = db.prepare<[string]>('DELETE FROM events WHERE entity = ?');
    const dropPartitions = db.prepare<[string]>('DELETE FROM event_partitions WHERE entity = ?');
    this.dropAll = db.transaction((key: string) => {
      dropEvents.run(key);
      dropPartitions.run(key);
    });
    this.appendAll = db.transaction((entries: { entity: string; event: EventToAppend }[]) => {
      // One append per entity (each keeps its partitions' numbering), inside this one transaction.
      const byEntity = new Map<string, number[]>();
      entries.forEach((e, i) => {
        const list = byEntity.get(e.entity);
        if (list) list.push(i);
        else byEntity.set(e.entity, [i]);
      });
      const out: StoredEvent[] = new Array(entries.length);
      const ends: { view: SqliteEventLog; ends: PartitionRow[] }[] = [];
      for (const [key, indexes] of byEntity) {
        const view = this.entity(key);
        const appended = view.appendInTransaction(indexes.map((i) => entries[i]!.event));
        indexes.forEach((i, j) => (out[i] = appended.stored[j]!));
        ends.push({ view, ends: appended.ends });
      }
      return { out, ends };
    });
  }

  async appendAcross(entries: { entity: string; event: EventToAppend }[]): Promise<StoredEvent[]> {
    if (entries.length === 0) return [];
    const { out, ends } = this.appendAll(entries);
    // Committed: each view starts its next append where this one ended.
    for (const e of ends) e.view.committed(e.ends);
    return out;
  }

  entity(key: string): SqliteEventLog {
    let view = this.views.get(key);
    if (!view) this.views.set(key, (view = new SqliteEventLog(this.db, key)));
    return view;
  }

  async drop(key: string): Promise<void> {
    this.dropAll(key);
    this.views.get(key)?.forget();
  }
}

/** One entity's partitions (the built-in endpoint's unless another key is given). */
export class SqliteEventLog implements EventLog {
  private readonly countStmt;
  private readonly createPartitionStmt;
  private readonly partitionStmt;
  private readonly updatePartitionStmt;
  private readonly insertStmt;
  private readonly readFromSequenceStmt;
  private readonly positionStmt;
  private readonly firstSequenceStmt;
  private readonly deleteBelowStmt;
  private readonly firstAtLeast: (partition: number, column: 'offset' | 'time', target: number) => number | null;
  private readonly appendRows: (events: EventToAppend[]) => { stored: StoredEvent[]; ends: PartitionRow[] };
  private readonly appendAll: (events: EventToAppend[]) => StoredEvent[];
  /**
   * Each partition's end (last sequence number, offsets, time) as this view's last commit left it.
   * This process is the log's one writer (readers elsewhere open it read-only and never append),
   * so an append needs not read the partition's row back first. Empty in a reader.
   */
  private readonly ends = new Map<number, PartitionRow>();

  constructor(
    private readonly db: Db,
    readonly entity: string = BUILT_IN_ENTITY,
  ) {
    const e = entity;
    const countStmt = db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM event_partitions WHERE entity = ?');
    this.countStmt = { get: () => countStmt.get(e) };
    const createPartitionStmt = db.prepare<[string, number]>(
      'INSERT OR IGNORE INTO event_partitions (entity, partition, last_sequence_number, last_offset, next_offset, last_enqueued_time) VALUES (?, ?, -1, -1, 0, 0)',
    );
    this.createPartitionStmt = { run: (p: number) => createPartitionStmt.run(e, p) };
    const partitionStmt = db.prepare<[string, number], PartitionRow>('SELECT * FROM event_partitions WHERE entity = ? AND partition = ?');
    this.partitionStmt = { get: (p: number) => partitionStmt.get(e, p) };
    const updatePartitionStmt = db.prepare(
      `UPDATE event_partitions SET last_sequence_number = @last_sequence_number, last_offset = @last_offset,
         next_offset = @next_offset, last_enqueued_time = @last_enqueued_time WHERE entity = @entity AND partition = @partition`,
    );
    this.updatePartitionStmt = {
      run: (p: PartitionRow) =>
        updatePartitionStmt.run({
          last_sequence_number: p.last_sequence_number,
          last_offset: p.last_offset,
          next_offset: p.next_offset,
          last_enqueued_time: p.last_enqueued_time,
          entity: e,
          partition: p.partition,
        }),
    };
    const insertStmt = db.prepare(
      `INSERT INTO events (entity, partition, sequence_number, byte_offset, enqueued_time, body, system_properties, properties)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertStmt = {
      run: (p: number, seq: number, offset: number, time: number, body: Buffer, sys: string, props: string) => insertStmt.run(e, p, seq, offset, time, body, sys, props),
    };
    const readFromSequenceStmt = db.prepare<[string, number, number, number], EventRow>(
      'SELECT * FROM events WHERE entity = ? AND partition = ? AND sequence_number >= ? ORDER BY sequence_number LIMIT ?',
    );
    this.readFromSequenceStmt = { all: (p: number, seq: number, max: number) => readFromSequenceStmt.all(e, p, seq, max) };
    // Offsets and enqueued times grow with the sequence number within a partition (appends are
    // in order, times clamped to never go back; deletes remove a prefix, so the sequence numbers
    // present are contiguous): finding a position by offset or time is a binary search over the
    // one index, by sequence number. Two more indexes cost every append ~60% more in SQLite alone
    // (7.8 against 4.8 µs of CPU per telemetry-sized row, 150 rows per transaction).
    const positionStmt = db.prepare<[string, number, number], { o: number; t: number }>(
      'SELECT byte_offset AS o, enqueued_time AS t FROM events WHERE entity = ? AND partition = ? AND sequence_number = ?',
    );
    this.positionStmt = { get: (p: number, seq: number) => positionStmt.get(e, p, seq) };
    const firstSequenceStmt = db.prepare<[string, number], { s: number | null }>('SELECT MIN(sequence_number) AS s FROM events WHERE entity = ? AND partition = ?');
    this.firstSequenceStmt = { get: (p: number) => firstSequenceStmt.get(e, p) };
    const deleteBelowStmt = db.prepare<[string, number, number]>('DELETE FROM events WHERE entity = ? AND partition = ? AND sequence_number < ?');
    this.deleteBelowStmt = { run: (p: number, seq: number) => deleteBelowStmt.run(e, p, seq) };
    // One read transaction: a reader in another process (fleethub monitor-events) sees one snapshot.
    this.firstAtLeast = db.transaction((partition: number, column: 'offset' | 'time', target: number): number | null => {
      // Nothing is at or after NaN (as in SQL, where it binds as NULL).
      if (Number.isNaN(target)) return null;
      const first = this.firstSequenceStmt.get(partition)!.s;
      const last = this.partitionStmt.get(partition)?.last_sequence_number;
      if (first === null || last === undefined || last < first) return null;
      const value = (seq: number): number => {
        const row = this.positionStmt.get(partition, seq);
        // A gap (rows written before deletes were prefixes only) reads as 'not yet'.
        return row === undefined ? -Infinity : column === 'offset' ? row.o : row.t;
      };
      if (value(last) < target) return null;
      let lo = first;
      let hi = last;
      while (lo < hi) {
        const mid = lo + Math.floor((hi - lo) / 2);
        if (value(mid) >= target) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    });

    this.appendRows = (events: EventToAppend[]): { stored: StoredEvent[]; ends: PartitionRow[] } => {
      const state = new Map<number, PartitionRow>();
      const stored: StoredEvent[] = [];
      for (const e of events) {
        let p = state.get(e.partition);
        if (!p) {
          // A copy: the cache changes only once this transaction committed.
          const known = this.ends.get(e.partition);
          p = known ? { ...known } : this.partitionStmt.get(e.partition);
          if (!p) throw new Error(`event log partition ${e.partition} does not exist`);
          state.set(e.partition, p);
        }
        const systemProperties = e.systemPropertiesJson ?? encodeProperties(e.systemProperties);
        const properties = encodeProperties(e.properties);
        const sequenceNumber = p.last_sequence_number + 1;
        const offset = p.next_offset;
        // Enqueued times never go back within a partition (a clock stepping back does not reorder
        // the log), which is what lets positions by time be found by binary search.
        const enqueuedTime = e.enqueuedTime < p.last_enqueued_time ? p.last_enqueued_time : e.enqueuedTime;
        this.insertStmt.run(e.partition, sequenceNumber, offset, enqueuedTime, e.body, systemProperties, properties);
        p.last_sequence_number = sequenceNumber;
        p.last_offset = offset;
        // The offset advances by the stored size, so offsets are byte positions as in Event Hubs.
        p.next_offset = offset + e.body.length + systemProperties.length + properties.length;
        p.last_enqueued_time = enqueuedTime;
        // Field by field, not `{ ...e, sequenceNumber, … }`: a spread that gains keys gets a hidden
        // class of its own on every call in V8 (~2 µs per event; src/core/objects.ts).
        stored.push({
          partition: e.partition,
          enqueuedTime,
          body: e.body,
          systemProperties: e.systemProperties,
          properties: e.properties,
          sequenceNumber,
          offset: String(offset),
        });
      }
      const ends = [...state.values()];
      for (const p of ends) {
        // No row to update: the partition was dropped since it was cached (the transaction rolls back).
        if (this.updatePartitionStmt.run(p).changes === 0) throw new Error(`event log partition ${p.partition} does not exist`);
      }
      return { stored, ends };
    };
    const appendAll = db.transaction(this.appendRows);
    this.appendAll = (events: EventToAppend[]): StoredEvent[] => {
      const { stored, ends } = appendAll(events);
      this.committed(ends);
      return stored;
    };
  }

  /**
   * The append's writes, for a caller that already holds the transaction (SqliteEventLogs.appendAcross),
   * which hands `ends` to `committed` once that transaction committed.
   */
  appendInTransaction(events: EventToAppend[]): { stored: StoredEvent[]; ends: PartitionRow[] } {
    return this.appendRows(events);
  }

  /** The entity's partitions were dropped: nothing cached of them holds. */
  forget(): void {
    this.ends.clear();
  }

  /** The partitions' ends after a commit: the next append starts there without reading them back. */
  committed(ends: PartitionRow[]): void {
    for (const p of ends) this.ends.set(p.partition, p);
  }

  async ensurePartitions(count: number): Promise<number> {
    const existing = this.countStmt.get()!.n;
    if (existing > 0) return existing;
    // Partitions dropped and created anew start over.
    this.forget();
    this.db.transaction(() => {
      for (let i = 0; i < count; i++) this.createPartitionStmt.run(i);
    })();
    return count;
  }

  async append(events: EventToAppend[]): Promise<StoredEvent[]> {
    return events.length === 0 ? [] : this.appendAll(events);
  }

  async read(partition: number, from: EventPosition, max: number): Promise<StoredEvent[]> {
    let start: number | null;
    if ('sequenceNumber' in from) start = from.sequenceNumber + (from.inclusive ? 0 : 1);
    else if ('offset' in from) {
      const offset = Number(from.offset);
      start = this.firstAtLeast(partition, 'offset', from.inclusive ? offset : offset + 1);
    } else start = this.firstAtLeast(partition, 'time', from.enqueuedTime);
    if (start === null) return [];
    return this.readFromSequenceStmt.all(partition, start, max).map(toStoredEvent);
  }

  async partitionInfo(partition: number): Promise<PartitionInfo> {
    const p = this.ends.get(partition) ?? this.partitionStmt.get(partition);
    if (!p) throw new Error(`event log partition ${partition} does not exist`);
    const first = this.firstSequenceStmt.get(partition)!.s;
    return {
      partitionId: partition,
      beginSequenceNumber: first ?? p.last_sequence_number + 1,
      lastSequenceNumber: p.last_sequence_number,
      lastOffset: String(p.last_offset),
      lastEnqueuedTime: p.last_enqueued_time,
      isEmpty: first === null,
    };
  }

  /**
   * Deletes every event enqueued before `enqueuedTime`, `DELETE_SLICE` at a time with a turn of the
   * event loop between slices: retention sweeps a minute's events at once, 600,000 rows at 10,000
   * messages a second, and one DELETE of them held the hub's one thread for seconds.
   */
  async deleteBefore(enqueuedTime: number): Promise<number> {
    if (Number.isNaN(enqueuedTime)) return 0;
    const partitions = this.countStmt.get()!.n;
    // Partitions are numbered 0..n-1.
    let deleted = 0;
    for (let p = 0; p < partitions; p++) {
      // Where the events to keep begin, fixed before the first slice: what is appended while the
      // slices run is newer still (enqueued times never go back within a partition).
      const keep = this.firstAtLeast(p, 'time', enqueuedTime) ?? this.partitionEnd(p);
      if (keep !== undefined) deleted += await this.deleteBelow(p, keep);
    }
    return deleted;
  }

  /**
   * Deletes the partition's events numbered below `sequenceNumber`, `DELETE_SLICE` per statement
   * from the oldest, a turn of the event loop between (retention above; a routing endpoint's
   * delivered backlog). Returns how many.
   */
  async deleteBelow(partition: number, sequenceNumber: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const first = this.firstSequenceStmt.get(partition)!.s;
      if (first === null || first >= sequenceNumber) return deleted;
      const below = Math.min(sequenceNumber, first + DELETE_SLICE);
      deleted += this.deleteBelowStmt.run(partition, below).changes;
      if (below >= sequenceNumber) return deleted;
      await nextTurn();
    }
  }

  /** The sequence number after the partition's last event (undefined: no such partition). */
  private partitionEnd(partition: number): number | undefined {
    const p = this.ends.get(partition) ?? this.partitionStmt.get(partition);
    return p === undefined ? undefined : p.last_sequence_number + 1;
  }
}

function toStoredEvent(r: EventRow): StoredEvent {
  return {
    partition: r.partition,
    sequenceNumber: r.sequence_number,
    offset: String(r.byte_offset),
    enqueuedTime: r.enqueued_time,
    body: r.body,
    systemProperties: decodeProperties(r.system_properties),
    properties: decodeProperties(r.properties),
  };
}
