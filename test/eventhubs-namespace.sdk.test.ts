import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type EventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { startTestHub, type TestHub } from './support/hub.js';
import { partitionForKey } from '../src/core/partitionKey.js';

/** Everything in one partition from `startPosition` until `count` events came (or 15 s passed). */
async function receive(client: EventHubConsumerClient, partitionId: string, startPosition: EventPosition, count: number): Promise<ReceivedEventData[]> {
  const events: ReceivedEventData[] = [];
  let settle!: (e?: Error) => void;
  const done = new Promise<void>((res, rej) => (settle = (e?: Error) => (e ? rej(e) : res())));
  const subscription = client.subscribe(
    partitionId,
    {
      processEvents: async (batch) => {
        events.push(...batch);
        if (events.length >= count) settle();
      },
      processError: async (err) => settle(err),
    },
    { startPosition, maxWaitTimeInSeconds: 1 },
  );
  const timer = setTimeout(() => settle(new Error(`timed out with ${events.length} of ${count} events`)), 15_000);
  try {
    if (count === 0) await new Promise((r) => setTimeout(r, 1500));
    else await done;
  } finally {
    clearTimeout(timer);
    await subscription.close();
  }
  return events;
}

/** The error a subscription reports first (or undefined when it receives within 5 s). */
async function subscribeError(client: EventHubConsumerClient, partitionId: string): Promise<Error | undefined> {
  let settle!: (e?: Error) => void;
  const done = new Promise<Error | undefined>((res) => (settle = res));
  const subscription = client.subscribe(
    partitionId,
    { processEvents: async (events) => void (events.length > 0 && settle(undefined)), processError: async (err) => settle(err) },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
  const timer = setTimeout(() => settle(undefined), 5000);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    await subscription.close();
  }
}

const NAMESPACE = 'telemetry-ns';
/** Refusals are not retried (the SDK would retry for half a minute). */
const noRetry = { retryOptions: { maxRetries: 0 } };

