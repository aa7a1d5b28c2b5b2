import type { EventLog, StoredEvent } from '../../store/index.js';

/**
 * Tells live readers that a partition has new events, so that they read at once instead of
 * polling. Whoever commits appends to the event log calls `appended` after the commit.
 */
export class AppendNotifier {
  private readonly listeners = new Map<number, Set<() => void>>();

  appended(partitions: Iterable<number>): void {
    for (const p of new Set(partitions)) for (const l of [...(this.listeners.get(p) ?? [])]) l();
  }

  /** Whether a live reader listens on `partition` (what is committed there is read at once). */
  listened(partition: number): boolean {
    return (this.listeners.get(partition)?.size ?? 0) > 0;
  }

  /** Returns the function that unsubscribes. */
  subscribe(partition: number, listener: () => void): () => void {
    let set = this.listeners.get(partition);
    if (!set) this.listeners.set(partition, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }
}

/** The event log, handing each committed append to `committed` (which keeps it and wakes live readers). */
export function notifyingAppends(log: EventLog, committed: (stored: StoredEvent[]) => void): EventLog {
  return {
    entity: log.entity,
    ensurePartitions: (count) => log.ensurePartitions(count),
    append: async (events) => {
      const stored = await log.append(events);
      committed(stored);
      return stored;
    },
    read: (partition, from, max) => log.read(partition, from, max),
    partitionInfo: (partition) => log.partitionInfo(partition),
    deleteBefore: (time) => log.deleteBefore(time),
  };
}
