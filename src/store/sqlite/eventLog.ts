import type { Db } from './database.js';
import type { EventLog, EventPosition, EventToAppend, PartitionInfo, StoredEvent } from '../eventLog.js';

interface PartitionRow {
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

export class SqliteEventLog implements EventLog {
  private readonly countStmt;
  private readonly createPartitionStmt;
  private readonly partitionStmt;
  private readonly updatePartitionStmt;
  private readonly insertStmt;
  private readonly readFromSequenceStmt;
  private readonly sequenceAtOffsetStmt;
  private readonly sequenceAtTimeStmt;
  private readonly firstSequenceStmt;
  private readonly deleteStmt;
  private readonly appendAll;

  constructor(private readonly db: Db) {
    this.countStmt = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM event_partitions');
    this.createPartitionStmt = db.prepare(
      'INSERT OR IGNORE INTO event_partitions (partition, last_sequence_number, last_offset, next_offset, last_enqueued_time) VALUES (?, -1, -1, 0, 0)',
    );
    this.partitionStmt = db.prepare<[number], PartitionRow>('SELECT * FROM event_partitions WHERE partition = ?');
    this.updatePartitionStmt = db.prepare(
      `UPDATE event_partitions SET last_sequence_number = @last_sequence_number, last_offset = @last_offset,
         next_offset = @next_offset, last_enqueued_time = @last_enqueued_time WHERE partition = @partition`,
    );
    this.insertStmt = db.prepare(
      `INSERT INTO events (partition, sequence_number, byte_offset, enqueued_time, body, system_properties, properties)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.readFromSequenceStmt = db.prepare<[number, number, number], EventRow>(
      'SELECT * FROM events WHERE partition = ? AND sequence_number >= ? ORDER BY sequence_number LIMIT ?',
    );
    this.sequenceAtOffsetStmt = db.prepare<[number, number], { s: number | null }>(
      'SELECT MIN(sequence_number) AS s FROM events WHERE partition = ? AND byte_offset >= ?',
    );
    this.sequenceAtTimeStmt = db.prepare<[number, number], { s: number | null }>(
      'SELECT MIN(sequence_number) AS s FROM events WHERE partition = ? AND enqueued_time >= ?',
    );
    this.firstSequenceStmt = db.prepare<[number], { s: number | null }>('SELECT MIN(sequence_number) AS s FROM events WHERE partition = ?');
    this.deleteStmt = db.prepare('DELETE FROM events WHERE partition = ? AND enqueued_time < ?');

    this.appendAll = db.transaction((events: EventToAppend[]): StoredEvent[] => {
      const state = new Map<number, PartitionRow>();
      const stored: StoredEvent[] = [];
      for (const e of events) {
        let p = state.get(e.partition);
        if (!p) {
          p = this.partitionStmt.get(e.partition);
          if (!p) throw new Error(`event log partition ${e.partition} does not exist`);
          state.set(e.partition, p);
        }
        const systemProperties = JSON.stringify(e.systemProperties);
        const properties = JSON.stringify(e.properties);
        const sequenceNumber = p.last_sequence_number + 1;
        const offset = p.next_offset;
        this.insertStmt.run(e.partition, sequenceNumber, offset, e.enqueuedTime, e.body, systemProperties, properties);
        p.last_sequence_number = sequenceNumber;
        p.last_offset = offset;
        // The offset advances by the stored size, so offsets are byte positions as in Event Hubs.
        p.next_offset = offset + e.body.length + systemProperties.length + properties.length;
        p.last_enqueued_time = e.enqueuedTime;
        stored.push({ ...e, sequenceNumber, offset: String(offset) });
      }
      for (const p of state.values()) this.updatePartitionStmt.run(p);
      return stored;
    });
  }

  async ensurePartitions(count: number): Promise<number> {
    const existing = this.countStmt.get()!.n;
    if (existing > 0) return existing;
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
      start = this.sequenceAtOffsetStmt.get(partition, from.inclusive ? offset : offset + 1)!.s;
    } else start = this.sequenceAtTimeStmt.get(partition, from.enqueuedTime)!.s;
    if (start === null) return [];
    return this.readFromSequenceStmt.all(partition, start, max).map(toStoredEvent);
  }

  async partitionInfo(partition: number): Promise<PartitionInfo> {
    const p = this.partitionStmt.get(partition);
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

  async deleteBefore(enqueuedTime: number): Promise<number> {
    const partitions = this.countStmt.get()!.n;
    let deleted = 0;
    for (let p = 0; p < partitions; p++) deleted += this.deleteStmt.run(p, enqueuedTime).changes;
    return deleted;
  }
}

function toStoredEvent(r: EventRow): StoredEvent {
  return {
    partition: r.partition,
    sequenceNumber: r.sequence_number,
    offset: String(r.byte_offset),
    enqueuedTime: r.enqueued_time,
    body: r.body,
    systemProperties: JSON.parse(r.system_properties) as Record<string, string>,
    properties: JSON.parse(r.properties) as Record<string, string>,
  };
}