describe('local Event Hubs namespace through the unmodified @azure/event-hubs', () => {
  let t: TestHub;
  let cs: string;
  const rule = (name: string, eventHub?: string) =>
    t.hub.eventHubs!.namespaces.listAuthorizationRules(NAMESPACE, eventHub).find((r) => r.name === name)!;
  const csFor = (ruleName: string, eventHub?: string) => `Endpoint=sb://${t.host}/;SharedAccessKeyName=${ruleName};SharedAccessKey=${rule(ruleName, eventHub).primaryKey}`;

  before(async () => {
    t = await startTestHub({
      eventHubsNamespaces: [
        {
          name: NAMESPACE,
          authorizationRules: [{ name: 'ns-listen', rights: ['Listen'] }],
          eventHubs: [
            { name: 'orders', partitionCount: 3, consumerGroups: ['analytics'], authorizationRules: [{ name: 'orders-send', rights: ['Send'] }] },
            { name: 'other', partitionCount: 2 },
          ],
        },
      ],
    });
    const info = await t.hub.info();
    const ns = info.eventHubsNamespaces?.find((n) => n.name === NAMESPACE);
    assert.ok(ns, 'fleethub info lists the namespace');
    assert.deepEqual(ns.eventHubs, ['orders', 'other']);
    assert.match(ns.emulatorConnectionString, /UseDevelopmentEmulator=true$/);
    cs = ns.connectionString;
  });
  after(async () => {
    await t?.close();
  });

  test('sends single events and batches with and without partition keys and to a partition id; each partition reads back from earliest through a consumer group', async () => {
    const producer = new EventHubProducerClient(cs, 'orders');
    try {
      await producer.sendBatch([{ body: { n: 1 } }], { partitionId: '1' });
      await producer.sendBatch([{ body: 'keyed-a' }, { body: 'keyed-b' }], { partitionKey: 'device-7' });
      const batch = await producer.createBatch({ partitionId: '2' });
      assert.ok(batch.tryAdd({ body: 'batched-1' }));
      assert.ok(batch.tryAdd({ body: 'batched-2', properties: { i: 2 } }));
      await producer.sendBatch(batch);
      const keyed = await producer.createBatch({ partitionKey: 'device-9' });
      keyed.tryAdd({ body: 'keyed-c' });
      await producer.sendBatch(keyed);
      // Neither key nor partition: the service picks one.
      await producer.sendBatch([{ body: 'anywhere' }]);
    } finally {
      await producer.close();
    }
    const consumer = new EventHubConsumerClient('analytics', cs, 'orders');
    try {
      const all: { partition: string; body: unknown; key?: string | null }[] = [];
      for (const p of ['0', '1', '2']) {
        const info = await consumer.getPartitionProperties(p);
        const count = info.isEmpty ? 0 : info.lastEnqueuedSequenceNumber - info.beginningSequenceNumber + 1;
        const events = await receive(consumer, p, earliestEventPosition, count);
        assert.equal(events.length, count);
        assert.deepEqual(events.map((e) => e.sequenceNumber), Array.from({ length: count }, (_, i) => i), `partition ${p} numbers from 0`);
        all.push(...events.map((e) => ({ partition: p, body: e.body, key: e.partitionKey })));
      }
      assert.equal(all.length, 7);
      const at = (body: unknown) => all.find((e) => JSON.stringify(e.body) === JSON.stringify(body));
      assert.equal(at({ n: 1 })!.partition, '1');
      assert.equal(at('batched-1')!.partition, '2');
      assert.equal(at('batched-2')!.partition, '2');
      for (const [body, key] of [['keyed-a', 'device-7'], ['keyed-b', 'device-7'], ['keyed-c', 'device-9']] as const) {
        assert.equal(at(body)!.partition, String(partitionForKey(key, 3)), `${body}: the partition key's stable hash`);
        assert.equal(at(body)!.key, key);
      }
      assert.ok(at('anywhere'));
    } finally {
      await consumer.close();
    }
  });

  test('application properties keep their types; reads from a sequence number', async () => {
    const producer = new EventHubProducerClient(cs, 'other');
    const when = new Date('2024-05-06T07:08:09.123Z');
    try {
      await producer.sendBatch(
        [
          { body: 'first' },
          { body: 'typed', properties: { count: 42, ratio: 1.5, big: 2 ** 40, negative: -7, flag: true, off: false, when, name: 'x', raw: Buffer.from([0, 1, 254]) }, messageId: 'mid-1', contentType: 'text/plain', correlationId: 'corr-1' },
        ],
        { partitionId: '1' },
      );
    } finally {
      await producer.close();
    }
    const consumer = new EventHubConsumerClient('$Default', cs, 'other');
    try {
      const [e] = await receive(consumer, '1', { sequenceNumber: 0 }, 1);
      assert.equal(e!.body, 'typed');
      assert.equal(e!.sequenceNumber, 1, 'after sequence number 0, exclusive');
      assert.deepEqual(e!.properties, {
        count: 42,
        ratio: 1.5,
        big: 2 ** 40,
        negative: -7,
        flag: true,
        off: false,
        // The JS client (rhea) reads an AMQP timestamp as milliseconds, on Azure as here.
        when: when.getTime(),
        name: 'x',
        // …and a Buffer as a plain object (the SDK's convertDatesToNumbers copies it), on Azure as here…
        raw: { ...Buffer.from([0, 1, 254]) },
      });
      // …while the wire types are AMQP's: binary stays binary.
      const rawProps = e!.getRawAmqpMessage().applicationProperties!;
      assert.ok(Buffer.isBuffer(rawProps.raw));
      assert.deepEqual(rawProps.raw, Buffer.from([0, 1, 254]));
      assert.equal(e!.messageId, 'mid-1');
      assert.equal(e!.contentType, 'text/plain');
      assert.equal(e!.correlationId, 'corr-1');
      const inclusive = await receive(consumer, '1', { sequenceNumber: 0, isInclusive: true }, 2);
      assert.deepEqual(inclusive.map((x) => x.body), ['first', 'typed']);
    } finally {
      await consumer.close();
    }
  });

  test('getEventHubProperties and getPartitionProperties', async () => {
    const producer = new EventHubProducerClient(cs, 'orders');
    try {
      const props = await producer.getEventHubProperties();
      assert.equal(props.name, 'orders');
      assert.deepEqual(props.partitionIds, ['0', '1', '2']);
      assert.ok(props.createdOn instanceof Date && Math.abs(props.createdOn.getTime() - Date.now()) < 120_000);
      const p2 = await producer.getPartitionProperties('2');
      const stored = await t.hub.store.eventLogs.entity('telemetry-ns/orders').read(2, { sequenceNumber: -1 }, 100);
      assert.equal(p2.eventHubName, 'orders');
      assert.equal(p2.partitionId, '2');
      assert.equal(p2.beginningSequenceNumber, 0);
      assert.ok(stored.length >= 2);
      assert.equal(p2.lastEnqueuedSequenceNumber, stored.length - 1);
      assert.equal(p2.lastEnqueuedOffset, stored.at(-1)!.offset);
      assert.equal(p2.lastEnqueuedOnUtc.getTime(), stored.at(-1)!.enqueuedTime);
      assert.equal(p2.isEmpty, false);
      assert.deepEqual(await producer.getPartitionIds(), ['0', '1', '2']);
    } finally {
      await producer.close();
    }
  });

  test('SAS: an event hub Send rule sends but cannot receive; a namespace Listen rule receives; an entity rule covers only its event hub', async () => {
    const sender = new EventHubProducerClient(csFor('orders-send', 'orders'), 'orders');
    try {
      await sender.sendBatch([{ body: 'by-entity-rule' }], { partitionId: '0' });
    } finally {
      await sender.close();
    }
    const refused = new EventHubConsumerClient('$Default', csFor('orders-send', 'orders'), 'orders', noRetry);
    try {
      const err = await subscribeError(refused, '0');
      assert.ok(err, 'a Send-only rule cannot receive');
      assert.equal((err as { code?: string }).code, 'UnauthorizedError');
    } finally {
      await refused.close();
    }
    const otherHub = new EventHubProducerClient(csFor('orders-send', 'orders'), 'other', noRetry);
    try {
      await assert.rejects(otherHub.sendBatch([{ body: 'nope' }], { partitionId: '0' }), (e: Error & { code?: string }) => e.code === 'UnauthorizedError');
    } finally {
      await otherHub.close();
    }
    const listenOnly = new EventHubProducerClient(csFor('ns-listen'), 'orders', noRetry);
    try {
      await assert.rejects(listenOnly.sendBatch([{ body: 'nope' }], { partitionId: '0' }), (e: Error & { code?: string }) => e.code === 'UnauthorizedError');
    } finally {
      await listenOnly.close();
    }
    const listener = new EventHubConsumerClient('$Default', csFor('ns-listen'), 'orders');
    try {
      const info = await listener.getPartitionProperties('0');
      const events = await receive(listener, '0', { sequenceNumber: info.lastEnqueuedSequenceNumber, isInclusive: true }, 1);
      assert.equal(events[0]!.body, 'by-entity-rule');
    } finally {
      await listener.close();
    }
    const badKey = new EventHubProducerClient(`Endpoint=sb://${t.host}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')}`, 'orders', noRetry);
    try {
      await assert.rejects(badKey.getEventHubProperties(), (e: Error & { code?: string }) => e.code === 'UnauthorizedError' || /unauthori/i.test(e.message));
    } finally {
      await badKey.close();
    }
  });

  test('unknown event hubs and consumer groups are amqp:not-found', async () => {
    const producer = new EventHubProducerClient(cs, 'missing', noRetry);
    try {
      await assert.rejects(producer.sendBatch([{ body: 'x' }]), (e: Error & { code?: string }) => e.code === 'MessagingEntityNotFoundError');
    } finally {
      await producer.close();
    }
    const consumer = new EventHubConsumerClient('no-such-group', cs, 'orders', noRetry);
    try {
      const err = await subscribeError(consumer, '0');
      assert.equal((err as { code?: string } | undefined)?.code, 'MessagingEntityNotFoundError');
    } finally {
      await consumer.close();
    }
  });

  test('an emulator connection string (plain AMQP on loopback) reaches the namespace its key belongs to', async () => {
    const emulator = (await t.hub.info()).eventHubsNamespaces!.find((n) => n.name === NAMESPACE)!.emulatorConnectionString;
    const producer = new EventHubProducerClient(emulator, 'other');
    try {
      await producer.sendBatch([{ body: 'via-emulator' }], { partitionId: '0' });
    } finally {
      await producer.close();
    }
    const consumer = new EventHubConsumerClient('$Default', emulator, 'other');
    try {
      const events = await receive(consumer, '0', earliestEventPosition, 1);
      assert.equal(events[0]!.body, 'via-emulator');
    } finally {
      await consumer.close();
    }
  });

  test('accepted events survive a restart; sequence numbers continue', async () => {
    const consumerBefore = new EventHubConsumerClient('analytics', cs, 'orders');
    const info = await consumerBefore.getPartitionProperties('2');
    const earlier = await receive(consumerBefore, '2', earliestEventPosition, info.lastEnqueuedSequenceNumber + 1);
    await consumerBefore.close();
    const before = { lastSequenceNumber: info.lastEnqueuedSequenceNumber };
    await t.restart();
    const producer = new EventHubProducerClient(cs, 'orders');
    try {
      await producer.sendBatch([{ body: 'after-restart' }], { partitionId: '2' });
    } finally {
      await producer.close();
    }
    const consumer = new EventHubConsumerClient('analytics', cs, 'orders');
    try {
      const events = await receive(consumer, '2', earliestEventPosition, before.lastSequenceNumber + 2);
      assert.deepEqual(events.map((e) => e.body), [...earlier.map((e) => e.body), 'after-restart']);
      assert.ok(earlier.some((e) => e.body === 'batched-1'));
      assert.equal(events.at(-1)!.sequenceNumber, before.lastSequenceNumber + 1);
    } finally {
      await consumer.close();
    }
  });
});
