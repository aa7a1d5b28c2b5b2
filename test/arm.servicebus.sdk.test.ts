import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import { ServiceBusClient } from '@azure/service-bus';
import { startTestHub, rawRequest, type TestHub } from './support/hub.js';
import { armEndpoint, defaultGroup, managementCredential, managementToken, subscriptionId } from './support/arm.js';
import { receiveAll } from './support/serviceBus.js';
import { fleethub } from './support/process.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

async function armError(p: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode: number; code: string; message: string };
    return { statusCode: err.statusCode, code: err.code, message: err.message };
  }
  assert.fail('expected the call to fail');
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const noRetry = { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } };

describe('Microsoft.ServiceBus/namespaces through the unmodified @azure/arm-servicebus', () => {
  let t: TestHub;
  let client: ServiceBusManagementClient;
  let rg: string;

  before(async () => {
    t = await startTestHub({ serviceBusTimerMs: 100, serviceBusNamespaces: [{ name: 'seeded-bus', queues: [{ name: 'from-config', maxDeliveryCount: 3 }] }] });
    client = new ServiceBusManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
  });
  after(() => t.close());

  test('a configured namespace is seeded into the default group; ARM writes it from then on', async () => {
    const ns = await client.namespaces.get(rg, 'seeded-bus');
    assert.equal(ns.id, `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.ServiceBus/namespaces/seeded-bus`);
    assert.equal(t.hub.serviceBus!.resourceIdOf('seeded-bus'), ns.id);
    assert.equal(t.hub.serviceBus!.resourceIdOf('seeded-bus', 'from-config'), `${ns.id}/queues/from-config`);
    const q = await client.queues.get(rg, 'seeded-bus', 'from-config');
    assert.equal(q.maxDeliveryCount, 3);
    await client.queues.createOrUpdate(rg, 'seeded-bus', 'from-config', { maxDeliveryCount: 7 });
    // `fleethub info` (which opens the stores itself) does not write the configuration over it either.
    const configFile = join(t.dataDir, 'seed-config.json');
    writeFileSync(configFile, JSON.stringify({ serviceBusNamespaces: [{ name: 'seeded-bus', queues: [{ name: 'from-config', maxDeliveryCount: 3 }] }] }));
    const info = await fleethub(['info', '--json', '--data', t.dataDir, '--config', configFile]);
    assert.equal(info.code, 0, info.stderr);
    // A restart with the same configuration keeps what ARM wrote (the configuration only seeds).
    await t.restart();
    client = new ServiceBusManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    assert.equal((await client.queues.get(rg, 'seeded-bus', 'from-config')).maxDeliveryCount, 7);
  });

  test('namespace, queue, topic, subscriptions with SQL and correlation rules; listKeys connection strings used by @azure/service-bus', async () => {
    const created = await client.namespaces.beginCreateOrUpdateAndWait(rg, 'orders-bus', { location: 'westeurope', sku: { name: 'Standard' } });
    assert.equal(created.serviceBusEndpoint, 'https://orders-bus.servicebus.localhost:443/');
    assert.equal(created.provisioningState, 'Succeeded');
    assert.ok((await all(client.namespaces.list())).some((n) => n.name === 'orders-bus'));
    assert.ok((await all(client.namespaces.listByResourceGroup(rg))).some((n) => n.name === 'orders-bus'));
    assert.deepEqual((await client.namespaces.update(rg, 'orders-bus', { tags: { env: 'dev' } })).tags, { env: 'dev' });

    const queue = await client.queues.createOrUpdate(rg, 'orders-bus', 'orders', { lockDuration: 'PT30S', maxDeliveryCount: 5, defaultMessageTimeToLive: 'P1D', deadLetteringOnMessageExpiration: true, maxSizeInMegabytes: 2048 });
    assert.equal(queue.lockDuration, 'PT30S');
    assert.equal(queue.maxDeliveryCount, 5);
    assert.equal(queue.deadLetteringOnMessageExpiration, true);
    assert.equal(queue.maxSizeInMegabytes, 2048);
    assert.equal(queue.requiresSession, false);
    assert.equal((await client.queues.createOrUpdate(rg, 'orders-bus', 'orders', { lockDuration: 'PT45S' })).lockDuration, 'PT45S');
    assert.deepEqual((await all(client.queues.listByNamespace(rg, 'orders-bus'))).map((q) => q.name), ['orders']);

    await client.topics.createOrUpdate(rg, 'orders-bus', 'alerts', { defaultMessageTimeToLive: 'PT1H' });
    await client.subscriptions.createOrUpdate(rg, 'orders-bus', 'alerts', 'all', {});
    await client.subscriptions.createOrUpdate(rg, 'orders-bus', 'alerts', 'critical', { maxDeliveryCount: 2 });
    await client.subscriptions.createOrUpdate(rg, 'orders-bus', 'alerts', 'ops', {});
    // A new subscription has $Default (1=1); replace it with a SQL filter, and with a correlation filter.
    assert.deepEqual((await all(client.rules.listBySubscriptions(rg, 'orders-bus', 'alerts', 'critical'))).map((r) => [r.name, r.sqlFilter?.sqlExpression]), [['$Default', '1=1']]);
    await client.rules.createOrUpdate(rg, 'orders-bus', 'alerts', 'critical', 'sev', { filterType: 'SqlFilter', sqlFilter: { sqlExpression: 'severity >= 3' } });
    await client.rules.delete(rg, 'orders-bus', 'alerts', 'critical', '$Default');
    await client.rules.createOrUpdate(rg, 'orders-bus', 'alerts', 'ops', 'to-ops', { filterType: 'CorrelationFilter', correlationFilter: { to: 'ops', properties: { region: 'eu' } } });
    await client.rules.delete(rg, 'orders-bus', 'alerts', 'ops', '$Default');
    const rule = await client.rules.get(rg, 'orders-bus', 'alerts', 'ops', 'to-ops');
    assert.equal(rule.filterType, 'CorrelationFilter');
    assert.equal(rule.correlationFilter?.to, 'ops');
    assert.deepEqual((await all(client.subscriptions.listByTopic(rg, 'orders-bus', 'alerts'))).map((s) => s.name).sort(), ['all', 'critical', 'ops']);

    await client.queues.createOrUpdateAuthorizationRule(rg, 'orders-bus', 'orders', 'sender', { rights: ['Send'] });
    await client.topics.createOrUpdateAuthorizationRule(rg, 'orders-bus', 'alerts', 'publisher', { rights: ['Send'] });
    await client.namespaces.createOrUpdateAuthorizationRule(rg, 'orders-bus', 'listener', { rights: ['Listen'] });
    assert.deepEqual((await all(client.namespaces.listAuthorizationRules(rg, 'orders-bus'))).map((r) => r.name).sort(), ['RootManageSharedAccessKey', 'listener']);
    const queueKeys = await client.queues.listKeys(rg, 'orders-bus', 'orders', 'sender');
    assert.match(queueKeys.primaryConnectionString!, /^Endpoint=sb:\/\/orders-bus\.servicebus\.localhost\/;SharedAccessKeyName=sender;SharedAccessKey=.+;EntityPath=orders$/);
    const topicKeys = await client.topics.listKeys(rg, 'orders-bus', 'alerts', 'publisher');
    const listenKeys = await client.namespaces.listKeys(rg, 'orders-bus', 'listener');

    const senderClient = new ServiceBusClient(queueKeys.primaryConnectionString!, noRetry);
    const publisherClient = new ServiceBusClient(topicKeys.primaryConnectionString!, noRetry);
    const listener = new ServiceBusClient(listenKeys.primaryConnectionString!, noRetry);
    try {
      const sender = senderClient.createSender('orders');
      await sender.sendMessages({ body: 'hello', messageId: 'm1' });
      const receiver = listener.createReceiver('orders');
      const [m] = await receiveAll(receiver, 1);
      assert.equal(m?.body, 'hello');
      await receiver.completeMessage(m!);
      await receiver.close();
      // The queue's rule covers only its queue; the listener cannot send.
      await assert.rejects(listener.createSender('orders').sendMessages({ body: 'x' }));

      const publisher = publisherClient.createSender('alerts');
      await publisher.sendMessages([
        { body: 'low', applicationProperties: { severity: 1 } },
        { body: 'high', applicationProperties: { severity: 5 } },
        { body: 'for-ops', to: 'ops', applicationProperties: { region: 'eu', severity: 0 } },
      ]);
      const got = async (sub: string, n: number) => {
        const r = listener.createReceiver('alerts', sub, { receiveMode: 'receiveAndDelete' });
        const ms = await receiveAll(r, n, n ? 5000 : 1500);
        await r.close();
        return ms.map((x) => x.body).sort();
      };
      assert.deepEqual(await got('all', 3), ['for-ops', 'high', 'low']);
      assert.deepEqual(await got('critical', 1), ['high']);
      assert.deepEqual(await got('ops', 1), ['for-ops']);
    } finally {
      await senderClient.close();
      await publisherClient.close();
      await listener.close();
    }

    // regenerateKeys: the old key is refused, the new one works.
    const regenerated = await client.queues.regenerateKeys(rg, 'orders-bus', 'orders', 'sender', { keyType: 'PrimaryKey' });
    assert.notEqual(regenerated.primaryKey, queueKeys.primaryKey);
    const stale = new ServiceBusClient(queueKeys.primaryConnectionString!, noRetry);
    await assert.rejects(stale.createSender('orders').sendMessages({ body: 'x' }));
    await stale.close();
    const fresh = new ServiceBusClient(regenerated.primaryConnectionString!, noRetry);
    await fresh.createSender('orders').sendMessages({ body: 'y' });
    await fresh.close();

    // Deleting entities.
    await client.subscriptions.delete(rg, 'orders-bus', 'alerts', 'ops');
    await client.topics.delete(rg, 'orders-bus', 'alerts');
    await client.queues.delete(rg, 'orders-bus', 'orders');
    assert.equal((await all(client.queues.listByNamespace(rg, 'orders-bus'))).length, 0);
    assert.equal((await all(client.topics.listByNamespace(rg, 'orders-bus'))).length, 0);
  });

  test('bad input gets ARM errors and changes nothing', async () => {
    await client.namespaces.beginCreateOrUpdateAndWait(rg, 'checks-bus', { location: 'westeurope' });
    await client.queues.createOrUpdate(rg, 'checks-bus', 'q', { maxDeliveryCount: 4 });
    await client.topics.createOrUpdate(rg, 'checks-bus', 't', {});
    await client.subscriptions.createOrUpdate(rg, 'checks-bus', 't', 's', {});
    const sessions = await armError(client.queues.createOrUpdate(rg, 'checks-bus', 'q', { requiresSession: true, maxDeliveryCount: 9 }));
    assert.equal(sessions.statusCode, 400);
    assert.equal(sessions.code, 'FeatureNotSupported');
    assert.match(sessions.message, /requiresSession/);
    const sessionSub = await armError(client.subscriptions.createOrUpdate(rg, 'checks-bus', 't', 's2', { requiresSession: true }));
    assert.equal(sessionSub.statusCode, 400);
    const badFilter = await armError(client.rules.createOrUpdate(rg, 'checks-bus', 't', 's', 'bad', { filterType: 'SqlFilter', sqlFilter: { sqlExpression: 'severity >>= 3 AND' } }));
    assert.equal(badFilter.statusCode, 400);
    assert.equal(badFilter.code, 'InvalidRequestContent');
    const badLock = await armError(client.queues.createOrUpdate(rg, 'checks-bus', 'q', { lockDuration: 'PT10M' }));
    assert.equal(badLock.statusCode, 400);
    const badName = await armError(client.queues.createOrUpdate(rg, 'checks-bus', 'bad/name$', {}));
    assert.ok([400, 404].includes(badName.statusCode));
    const noParent = await armError(client.queues.createOrUpdate(rg, 'missing-bus', 'q', {}));
    assert.equal(noParent.statusCode, 404);
    assert.equal(noParent.code, 'ParentResourceNotFound');
    const noTopic = await armError(client.subscriptions.createOrUpdate(rg, 'checks-bus', 'nope', 's', {}));
    assert.equal(noTopic.statusCode, 404);
    assert.equal(noTopic.code, 'ParentResourceNotFound');
    const noQueue = await armError(client.queues.get(rg, 'checks-bus', 'nope'));
    assert.equal(noQueue.statusCode, 404);
    assert.equal(noQueue.code, 'ResourceNotFound');
    const clash = await armError(client.topics.createOrUpdate(rg, 'checks-bus', 'q', {}));
    assert.equal(clash.statusCode, 409);
    const badNs = await armError(client.namespaces.beginCreateOrUpdateAndWait(rg, '1bad', { location: 'westeurope' }));
    assert.equal(badNs.statusCode, 400);
    // One name space with Event Hubs namespaces.
    const token = await managementToken(t);
    const eh = await rawRequest(t.host, 'PUT', `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.EventHub/namespaces/checks-bus?api-version=2024-01-01`, {
      body: JSON.stringify({ location: 'westeurope' }),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    assert.equal(eh.status, 409);
    // Nothing changed.
    const q = await client.queues.get(rg, 'checks-bus', 'q');
    assert.equal(q.maxDeliveryCount, 4);
    assert.equal(q.requiresSession, false);
    assert.equal(q.lockDuration, 'PT1M');
    assert.deepEqual((await all(client.rules.listBySubscriptions(rg, 'checks-bus', 't', 's'))).map((r) => r.name), ['$Default']);
    assert.deepEqual((await all(client.subscriptions.listByTopic(rg, 'checks-bus', 't'))).map((s) => s.name), ['s']);
    assert.deepEqual((await all(client.topics.listByNamespace(rg, 'checks-bus'))).map((x) => x.name), ['t']);
    assert.equal(t.hub.eventHubs!.namespaces.getNamespace('checks-bus'), undefined);
  });

  test('deleting a namespace removes its entities and messages', async () => {
    await client.namespaces.beginCreateOrUpdateAndWait(rg, 'gone-bus', { location: 'westeurope' });
    await client.queues.createOrUpdate(rg, 'gone-bus', 'q', {});
    const keys = await client.namespaces.listKeys(rg, 'gone-bus', 'RootManageSharedAccessKey');
    const sb = new ServiceBusClient(keys.primaryConnectionString!, noRetry);
    await sb.createSender('q').sendMessages({ body: 'old' });
    await sb.close();
    await client.namespaces.beginDeleteAndWait(rg, 'gone-bus');
    assert.equal((await armError(client.namespaces.get(rg, 'gone-bus'))).statusCode, 404);
    assert.equal(t.hub.serviceBus!.namespaces.getNamespace('gone-bus'), undefined);
    await client.namespaces.beginCreateOrUpdateAndWait(rg, 'gone-bus', { location: 'westeurope' });
    await client.queues.createOrUpdate(rg, 'gone-bus', 'q', {});
    const again = await client.namespaces.listKeys(rg, 'gone-bus', 'RootManageSharedAccessKey');
    assert.notEqual(again.primaryKey, keys.primaryKey);
    const sb2 = new ServiceBusClient(again.primaryConnectionString!, noRetry);
    const peeked = await sb2.createReceiver('q').peekMessages(10);
    await sb2.close();
    assert.equal(peeked.length, 0);
  });
});
