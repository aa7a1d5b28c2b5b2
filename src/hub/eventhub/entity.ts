import type { AppendNotifier } from './appends.js';
import type { PartitionOwnership } from './ownership.js';
import type { EventLogReader, LogPartitionInfo } from './types.js';

export interface EventHubProperties {
  name: string;
  createdAt: Date;
  partitionIds: string[];
}

/**
 * What Event Hubs' AMQP links serve: one Event Hub's partitions, consumer groups and owner-level
 * receivers. The hub's built-in endpoint is one; each event hub of a local namespace another;
 * both are entities of the one event log.
 */
export interface EventHubEntity {
  readonly name: string;
  readonly partitionCount: number;
  readonly ownership: PartitionOwnership;
  readonly log: EventLogReader;
  readonly appends: AppendNotifier;
  /** The group's canonical name, or undefined when there is no such consumer group. */
  consumerGroup(name: string): Promise<string | undefined>;
  properties(): EventHubProperties;
  /** undefined when `partitionId` is not one of the entity's partitions. */
  partition(partitionId: string): number | undefined;
  partitionProperties(partition: number): Promise<LogPartitionInfo>;
}

/** A partition id as a number, when it names one of `count` partitions. */
export function partitionNumber(partitionId: string, count: number): number | undefined {
  if (!/^\d+$/.test(partitionId)) return undefined;
  const n = Number(partitionId);
  return n < count ? n : undefined;
}
