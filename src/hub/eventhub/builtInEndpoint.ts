import { AppendNotifier } from './appends.js';
import { ConsumerGroups } from './consumerGroups.js';
import { PartitionOwnership } from './ownership.js';
import type { EventLogReader, LogPartitionInfo } from './types.js';
import { partitionNumber, type EventHubEntity, type EventHubProperties } from './entity.js';

export type { EventHubProperties } from './entity.js';

/**
 * IoT Hub's built-in Event Hub-compatible endpoint: an Event Hub named after the hub whose
 * partitions are the event log's, with consumer groups and owner-level receivers.
 */
export class BuiltInEndpoint implements EventHubEntity {
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

  consumerGroup(name: string): Promise<string | undefined> {
    return this.consumerGroups.find(name);
  }

  properties(): EventHubProperties {
    return {
      name: this.name,
      createdAt: this.createdAt,
      partitionIds: Array.from({ length: this.partitionCount }, (_, i) => String(i)),
    };
  }

  /** undefined when `partitionId` is not one of the endpoint's partitions. */
  partition(partitionId: string): number | undefined {
    return partitionNumber(partitionId, this.partitionCount);
  }

  partitionProperties(partition: number): Promise<LogPartitionInfo> {
    return this.log.partitionInfo(partition);
  }
}
