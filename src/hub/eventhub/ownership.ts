/** A receiver on one partition of one consumer group. */
export interface PartitionReader {
  /** Owner level (epoch); undefined for a non-epoch receiver. */
  readonly epoch?: number;
  /** Ends the reader because a receiver with a higher owner level took the partition. */
  disconnect(reason: string): void;
}

export type Admission = { ok: true } | { ok: false; reason: string; quota?: true };

/** Event Hubs' limit of concurrent receivers per partition and consumer group. */
export const MAX_READERS_PER_PARTITION = 5;

/**
 * Event Hubs' owner-level (epoch) rules per consumer group and partition: a receiver with an
 * owner level at least the current one takes the partition and disconnects every other receiver;
 * one with a lower level, or without a level while an owner exists, is refused; at most five
 * receivers share a partition.
 */
export class PartitionOwnership {
  private readonly readers = new Map<string, Set<PartitionReader>>();

  admit(group: string, partition: number, reader: PartitionReader): Admission {
    const key = `${group.toLowerCase()}/${partition}`;
    let set = this.readers.get(key);
    if (!set) this.readers.set(key, (set = new Set()));
    const owner = Math.max(-1, ...[...set].map((r) => r.epoch ?? -1));
    if (reader.epoch === undefined) {
      if (owner >= 0) return { ok: false, reason: `Receiver with an owner level of ${owner} already exists; a receiver without one cannot be created.` };
      if (set.size >= MAX_READERS_PER_PARTITION) {
        return {
          ok: false,
          quota: true,
          reason: `Exceeded the maximum number of allowed receivers per partition in a consumer group which is ${MAX_READERS_PER_PARTITION}.`,
        };
      }
    } else {
      if (reader.epoch < owner) {
        return { ok: false, reason: `A receiver with a higher owner level (${owner}) already exists; owner level ${reader.epoch} is refused.` };
      }
      for (const other of [...set]) {
        set.delete(other);
        other.disconnect(`New receiver with a higher or equal owner level (${reader.epoch}) was created; this receiver is disconnected.`);
      }
    }
    set.add(reader);
    return { ok: true };
  }

  /** Disconnects every reader (the entity is gone). */
  closeAll(reason: string): void {
    const all = [...this.readers.values()].flatMap((set) => [...set]);
    this.readers.clear();
    for (const reader of all) reader.disconnect(reason);
  }

  release(group: string, partition: number, reader: PartitionReader): void {
    const key = `${group.toLowerCase()}/${partition}`;
    const set = this.readers.get(key);
    set?.delete(reader);
    if (set && set.size === 0) this.readers.delete(key);
  }
}
