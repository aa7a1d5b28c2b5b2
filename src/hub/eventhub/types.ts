/**
 * What the Event Hub-compatible endpoint reads: the device-to-cloud event log (owned by the
 * telemetry side, src/store/eventLog.ts), named in the reader's words and narrowed with Pick to
 * the part it uses, so this area depends only on that.
 */
import type { EventLog, EventPosition, PartitionInfo, StoredEvent } from '../../store/eventLog.js';

export type LoggedEvent = StoredEvent;
export type LogPosition = EventPosition;
export type LogPartitionInfo = PartitionInfo;
export type EventLogReader = Pick<EventLog, 'read' | 'partitionInfo'>;
