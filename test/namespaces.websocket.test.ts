import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ServiceBusClient } from '@azure/service-bus';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { startTestHub, type TestHub } from './support/hub.js';
import { receiveAll } from './support/serviceBus.js';

/**
 * The local namespaces over AMQP over WebSocket (wss://host:443/$servicebus/websocket), as the
 * SDKs dial it with `webSocketOptions` (TransportType.AmqpWebSockets), SAS connection strings.
 */
describe('Service Bus and Event Hubs namespaces over AMQP WebSocket', () => {
  let t: TestHub;
  let sbCs: string;
  let ehCs: string;

  before(async () => {
    t = await startTestHub({
      serviceBusNamespaces: [{ name: 'ws-sb-ns', queues: [{ name: 'jobs' }], topics: [{ name: 'news', subscriptions: [{ name: 'all' }] }] }],
      eventHubsNamespaces: [{ name: 'ws-eh-ns', eventHubs: [{ name: 'stream', partitionCount: 2 }] }],
    });
    const info = await t.hub.info();
    sbCs = info.serviceBusNamespaces!.find((n) => n.name === 'ws-sb-ns')!.connectionString;
    ehCs = info.eventHubsNamespaces!.find((n) => n.name === 'ws-eh-ns')!.connectionString;
  });
  after(async () => {
    await t?.close();
  });

  /** A `ws` constructor that records the URLs it dials. */
  function recordingWebSocket(dialed: string[]): typeof WebSocket {
    return class extends WebSocket {
      constructor(url: string | URL, ...rest: any[]) {
        dialed.push(String(url));
        super(url, ...rest);
      }
    } as typeof WebSocket;
  }

  test('Service Bus: send and peek-lock receive and complete on a queue and a topic subscription', async () => {
    const dialed: string[] = [];
    const client = new ServiceBusClient(sbCs, { webSocketOptions: { webSocket: recordingWebSocket(dialed) as any } });
    try {
      const sender = client.createSender('jobs');
      await sender.sendMessages([{ body: 'over ws 1' }, { body: 'over ws 2', applicationProperties: { n: 2 } }]);
      const receiver = client.createReceiver('jobs');
      const got = await receiveAll(receiver, 2);
      assert.deepEqual(got.map((m) => m.body).sort(), ['over ws 1', 'over ws 2']);
      for (const m of got) await receiver.completeMessage(m);
      assert.equal((await receiveAll(receiver, 1, 800)).length, 0, 'completed messages are gone');

      const topicSender = client.createSender('news');
      await topicSender.sendMessages({ body: 'headline' });
      const subscriber = client.createReceiver('news', 'all');
      const [news] = await receiveAll(subscriber, 1);
      assert.equal(news?.body, 'headline');
      await subscriber.completeMessage(news!);
      await Promise.all([sender.close(), receiver.close(), topicSender.close(), subscriber.close()]);
    } finally {
      await client.close();
    }
    assert.ok(dialed.length > 0, 'the client dialed a WebSocket');
    for (const url of dialed) assert.equal(url, `wss://${t.host}:443/$servicebus/websocket`);
  });

  test('Event Hubs: send with a partition key and a partition id; read back from earliest', async () => {
    const dialed: string[] = [];
    const options = { webSocketOptions: { webSocket: recordingWebSocket(dialed) as any } };
    const producer = new EventHubProducerClient(ehCs, 'stream', options);
    try {
      await producer.sendBatch([{ body: 'ws-keyed' }], { partitionKey: 'k1' });
      await producer.sendBatch([{ body: 'ws-0a' }, { body: 'ws-0b' }], { partitionId: '0' });
      assert.deepEqual(await producer.getPartitionIds(), ['0', '1']);
    } finally {
      await producer.close();
    }
    const consumer = new EventHubConsumerClient('$Default', ehCs, 'stream', options);
    const seen: ReceivedEventData[] = [];
    try {
      const subscription = consumer.subscribe(
        { processEvents: async (events) => void seen.push(...events), processError: async () => undefined },
        { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
      );
      const deadline = Date.now() + 15_000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await subscription.close();
    } finally {
      await consumer.close();
    }
    assert.deepEqual(seen.map((e) => e.body).sort(), ['ws-0a', 'ws-0b', 'ws-keyed']);
    assert.ok(dialed.length > 0, 'the clients dialed a WebSocket');
    for (const url of dialed) assert.equal(url, `wss://${t.host}:443/$servicebus/websocket`);
  });

  test('a WebSocket with a wrong key is refused as on TLS; the hub stays up', async () => {
    const bad = sbCs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
    const client = new ServiceBusClient(bad, { webSocketOptions: { webSocket: WebSocket as any }, retryOptions: { maxRetries: 0, timeoutInMs: 5000 } });
    try {
      await assert.rejects(client.createSender('jobs').sendMessages({ body: 'nope' }), (e: { code?: string }) => e.code === 'UnauthorizedAccess');
    } finally {
      await client.close();
    }
    const good = new ServiceBusClient(sbCs, { webSocketOptions: { webSocket: WebSocket as any } });
    try {
      await good.createSender('jobs').sendMessages({ body: 'still up' });
    } finally {
      await good.close();
    }
  });
});
