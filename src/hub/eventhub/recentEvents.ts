import type { EventLog, EventPosition, StoredEvent } from '../../store/eventLog.js';

/**
 * Memory the kept events may take in all, by default: ~52,000 telemetry-sized events (a 256-byte
 * body and IoT Hub's system properties), five seconds of a hub taking 10,000 messages a second, so a
 * consumer that falls that far behind still reads from here. Counted in bytes, not events: IoT Hub's
 * messages are up to 256 KB, and the 2,048-4,096 events per partition kept before were 0.5-1 GiB of those.
 */
export const DEFAULT_RECENT_EVENTS_BYTES = 64 * 1024 * 1024;

/**
 * What a kept event costs beyond its body: the object, its system properties (and their JSON) and
 * application properties; measured on the V8 heap for telemetry (1,013 bytes an event over 100,000).
 */
const EVENT_OVERHEAD_BYTES = 1024;

const costOf = (event: StoredEvent) => event.body.length + EVENT_OVERHEAD_BYTES;

interface Kept {
  events: StoredEvent[];
  bytes: number;
}

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
  private readonly partitions = new Map<number, Kept>();

  /**
   * `wanted` says which partitions to keep events of: those with live readers (the append
   * notifier's listeners). Without one nothing is kept, which costs ingest nothing.
   */
  constructor(
    private readonly wanted: (partition: number) => boolean = () => true,
    private readonly capacityBytes = DEFAULT_RECENT_EVENTS_BYTES,
  ) {}

  add(events: readonly StoredEvent[]): void {
    for (const event of events) {
      if (!this.wanted(event.partition)) {
        // What it keeps of a partition is every event since the first kept, up to the head.
        this.partitions.delete(event.partition);
        continue;
      }
      let kept = this.partitions.get(event.partition);
      if (!kept) this.partitions.set(event.partition, (kept = { events: [], bytes: 0 }));
      const last = kept.events[kept.events.length - 1];
      if (last && event.sequenceNumber !== last.sequenceNumber + 1) {
        kept.events.length = 0;
        kept.bytes = 0;
      }
      // The body may be a slice of a socket's read buffer: a copy keeps only its own bytes alive.
      kept.events.push({ ...event, body: Buffer.from(event.body) });
      kept.bytes += costOf(event);
      // Each partition kept gets an equal share; trimmed in steps (a quarter of the share), not per event.
      const share = this.capacityBytes / this.partitions.size;
      if (kept.bytes > share) this.trim(kept, share * 0.75);
    }
  }

  /** Drops the oldest of `kept` until it holds at most `bytes` (the newest event always stays). */
  private trim(kept: Kept, bytes: number): void {
    let drop = 0;
    while (drop < kept.events.length - 1 && kept.bytes > bytes) kept.bytes -= costOf(kept.events[drop++]!);
    kept.events.splice(0, drop);
  }

  /** What is held: events and their estimated bytes, over every partition. */
  held(): { events: number; bytes: number } {
    let events = 0;
    let bytes = 0;
    for (const k of this.partitions.values()) {
      events += k.events.length;
      bytes += k.bytes;
    }
    return { events, bytes };
  }

  /** Events from `from`, as the log would return them, or undefined when only the log can say. */
  read(partition: number, from: EventPosition, max: number): StoredEvent[] | undefined {
    if (!('sequenceNumber' in from)) return undefined;
    const kept = this.partitions.get(partition)?.events;
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
