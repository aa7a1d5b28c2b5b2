/**
 * What the Event Hub-compatible endpoint reads: the device-to-cloud event log (owned by the
 * telemetry side, src/store/eventLog.ts). Declared here in the reader's own words, structurally
 * a subset of that store's interface, so that this area depends only on what it uses.
 */
export interface LoggedEvent {
  partition: number;
  sequenceNumber: number;
  offset: string;
  /** Milliseconds since the epoch. */
  enqueuedTime: number;
  body: Buffer;
  systemProperties: Record<string, string>;
  properties: Record<string, string>;
}

export type LogPosition =
  | { sequenceNumber: number; inclusive?: boolean }
  | { offset: string; inclusive?: boolean }
  | { enqueuedTime: number };

export interface LogPartitionInfo {
  partitionId: number;
  beginSequenceNumber: number;
  lastSequenceNumber: number;
  lastOffset: string;
  lastEnqueuedTime: number;
  isEmpty: boolean;
}

export interface EventLogReader {
  read(partition: number, from: LogPosition, max: number): Promise<LoggedEvent[]>;
  partitionInfo(partition: number): Promise<LogPartitionInfo>;
}
