/** Routing to an Event Hub through the unmodified @azure/event-hubs producer. */
import { EventHubProducerClient, type EventDataBatch } from '@azure/event-hubs';
import type { EndpointSettings, EndpointSink, RoutedMessage, SinkContext } from '../../hub/routing/types.js';
import { SinkError } from '../../hub/routing/types.js';
import { amqpClientOptions, amqpMessage, amqpTarget, entityNameOf, deviceIdOf } from './amqpTarget.js';
import { sinkError } from './errors.js';

/** Batches sent at once (each device's messages in their own batches, in order). */
const CONCURRENT_SENDS = 8;

export class EventHubsSink implements EndpointSink {
  private producer?: EventHubProducerClient;
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

  /**
   * IoT Hub sends with the device id as partition key, so each device's messages stay in order in
   * one partition: messages are grouped by device (order kept within each), each group packed into
   * as few batches as fit. Every batch is built before any is sent, so that a message too large
   * for the event hub fails the delivery before anything went out.
   */
  async deliver(messages: RoutedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      const producer = this.client();
      const groups = new Map<string | undefined, RoutedMessage[]>();
      for (const m of messages) {
        const key = deviceIdOf(m);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = []));
        g.push(m);
      }
      const batches: EventDataBatch[] = [];
      for (const [partitionKey, group] of groups) {
        const options = partitionKey !== undefined ? { partitionKey } : {};
        let batch = await producer.createBatch(options);
        for (const m of group) {
          const message = amqpMessage(m, 'annotations');
          // The SDK stamps the batch's partition key only on EventData, not on AMQP messages: as it would.
          if (partitionKey !== undefined) {
            (message.messageAnnotations as Record<string, unknown>)['x-opt-partition-key'] = partitionKey;
            message.header = { ...message.header, durable: true };
          }
          if (batch.tryAdd(message)) continue;
          if (batch.count === 0) {
            throw new SinkError('invalid', `${this.what} failed: message ${m.sequenceNumber} (${m.body.length} bytes of body) is larger than the event hub accepts (${batch.maxSizeInBytes} bytes per batch)`);
          }
          batches.push(batch);
          batch = await producer.createBatch(options);
          if (!batch.tryAdd(message)) {
            throw new SinkError('invalid', `${this.what} failed: message ${m.sequenceNumber} (${m.body.length} bytes of body) is larger than the event hub accepts (${batch.maxSizeInBytes} bytes per batch)`);
          }
        }
        if (batch.count > 0) batches.push(batch);
      }
      // Batches of one device go in order; different devices' batches may overlap.
      const byKey = new Map<string | undefined, EventDataBatch[]>();
      for (const b of batches) {
        const list = byKey.get(b.partitionKey) ?? [];
        list.push(b);
        byKey.set(b.partitionKey, list);
      }
      const queues = [...byKey.values()];
      const worker = async () => {
        for (let q = queues.shift(); q; q = queues.shift()) for (const b of q) await producer.sendBatch(b);
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENT_SENDS, queues.length) }, worker));
    } catch (e) {
          throw sinkError(e, this.what);
    }
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    await p?.close().catch(() => undefined);
  }
}
