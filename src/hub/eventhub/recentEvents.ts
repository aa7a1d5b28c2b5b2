import type { EventLog, EventPosition, StoredEvent } from '../../store/eventLog.js';

/** Events kept per partition by default: a live receiver's reads (≤ 500 a turn) fit many times. */
const DEFAULT_CAPACITY = 2048;

/**
 * The last events committed to each partition of one log, in memory, so that live receivers (the
 * consumer at the head of a partition, which is nearly every consumer) read what was just
 * committed from here instead of SQLite: no query, no JSON decoding, the same objects for every
 * consumer group. Whoever commits calls `add` after EVERY commit to the log, in commit order
 * (src/main.ts: the built-in endpoint's appends and routing's, both through the event log writer).
 *
 * It only answers what it is sure of. A partition's events are kept contiguous by sequence number
 * up to the head (a partition not wanted at a commit is dropped, a gap resets it), so a read at the
 * head is answered 'nothing yet' without a query; a read from before the first kept event, by
 * offset or by time, goes to the log. Retention through `over(log).deleteBefore` empties it when it deleted anything.
 */
export class RecentEvents {
  private readonly partitions = new Map<number, StoredEvent[]>();

  /**
   * `wanted` says which partitions to keep events of: those with live readers (the append
   * notifier's listeners). Without one nothing is kept, which costs ingest nothing.
   */
  constructor(
    private readonly wanted: (partition: number) => boolean = () => true,
    private readonly capacity = DEFAULT_CAPACITY,
  ) {}

  add(events: readonly StoredEvent[]): void {
    for (const event of events) {
      if (!this.wanted(event.partition)) {
        // What it keeps of a partition is every event since the first kept, up to the head.
        this.partitions.delete(event.partition);
        continue;
      }
      let kept = this.partitions.get(event.partition);
      if (!kept) this.partitions.set(event.partition, (kept = []));
      const last = kept[kept.length - 1];
      if (last && event.sequenceNumber !== last.sequenceNumber + 1) kept.length = 0;
      // The body may be a slice of a socket's read buffer: a copy keeps only its own bytes alive.
      kept.push({ ...event, body: Buffer.from(event.body) });
      // Trimmed in steps, not per event: at most twice the capacity is held.
      if (kept.length >= 2 * this.capacity) kept.splice(0, kept.length - this.capacity);
    }
  }

  /** Events from `from`, as the log would return them, or undefined when only the log can say. */
  read(partition: number, from: EventPosition, max: number): StoredEvent[] | undefined {
    if (!('sequenceNumber' in from)) return undefined;
    const kept = this.partitions.get(partition);
    if (!kept || kept.length === 0) return undefined;
    const start = from.sequenceNumber + (from.inclusive ? 0 : 1);
    const index = start - kept[0]!.sequenceNumber;
    // Just past the last event kept is the head: it is told of every commit, so nothing is there yet.
    if (index < 0 || index > kept.length) return undefined;
    return kept.slice(index, index + max);
  }

  clear(): void {
    this.partitions.clear();
  }

  /** `log`, reading recent events from here first; its retention empties this. */
  over(log: EventLog): EventLog {
    return {
      entity: log.entity,
      ensurePartitions: (count) => log.ensurePartitions(count),
      append: (events) => log.append(events),
      read: async (partition, from, max) => this.read(partition, from, max) ?? log.read(partition, from, max),
      partitionInfo: (partition) => log.partitionInfo(partition),
      deleteBefore: async (time) => {
        const deleted = await log.deleteBefore(time);
        if (deleted > 0) this.clear();
        return deleted;
      },
    };
  }
}
