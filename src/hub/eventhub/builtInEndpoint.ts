import { AppendNotifier } from './appends.js';
import { ConsumerGroups } from './consumerGroups.js';
import { PartitionOwnership } from './ownership.js';
import type { EventLogReader, LogPartitionInfo } from './types.js';

export interface EventHubProperties {
  name: string;
  createdAt: Date;
  partitionIds: string[];
}

/**
 * IoT Hub's built-in Event Hub-compatible endpoint: an Event Hub named after the hub whose
 * partitions are the event log's, with consumer groups and owner-level receivers.
 */
export class BuiltInEndpoint {
  readonly ownership = new PartitionOwnership();

  constructor(
    /** The Event Hub-compatible name: the hub's name. */
    readonly name: string,
    readonly partitionCount: number,
    readonly createdAt: Date,
    readonly consumerGroups: ConsumerGroups,
    readonly log: EventLogReader,
    readonly appends: AppendNotifier,
  ) {}

  properties(): EventHubProperties {
    return {
      name: this.name,
      createdAt: this.createdAt,
      partitionIds: Array.from({ length: this.partitionCount }, (_, i) => String(i)),
    };
  }

  /** undefined when `partitionId` is not one of the endpoint's partitions. */
  partition(partitionId: string): number | undefined {
    if (!/^\d+$/.test(partitionId)) return undefined;
    const n = Number(partitionId);
    return n < this.partitionCount ? n : undefined;
  }

  partitionProperties(partition: number): Promise<LogPartitionInfo> {
    return this.log.partitionInfo(partition);
  }
}
