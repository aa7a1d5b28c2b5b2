import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { startTestHub, type TestHub } from './support/hub.js';
import { receiveAll } from './support/serviceBus.js';

describe('Service Bus queues through the unmodified @azure/service-bus', () => {
  let t: TestHub;
  let client: ServiceBusClient;
  let cs: string;

  before(async () => {
    t = await startTestHub({
      serviceBusTimerMs: 50,
      serviceBusNamespaces: [
        {
          name: 'orders-ns',
          queues: [
            { name: 'orders' },
            { name: 'short-lock', lockDuration: 'PT1S', maxDeliveryCount: 3 },
            { name: 'expiring', defaultMessageTimeToLive: 'PT0.5S', deadLetteringOnMessageExpiration: true },
            { name: 'dropping', defaultMessageTimeToLive: 'PT0.3S' },
            { name: 'durable', lockDuration: 'PT2S' },
            // Renewal is asserted past the original expiry, with a second or more of margin either
            // side for a loaded machine.
            { name: 'renewed-lock', lockDuration: 'PT3S' },
          ],
        },
      ],
    });
    cs = t.hub.serviceBus!.connectionStrings(t.host)[0]!.connectionString;
    client = new ServiceBusClient(cs);
  });
  after(async () => {
    await client?.close();
    await t?.close();
  });

  test('send and receive-and-complete on a queue, with properties and system properties kept', async () => {
    const sender = client.createSender('orders');
    await sender.sendMessages({ body: { n: 1 }, subject: 'greeting', messageId: 'm-1', correlationId: 'c-1', contentType: 'application/json', applicationProperties: { colour: 'red', count: 7, ok: true } });
    const receiver = client.createReceiver('orders');
    const [m] = await receiveAll(receiver, 1);
    assert.ok(m, 'a message came');
    assert.deepEqual(m.body, { n: 1 });
    assert.equal(m.subject, 'greeting');
    assert.equal(m.messageId, 'm-1');
    assert.equal(m.correlationId, 'c-1');
    assert.deepEqual(m.applicationProperties, { colour: 'red', count: 7, ok: true });
    assert.equal(m.deliveryCount, 0);
    assert.ok(m.sequenceNumber!.toNumber() > 0);
    assert.ok(m.lockToken && /^[0-9a-f-]{36}$/.test(m.lockToken));
    assert.ok(m.lockedUntilUtc!.getTime() > Date.now());
    assert.ok(Math.abs(m.enqueuedTimeUtc!.getTime() - Date.now()) < 10_000);
    await receiver.completeMessage(m);
    assert.equal((await receiveAll(receiver, 1, 800)).length, 0, 'a completed message is gone');
    // The lock went with the message.
    await assert.rejects(receiver.renewMessageLock(m), (e: { code?: string }) => e.code === 'MessageLockLost');
    await receiver.close();
    await sender.close();
  });

  test('batches keep order; receiveAndDelete removes as it delivers', async () => {
    const sender = client.createSender('orders');
    const batch = await sender.createMessageBatch();
    for (let i = 0; i < 5; i++) assert.ok(batch.tryAddMessage({ body: `b${i}` }));
    await sender.sendMessages(batch);
    await sender.sendMessages([{ body: 'a5' }, { body: 'a6' }]);
    const receiver = client.createReceiver('orders', { receiveMode: 'receiveAndDelete' });
    const got = await receiveAll(receiver, 7);
    assert.deepEqual(got.map((m) => m.body), ['b0', 'b1', 'b2', 'b3', 'b4', 'a5', 'a6']);
    assert.equal(got[0]!.lockToken, undefined);
    const peeked = await receiver.peekMessages(10);
    assert.equal(peeked.length, 0, 'nothing left');
    await receiver.close();
    await sender.close();
  });

  test('abandon, dead-letter and defer; deferred messages by sequence number; the dead-letter subqueue', async () => {
    const sender = client.createSender('orders');
    await sender.sendMessages([{ body: 'abandon-me' }, { body: 'kill-me' }, { body: 'defer-me' }]);
    const receiver = client.createReceiver('orders');
    const [a, k, d] = await receiveAll(receiver, 3);
    assert.deepEqual([a!.body, k!.body, d!.body], ['abandon-me', 'kill-me', 'defer-me']);
    await receiver.abandonMessage(a!, { reason: 'later' });
    await receiver.deadLetterMessage(k!, { deadLetterReason: 'Poison', deadLetterErrorDescription: 'cannot parse' });
    await receiver.deferMessage(d!);
    const [again] = await receiveAll(receiver, 1);
    assert.equal(again!.body, 'abandon-me');
    assert.equal(again!.deliveryCount, 1, 'abandon counts a delivery');
    assert.equal(again!.applicationProperties?.reason, 'later', 'propertiesToModify applied');
    await receiver.completeMessage(again!);
    assert.equal((await receiveAll(receiver, 1, 600)).length, 0, 'the deferred one is not delivered');
    const [deferred] = await receiver.receiveDeferredMessages([d!.sequenceNumber!]);
    assert.equal(deferred!.body, 'defer-me');
    assert.equal(deferred!.state, 'deferred');
    await receiver.completeMessage(deferred!);
    await assert.rejects(receiver.receiveDeferredMessages([d!.sequenceNumber!]), (e: { code?: string }) => e.code === 'MessageNotFound');
    const dlq = client.createReceiver('orders', { subQueueType: 'deadLetter' });
    const [dead] = await receiveAll(dlq, 1);
    assert.equal(dead!.body, 'kill-me');
    assert.equal(dead!.deadLetterReason, 'Poison');
    assert.equal(dead!.deadLetterErrorDescription, 'cannot parse');
    assert.equal(dead!.deadLetterSource, 'orders');
    await dlq.completeMessage(dead!);
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  test('an unsettled message comes back when its lock expires, and is dead-lettered after maxDeliveryCount', async () => {
    const sender = client.createSender('short-lock');
    await sender.sendMessages({ body: 'flaky' });
    const receiver = client.createReceiver('short-lock', { maxAutoLockRenewalDurationInMs: 0 });
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [m] = await receiveAll(receiver, 1, 4000);
      assert.ok(m, `delivery ${i + 1}`);
      counts.push(m.deliveryCount!);
      // Not settled: the 1 s lock runs out.
    }
    assert.deepEqual(counts, [0, 1, 2]);
    const dlq = client.createReceiver('short-lock', { subQueueType: 'deadLetter' });
    const [dead] = await receiveAll(dlq, 1, 4000);
    assert.equal(dead?.body, 'flaky');
    assert.equal(dead?.deadLetterReason, 'MaxDeliveryCountExceeded');
    assert.equal((await receiveAll(receiver, 1, 600)).length, 0);
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  test('renewMessageLock extends the lock; a renewed message is not redelivered', async () => {
    const sender = client.createSender('renewed-lock');
    await sender.sendMessages({ body: 'slow' });
    const receiver = client.createReceiver('renewed-lock', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receiveAll(receiver, 1);
    const first = m!.lockedUntilUtc!.getTime();
    await new Promise((r) => setTimeout(r, 1500));
    const renewed = await receiver.renewMessageLock(m!);
    assert.ok(renewed.getTime() > first, 'later than before');
    // Past the first lock's expiry: only the renewal keeps the message ours.
    await new Promise((r) => setTimeout(r, Math.max(0, first - Date.now()) + 300));
    await receiver.completeMessage(m!);
    assert.equal((await receiveAll(receiver, 1, 1500)).length, 0);
    await receiver.close();
    await sender.close();
  });

  test('messages past their time to live are dead-lettered (TTLExpiredException) or dropped', async () => {
    await client.createSender('expiring').sendMessages({ body: 'stale' });
    await client.createSender('dropping').sendMessages([{ body: 'gone' }, { body: 'kept', timeToLive: 60_000 }]);
    await new Promise((r) => setTimeout(r, 900));
    const dlq = client.createReceiver('expiring', { subQueueType: 'deadLetter' });
    const [dead] = await receiveAll(dlq, 1);
    assert.equal(dead?.body, 'stale');
    assert.equal(dead?.deadLetterReason, 'TTLExpiredException');
    await dlq.completeMessage(dead!);
    assert.equal((await receiveAll(client.createReceiver('expiring'), 1, 500)).length, 0);
    const left = await receiveAll(client.createReceiver('dropping', { receiveMode: 'receiveAndDelete' }), 2, 1000);
    assert.deepEqual(left.map((m) => m.body), [], 'the entity default TTL (0.3 s) caps the message TTL');
    assert.equal((await receiveAll(client.createReceiver('dropping', { subQueueType: 'deadLetter' }), 1, 300)).length, 0, 'no dead-lettering unless enabled');
  });

  test('scheduled messages appear at their time; cancelled ones never; peek shows without locking', async () => {
    const sender = client.createSender('orders');
    const at = new Date(Date.now() + 1200);
    const [keep, cancel] = await Promise.all([sender.scheduleMessages({ body: 'later' }, at), sender.scheduleMessages({ body: 'never' }, at)]);
    await sender.cancelScheduledMessages(cancel!);
    const receiver = client.createReceiver('orders');
    const peeked = await receiver.peekMessages(10);
    assert.deepEqual(peeked.map((m) => [m.body, m.state]), [['later', 'scheduled']]);
    assert.equal(peeked[0]!.sequenceNumber!.toString(), keep![0]!.toString());
    assert.equal((await receiveAll(receiver, 1, 500)).length, 0, 'not before its time');
    const [m] = await receiveAll(receiver, 1, 4000);
    assert.equal(m?.body, 'later');
    assert.ok(Date.now() >= at.getTime() - 50);
    await receiver.completeMessage(m!);
    assert.equal((await receiveAll(receiver, 1, 1000)).length, 0, 'the cancelled one never comes');
    await receiver.close();
    await sender.close();
  });

  test('a restart loses no accepted message and resurrects no settled one', async () => {
    const sender = client.createSender('durable');
    await sender.sendMessages(Array.from({ length: 10 }, (_, i) => ({ body: `d${i}` })));
    const receiver = client.createReceiver('durable');
    const got = await receiveAll(receiver, 4);
    for (const m of got.slice(0, 3)) await receiver.completeMessage(m);
    // got[3] stays locked (unsettled) across the restart.
    await client.close();
    await t.restart();
    client = new ServiceBusClient(cs);
    const after = client.createReceiver('durable', { receiveMode: 'receiveAndDelete' });
    const rest = await receiveAll(after, 7, 8000);
    assert.deepEqual(rest.map((m) => m.body).sort(), ['d3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9']);
    await after.close();
  });
});
