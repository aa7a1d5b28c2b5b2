import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import WebSocket from 'ws';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { receive } from './support/eventHubs.js';
import { partitionFor } from '../src/hub/messaging/eventLogWriter.js';

const { Client, Message } = device;

describe('built-in Event Hub-compatible endpoint through the unmodified @azure/event-hubs', () => {
  let t: TestHub;
  let cs: string;
  const deviceId = 'eh-device-1';
  let partitionId: string;
  const sentAt: number[] = [];

  before(async () => {
    t = await startTestHub({ consumerGroups: ['analytics'] });
    cs = (await t.hub.info()).eventHubCompatibleConnectionString;
    const { connectionString } = await createDevice(t, deviceId);
    partitionId = String(partitionFor(deviceId, t.hub.config.eventLog.partitions));
    const client = Client.fromConnectionString(connectionString, deviceMqtt.Mqtt as any);
    await client.open();
    for (let i = 0; i < 5; i++) {
      const m = new Message(JSON.stringify({ n: i }));
      m.messageId = `m-${i}`;
      m.correlationId = `c-${i}`;
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      m.properties.add('index', String(i));
      sentAt.push(Date.now());
      await client.sendEvent(m);
      await new Promise((r) => setTimeout(r, 5));
    }
    await client.close();
  });
  after(() => t.close());

  test('info gives Event Hub-compatible connection strings', async () => {
    const info = await t.hub.info();
    assert.match(info.eventHubCompatibleConnectionString, new RegExp(`^Endpoint=sb://${t.host.replace(/\./g, '\\.')}/;SharedAccessKeyName=service;SharedAccessKey=[^;]+;EntityPath=fleethub$`));
    assert.match(info.eventHubCompatibleEmulatorConnectionString, /;UseDevelopmentEmulator=true$/);
  });

  test('hub and partition properties describe the event log', async () => {
    const client = new EventHubConsumerClient('$Default', cs);
    try {
      const props = await client.getEventHubProperties();
      assert.equal(props.name, 'fleethub');
      assert.deepEqual(props.partitionIds, ['0', '1', '2', '3']);
      assert.ok(props.createdOn instanceof Date && props.createdOn.getTime() > 0);
      const p = await client.getPartitionProperties(partitionId);
      const info = await t.hub.store.eventLog.partitionInfo(Number(partitionId));
      assert.equal(p.partitionId, partitionId);
      assert.equal(p.eventHubName, 'fleethub');
      assert.equal(p.isEmpty, false);
      assert.equal(p.beginningSequenceNumber, 0);
      assert.equal(p.lastEnqueuedSequenceNumber, 4);
      assert.equal(p.lastEnqueuedOffset, info.lastOffset);
      assert.equal(p.lastEnqueuedOnUtc.getTime(), info.lastEnqueuedTime);
      const other = (['0', '1', '2', '3'] as const).find((id) => id !== partitionId)!;
      const empty = await client.getPartitionProperties(other);
      assert.equal(empty.isEmpty, true);
      assert.equal(empty.lastEnqueuedSequenceNumber, -1);
    } finally {
      await client.close();
    }
  });

  test('from the earliest position: every event with body, properties and IoT Hub system properties', async () => {
    const client = new EventHubConsumerClient('$Default', cs);
    try {
      const events = await receive(client, partitionId, earliestEventPosition, (e) => e.length >= 5);
      assert.deepEqual(events.map((e) => e.sequenceNumber), [0, 1, 2, 3, 4]);
      const e = events[2]!;
      assert.deepEqual(e.body, { n: 2 });
      assert.deepEqual(e.properties, { index: '2' });
      assert.equal(e.messageId, 'm-2');
      assert.equal(e.correlationId, 'c-2');
      assert.equal(e.contentType, 'application/json');
      assert.equal(e.partitionKey, deviceId);
      assert.equal(typeof e.offset, 'string');
      assert.ok(Math.abs(e.enqueuedTimeUtc.getTime() - sentAt[2]!) < 2000);
      const sys = e.systemProperties!;
      assert.equal(sys['iothub-connection-device-id'], deviceId);
      assert.equal(sys['iothub-message-source'], 'Telemetry');
      assert.equal(sys['iothub-enqueuedtime'], e.enqueuedTimeUtc.getTime());
      assert.equal(JSON.parse(sys['iothub-connection-auth-method']).type, 'sas');
      assert.ok(sys['iothub-connection-auth-generation-id']);
      assert.equal(sys.contentEncoding, 'utf-8');
    } finally {
      await client.close();
    }
  });

  test('from a sequence number (exclusive and inclusive) and from an enqueued time', async () => {
    const client = new EventHubConsumerClient('$Default', cs);
    try {
      const after2 = await receive(client, partitionId, { sequenceNumber: 2 }, (e) => e.length >= 2);
      assert.deepEqual(after2.map((e) => e.sequenceNumber), [3, 4]);
      const from2 = await receive(client, partitionId, { sequenceNumber: 2, isInclusive: true }, (e) => e.length >= 3);
      assert.deepEqual(from2.map((e) => e.sequenceNumber), [2, 3, 4]);
      const all = await receive(client, partitionId, earliestEventPosition, (e) => e.length >= 5);
      const byTime = await receive(client, partitionId, { enqueuedOn: all[2]!.enqueuedTimeUtc }, (e) => e.length >= 2);
      assert.deepEqual(byTime.map((e) => e.sequenceNumber), [3, 4]);
      const byOffset = await receive(client, partitionId, { offset: all[3]!.offset }, (e) => e.length >= 1);
      assert.deepEqual(byOffset.map((e) => e.sequenceNumber), [4]);
    } finally {
      await client.close();
    }
  });

  test('trackLastEnqueuedEventProperties: each batch tells the partition\'s last enqueued event', async () => {
    const client = new EventHubConsumerClient('$Default', cs);
    try {
      const info = await t.hub.store.eventLog.partitionInfo(Number(partitionId));
      let last: { sequenceNumber?: number; offset?: string; enqueuedOn?: Date; retrievedOn?: Date } | undefined;
      const events: ReceivedEventData[] = [];
      await new Promise<void>((resolve, reject) => {
        const sub = client.subscribe(
          partitionId,
          {
            processEvents: async (batch, context) => {
              events.push(...batch);
              last = context.lastEnqueuedEventProperties;
              if (events.length >= 5) void sub.close().then(resolve);
            },
            processError: async (e) => reject(e),
          },
          { startPosition: earliestEventPosition, trackLastEnqueuedEventProperties: true, maxWaitTimeInSeconds: 1 },
        );
      });
      assert.deepEqual(events.map((e) => e.body), [0, 1, 2, 3, 4].map((n) => ({ n })), 'the events themselves, as without tracking');
      assert.equal(last?.sequenceNumber, info.lastSequenceNumber);
      assert.equal(last?.offset, info.lastOffset);
      assert.equal(last?.enqueuedOn?.getTime(), info.lastEnqueuedTime);
      assert.ok(last?.retrievedOn instanceof Date && Math.abs(last.retrievedOn.getTime() - Date.now()) < 60_000);
    } finally {
      await client.close();
    }
  });

  test('a live receiver gets a new event promptly; two consumer groups each see it', async () => {
    const a = new EventHubConsumerClient('$Default', cs);
    const b = new EventHubConsumerClient('analytics', cs);
    const { connectionString } = await createDevice(t, 'eh-live');
    const live = String(partitionFor('eh-live', t.hub.config.eventLog.partitions));
    const start = { sequenceNumber: (await a.getPartitionProperties(live)).lastEnqueuedSequenceNumber };
    const seenA: string[] = [];
    const seenB: string[] = [];
    const until = (seen: string[]) => (e: ReceivedEventData[]) => {
      seen.splice(0, seen.length, ...e.map((x) => String(x.messageId)));
      return seen.includes('live-1');
    };
    const receivedA = receive(a, live, start, until(seenA));
    const receivedB = receive(b, live, start, until(seenB));
    const d = Client.fromConnectionString(connectionString, deviceMqtt.Mqtt as any);
    await d.open();
    try {
      // A first event proves both receivers are attached; the second is timed.
      const warmup = new Message('warm-up');
      warmup.messageId = 'warm-up';
      await d.sendEvent(warmup);
      await eventually(() => seenA.includes('warm-up') && seenB.includes('warm-up'), 10_000);
      const m = new Message('hello');
      m.messageId = 'live-1';
      const sent = Date.now();
      await d.sendEvent(m);
      const [ea, eb] = await Promise.all([receivedA, receivedB]);
      const elapsed = Date.now() - sent;
      assert.deepEqual(ea.map((e) => e.messageId), ['warm-up', 'live-1']);
      assert.deepEqual(eb.map((e) => e.messageId), ['warm-up', 'live-1']);
      assert.ok(elapsed < 1500, `arrived after ${elapsed} ms`);
    } finally {
      await d.close();
      await a.close();
      await b.close();
    }
  });

  test('telemetry from an AMQP device (azure-iot-device-amqp) arrives like MQTT telemetry', async () => {
    const { connectionString } = await createDevice(t, 'eh-amqp-device');
    const partition = String(partitionFor('eh-amqp-device', t.hub.config.eventLog.partitions));
    const client = new EventHubConsumerClient('$Default', cs);
    const d = Client.fromConnectionString(connectionString, deviceAmqp.Amqp as any);
    await d.open();
    try {
      const m = new Message(JSON.stringify({ via: 'amqp' }));
      m.messageId = 'amqp-1';
      m.properties.add('transport', 'amqp');
      await d.sendEvent(m);
      const events = await receive(client, partition, earliestEventPosition, (e) => e.some((x) => x.messageId === 'amqp-1'));
      const e = events.find((x) => x.messageId === 'amqp-1')!;
      assert.deepEqual(e.body, { via: 'amqp' });
      assert.deepEqual(e.properties, { transport: 'amqp' });
      assert.equal(e.systemProperties!['iothub-connection-device-id'], 'eh-amqp-device');
    } finally {
      await d.close();
      await client.close();
    }
  });

  test('plain AMQP with UseDevelopmentEmulator=true reads the same events', async () => {
    const client = new EventHubConsumerClient('$Default', (await t.hub.info()).eventHubCompatibleEmulatorConnectionString.replace('127.0.0.1', t.host));
    try {
      const events = await receive(client, partitionId, earliestEventPosition, (e) => e.length >= 5);
      assert.deepEqual(events.map((e) => e.messageId), ['m-0', 'm-1', 'm-2', 'm-3', 'm-4']);
    } finally {
      await client.close();
    }
  });

  test('over WebSocket (wss://host:443/$servicebus/websocket) reads the same events', async () => {
    const client = new EventHubConsumerClient('$Default', cs, { webSocketOptions: { webSocket: WebSocket as any } });
    try {
      const events = await receive(client, partitionId, earliestEventPosition, (e) => e.length >= 5);
      assert.deepEqual(events.map((e) => e.messageId), ['m-0', 'm-1', 'm-2', 'm-3', 'm-4']);
    } finally {
      await client.close();
    }
  });

  test('a receiver with a higher owner level disconnects the lower one', async () => {
    const low = new EventHubConsumerClient('$Default', cs);
    const high = new EventHubConsumerClient('$Default', cs);
    try {
      const lowError = new Promise<Error>((resolve) => {
        void receive(low, partitionId, earliestEventPosition, () => false, { ownerLevel: 1, onError: resolve }).catch(() => undefined);
      });
      await new Promise((r) => setTimeout(r, 500));
      const events = await receive(high, partitionId, earliestEventPosition, (e) => e.length >= 5, { ownerLevel: 2 });
      assert.equal(events.length, 5);
      const err = await lowError;
      assert.equal((err as any).code, 'ReceiverDisconnectedError');
    } finally {
      await low.close();
      await high.close();
    }
  });

  test('wrong key, unknown consumer group and unknown partition get clear errors', async () => {
    const noRetry = { retryOptions: { maxRetries: 0 } };
    const bad = new EventHubConsumerClient('$Default', cs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')}`), noRetry);
    try {
      await assert.rejects(bad.getEventHubProperties(), (e: any) => e.code === 'UnauthorizedError' || e.errors?.[0]?.code === 'UnauthorizedError');
    } finally {
      await bad.close();
    }
    const nogroup = new EventHubConsumerClient('nope', cs, noRetry);
    try {
      const err = await new Promise<Error>((resolve) => {
        void receive(nogroup, partitionId, earliestEventPosition, () => false, { onError: resolve }).catch(resolve);
      });
      assert.equal((err as any).code, 'MessagingEntityNotFoundError', err.message);
    } finally {
      await nogroup.close();
    }
    const client = new EventHubConsumerClient('$Default', cs, noRetry);
    try {
      await assert.rejects(client.getPartitionProperties('9'), (e: any) => /could not be found/.test(e.message));
    } finally {
      await client.close();
    }
  });
});
