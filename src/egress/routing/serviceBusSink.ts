/** Routing to a Service Bus queue or topic through the unmodified @azure/service-bus sender. */
import { ServiceBusClient, type ServiceBusMessageBatch, type ServiceBusSender } from '@azure/service-bus';
import type { EndpointSettings, EndpointSink, RoutedMessage, SinkContext } from '../../hub/routing/types.js';
import { SinkError } from '../../hub/routing/types.js';
import { amqpClientOptions, amqpMessage, amqpTarget, entityNameOf } from './amqpTarget.js';
import { sinkError } from './errors.js';

export class ServiceBusSink implements EndpointSink {
  private client?: ServiceBusClient;
  private sender?: ServiceBusSender;
  private readonly what: string;

  constructor(
    private readonly endpoint: EndpointSettings,
    private readonly context: SinkContext,
    private readonly caPem: string,
    private readonly webSocketPort: () => number = () => 443,
  ) {
    const entity = endpoint.kind === 'serviceBusTopics' ? 'topic' : 'queue';
    this.what = `Sending to Service Bus ${entity} '${entityNameOf(endpoint, context)}' of endpoint '${endpoint.name}'`;
  }

  private openSender(): ServiceBusSender {
    if (this.sender) return this.sender;
    const target = amqpTarget(this.endpoint, this.context);
    const options = amqpClientOptions(target, this.caPem, this.webSocketPort()) as never;
    this.client = target.kind === 'key' ? new ServiceBusClient(target.connectionString, options) : new ServiceBusClient(target.host, target.credential, options);
    this.sender = this.client.createSender(target.entityPath);
    return this.sender;
  }

  /** Connects and opens the sender link (creating a batch asks the link for its size limit). */
  async open(): Promise<void> {
    await this.openSender().createMessageBatch();
  }

  /** In order, in as few batches as fit; every batch is built before any is sent (see EventHubsSink). */
  async deliver(messages: RoutedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      const sender = this.openSender();
      const batches: ServiceBusMessageBatch[] = [];
      let batch = await sender.createMessageBatch();
      for (const m of messages) {
        const message = amqpMessage(m, 'applicationProperties');
        if (batch.tryAddMessage(message)) continue;
        if (batch.count > 0) {
          batches.push(batch);
          batch = await sender.createMessageBatch();
          if (batch.tryAddMessage(message)) continue;
        }
        throw new SinkError('invalid', `${this.what} failed: message ${m.sequenceNumber} (${m.body.length} bytes of body) is larger than the entity accepts (${batch.maxSizeInBytes} bytes)`);
      }
      if (batch.count > 0) batches.push(batch);
      for (const b of batches) await sender.sendMessages(b);
    } catch (e) {
      throw sinkError(e, this.what);
    }
  }

  async close(): Promise<void> {
    const { sender, client } = this;
    this.sender = undefined;
    this.client = undefined;
    await sender?.close().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }
}
