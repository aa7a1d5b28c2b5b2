/**
 * The durable, partitioned log of device-to-cloud messages: what IoT Hub's built-in
 * Event Hub-compatible endpoint serves. Positions use Event Hubs' words: per-partition
 * sequence numbers (from 0, never reused) and offsets (byte positions in the partition's stream,
 * as decimal strings), plus the enqueued time.
 */

/** One message as appended; the log assigns sequence number and offset. */
export interface EventToAppend {
  partition: number;
  /** Milliseconds since the epoch. */
  enqueuedTime: number;
  body: Buffer;
  /** IoT Hub's system properties and annotations (`message-id`, `iothub-connection-device-id`, …). */
  systemProperties: Record<string, string>;
  /** Application properties the device set. */
  properties: Record<string, string>;
}

export interface StoredEvent extends EventToAppend {
  sequenceNumber: number;
  offset: string;
}

/** Where to start reading: after/at a sequence number or offset, or from an enqueued time. */
export type EventPosition =
  | { sequenceNumber: number; inclusive?: boolean }
  | { offset: string; inclusive?: boolean }
  | { enqueuedTime: number };

export interface PartitionInfo {
  partitionId: number;
  /** The first sequence number still retained (the next to be written when the partition is empty). */
  beginSequenceNumber: number;
  /** -1 when nothing has ever been written. */
  lastSequenceNumber: number;
  /** '-1' when nothing has ever been written. */
  lastOffset: string;
  /** Milliseconds since the epoch; 0 when nothing has ever been written. */
  lastEnqueuedTime: number;
  isEmpty: boolean;
}

export interface EventLog {
  /**
   * Creates `count` partitions on a new log; returns the partition count the log already has
   * (fixed at creation, as an Event Hub's is).
   */
  ensurePartitions(count: number): Promise<number>;
  /** Appends all events in one transaction: all are committed when this resolves, or none. */
  append(events: EventToAppend[]): Promise<StoredEvent[]>;
  /** Up to `max` events of a partition from a position, in sequence order. */
  read(partition: number, from: EventPosition, max: number): Promise<StoredEvent[]>;
  partitionInfo(partition: number): Promise<PartitionInfo>;
  /** Drops events enqueued before `enqueuedTime` (retention); returns how many. */
  deleteBefore(enqueuedTime: number): Promise<number>;
}
