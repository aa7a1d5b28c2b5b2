/** Routing to an Event Hub through the unmodified @azure/event-hubs producer. */
import { EventHubProducerClient, type EventDataBatch } from '@azure/event-hubs';
import type { EndpointSettings, EndpointSink, RoutedMessage, SinkContext } from '../../hub/routing/types.js';
import { SinkError } from '../../hub/routing/types.js';
import { amqpClientOptions, amqpMessage, amqpTarget, entityNameOf, deviceIdOf } from './amqpTarget.js';
import { partitionForKey } from '../../core/partitionKey.js';
import { sinkError } from './errors.js';

/** How long the event hub's partition count is trusted before it is asked again (as the SDK's buffered producer does). */
const PARTITIONS_REFRESH_MS = 60_000;

export class EventHubsSink implements EndpointSink {
  private producer?: EventHubProducerClient;
  private partitions?: { count: number; at: number };
  private readonly what: string;

  constructor(
    private readonly endpoint: EndpointSettings,
    private readonly context: SinkContext,
    private readonly caPem: string,
    private readonly webSocketPort: () => number = () => 443,
  ) {
    this.what = `Sending to event hub '${entityNameOf(endpoint, context)}' of endpoint '${endpoint.name}'`;
  }

  private client(): EventHubProducerClient {
    if (this.producer) return this.producer;
    const target = amqpTarget(this.endpoint, this.context);
    const options = amqpClientOptions(target, this.caPem, this.webSocketPort()) as never;
    this.producer =
      target.kind === 'key'
        ? new EventHubProducerClient(target.connectionString, target.entityPath, options)
        : new EventHubProducerClient(target.host, target.entityPath, target.credential, options);
    return this.producer;
  }

  /** Connects, and opens the links a delivery uses (management: the partition count; the sender). */
  async open(): Promise<void> {
    const producer = this.client();
    await this.partitionCount(producer);
    await producer.createBatch();
  }

  /** The event hub's partition count (asked once a minute: a partition count may grow). */
  private async partitionCount(producer: EventHubProducerClient): Promise<number> {
    const now = Date.now();
    if (!this.partitions || now - this.partitions.at > PARTITIONS_REFRESH_MS) {
      this.partitions = { count: (await producer.getPartitionIds()).length, at: now };
    }
    return this.partitions.count;
  }

  /**
   * IoT Hub sends with the device id as partition key, so each device's messages stay in order in
   * one partition, and consumers see the device id as `partitionKey`. Sending one batch per device
   * would cost one AMQP transfer (and one round trip) per device per delivery, about one per
   * message with many devices; instead messages are grouped by the partition their key hashes to
   * (the service's hash, as the SDK's buffered producer computes it: `partitionForKey`), order kept
   * within each group, and each group goes in as few batches as fit. Every message carries its own
   * `x-opt-partition-key`; the batch envelope carries its first message's (the SDK copies the first
   * message's annotations), which the event hub hashes to the same partition as every other key of
   * the batch, so each message lands where a send with its own key would have put it. Messages
   * without a device go round robin in batches of their own. The groups are sent concurrently,
   * each group's batches in order; every batch is built before any is sent, so that a message too
   * large for the event hub fails the delivery before anything went out.
   */
  async deliver(messages: RoutedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      const producer = this.client();
      const partitions = await this.partitionCount(producer);
      /** By partition (-1: no partition key). */
      const groups = new Map<number, RoutedMessage[]>();
      const keys = new Map<RoutedMessage, string>();
      const partitionOf = new Map<string, number>();
      for (const m of messages) {
        const key = deviceIdOf(m);
        let partition = -1;
        if (key !== undefined) {
          keys.set(m, key);
          partition = partitionOf.get(key) ?? partitionForKey(key, partitions);
          partitionOf.set(key, partition);
        }
        let g = groups.get(partition);
        if (!g) groups.set(partition, (g = []));
        g.push(m);
      }
      const queues: EventDataBatch[][] = [];
      for (const group of groups.values()) {
        const queue: EventDataBatch[] = [];
        let batch = await producer.createBatch();
        for (const m of group) {
          const message = amqpMessage(m, 'annotations');
          const partitionKey = keys.get(m);
          // What the SDK stamps on each message of a batch created with a partition key, per message here.
          if (partitionKey !== undefined) {
            (message.messageAnnotations as Record<string, unknown>)['x-opt-partition-key'] = partitionKey;
            message.header = { ...message.header, durable: true };
          }
          if (batch.tryAdd(message)) continue;
          if (batch.count === 0) {
            throw new SinkError('invalid', `${this.what} failed: message ${m.sequenceNumber} (${m.body.length} bytes of body) is larger than the event hub accepts (${batch.maxSizeInBytes} bytes per batch)`);
          }
          queue.push(batch);
          batch = await producer.createBatch();
          if (!batch.tryAdd(message)) {
            throw new SinkError('invalid', `${this.what} failed: message ${m.sequenceNumber} (${m.body.length} bytes of body) is larger than the event hub accepts (${batch.maxSizeInBytes} bytes per batch)`);
          }
        }
        if (batch.count > 0) queue.push(batch);
        queues.push(queue);
      }
      // One partition's batches go in order; different partitions' batches overlap.
      await Promise.all(
        queues.map(async (queue) => {
          for (const b of queue) await producer.sendBatch(b);
        }),
      );
    } catch (e) {
      if (!(e instanceof SinkError)) this.partitions = undefined;
      throw sinkError(e, this.what);
    }
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    await p?.close().catch(() => undefined);
  }
}
