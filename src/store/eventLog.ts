/**
 * The durable, partitioned event log: one engine for every Event Hub Fleethub serves, the hub's
 * built-in Event Hub-compatible endpoint and the event hubs of local Event Hubs namespaces. The
 * log holds many entities, each with its own partitions (keyed by entity and partition). Positions
 * use Event Hubs' words: per-partition sequence numbers (from 0, never reused) and offsets (byte
 * positions in the partition's stream, as decimal strings), plus the enqueued time.
 */

/** The entity key of a hub's built-in endpoint (namespace event hubs use `{namespace}/{eventhub}`). */
export const BUILT_IN_ENTITY = '$builtin';

/**
 * AMQP's exactly-typed scalars that JSON and JavaScript have no own type for: the numeric types
 * (so that an `int` goes back out as an `int`, a `long` as a `long`), `uuid`, `symbol`, `char`.
 * 64-bit values beyond 2^53 are kept as decimal strings.
 */
export interface TypedScalar {
  type: 'byte' | 'short' | 'int' | 'long' | 'ubyte' | 'ushort' | 'uint' | 'ulong' | 'float' | 'double' | 'uuid' | 'symbol' | 'char';
  value: number | string;
}

/**
 * A property value with its type kept: strings, booleans, null, plain numbers (the encoder picks
 * the wire type), timestamps (Date), binary (Buffer), and exactly typed scalars.
 */
export type PropertyValue = string | number | boolean | null | Date | Buffer | TypedScalar;

/** A property value as text (IoT Hub's string-only surfaces); undefined for null. */
export function propertyText(v: PropertyValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'object') return String(v.value);
  return String(v);
}

/** Every value of a property map as text (nulls left out). */
export function propertiesText(props: Record<string, PropertyValue>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) {
    const text = propertyText(v);
    if (text !== undefined) out[k] = text;
  }
  return out;
}

/** One message as appended; the log assigns sequence number and offset. */
export interface EventToAppend {
  partition: number;
  /** Milliseconds since the epoch. */
  enqueuedTime: number;
  body: Buffer;
  /**
   * System properties and annotations: IoT Hub's (`message-id`, `iothub-connection-device-id`, …)
   * or, for a namespace's event hub, the AMQP properties section's fields and the message
   * annotations the sender set (`x-opt-partition-key`, …).
   */
  systemProperties: Record<string, PropertyValue>;
  /**
   * `JSON.stringify(systemProperties)`, where every value is a string and the sender built the text
   * for less than the log would (telemetry: a connection's part encoded once): a map of strings is
   * its own JSON in the log, which then stores this text as it is. The sender answers for it being
   * exactly that text (test/telemetry.systemProperties.test.ts).
   */
  systemPropertiesJson?: string;
  /** Application properties as the sender typed them. */
  properties: Record<string, PropertyValue>;
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

/** One entity's partitions of the log. */
export interface EventLog {
  /** The entity key. */
  readonly entity: string;
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

/** The log of every entity. */
export interface EventLogs {
  /** One entity's view (its partitions exist once `ensurePartitions` ran). */
  entity(key: string): EventLog;
  /** Drops an entity's partitions and events (its event hub was deleted). */
  drop(key: string): Promise<void>;
  /**
   * Appends each event to its entity, all in ONE transaction: every one is committed when this
   * resolves, or none (routing writes a message to the built-in endpoint and to custom endpoints'
   * backlogs together). Results are in the order given.
   */
  appendAcross(entries: { entity: string; event: EventToAppend }[]): Promise<StoredEvent[]>;
}
