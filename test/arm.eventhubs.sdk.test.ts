import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubManagementClient } from '@azure/arm-eventhub';
import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import { DeploymentsClient } from '@azure/arm-resourcesdeployments';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition } from '@azure/event-hubs';
import { startTestHub, rawRequest, type TestHub } from './support/hub.js';
import { receive } from './support/eventHubs.js';
import { armEndpoint, defaultGroup, managementCredential, managementToken, subscriptionId } from './support/arm.js';

async function armError(p: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode: number; code: string; message: string; details?: { error?: { code?: string } } };
    return { statusCode: err.statusCode, code: err.code ?? err.details?.error?.code ?? '', message: err.message };
  }
  assert.fail('expected the call to fail');
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const noRetry = { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } };

describe('Microsoft.EventHub/namespaces through the unmodified @azure/arm-eventhub', () => {
  let t: TestHub;
  let client: EventHubManagementClient;
  let rg: string;

  before(async () => {
    t = await startTestHub({ eventHubsNamespaces: [{ name: 'seeded-ns', eventHubs: [{ name: 'from-config', partitionCount: 2 }] }] });
    client = new EventHubManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
  });
  after(() => t.close());

  test('a configured namespace is seeded into the default group, with its event hub', async () => {
    const ns = await client.namespaces.get(rg, 'seeded-ns');
    assert.equal(ns.id, `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.EventHub/namespaces/seeded-ns`);
    assert.equal(ns.serviceBusEndpoint, 'https://seeded-ns.servicebus.localhost:443/');
    assert.equal(t.hub.eventHubs!.resourceIdOf('seeded-ns'), ns.id);
    assert.equal(t.hub.eventHubs!.resourceIdOf('seeded-ns', 'from-config'), `${ns.id}/eventhubs/from-config`);
    const hubs = await all(client.eventHubs.listByNamespace(rg, 'seeded-ns'));
    assert.deepEqual(hubs.map((h) => [h.name, h.partitionCount]), [['from-config', 2]]);
    // A configured namespace is the configuration's to remove.
    const e = await armError(client.namespaces.beginDeleteAndWait(rg, 'seeded-ns'));
    assert.equal(e.statusCode, 400);
    assert.ok(t.hub.eventHubs!.namespaces.getNamespace('seeded-ns'));
  });

  test('create, get, list and update a namespace; an event hub, consumer group and rules in it; keys that @azure/event-hubs uses unmodified', async () => {
    const created = await client.namespaces.beginCreateOrUpdateAndWait(rg, 'orders-ns', { location: 'westeurope', sku: { name: 'Standard', tier: 'Standard' }, tags: { team: 'a' } });
    assert.equal(created.name, 'orders-ns');
    assert.equal(created.provisioningState, 'Succeeded');
    assert.equal(created.serviceBusEndpoint, 'https://orders-ns.servicebus.localhost:443/');
    assert.deepEqual(created.tags, { team: 'a' });
    assert.ok((await all(client.namespaces.list())).some((n) => n.name === 'orders-ns'));
    assert.ok((await all(client.namespaces.listByResourceGroup(rg))).some((n) => n.name === 'orders-ns'));
    const updated = await client.namespaces.update(rg, 'orders-ns', { tags: { team: 'b' } });
    assert.deepEqual(updated?.tags, { team: 'b' });
    assert.deepEqual((await client.namespaces.get(rg, 'orders-ns')).tags, { team: 'b' });

    const hub = await client.eventHubs.createOrUpdate(rg, 'orders-ns', 'orders', { partitionCount: 3, messageRetentionInDays: 2 });
    assert.equal(hub.partitionCount, 3);
    assert.deepEqual(hub.partitionIds, ['0', '1', '2']);
    assert.equal(hub.messageRetentionInDays, 2);
    const retention = await client.eventHubs.createOrUpdate(rg, 'orders-ns', 'orders', { partitionCount: 3, messageRetentionInDays: 5 });
    assert.equal(retention.messageRetentionInDays, 5);
    assert.equal((await client.eventHubs.get(rg, 'orders-ns', 'orders')).messageRetentionInDays, 5);
    assert.deepEqual((await all(client.eventHubs.listByNamespace(rg, 'orders-ns'))).map((h) => h.name), ['orders']);

    await client.consumerGroups.createOrUpdate(rg, 'orders-ns', 'orders', 'analytics', { userMetadata: 'team a' });
    const groups = await all(client.consumerGroups.listByEventHub(rg, 'orders-ns', 'orders'));
    assert.deepEqual(groups.map((g) => g.name).sort(), ['$Default', 'analytics']);
    assert.equal((await client.consumerGroups.get(rg, 'orders-ns', 'orders', 'analytics')).userMetadata, 'team a');

    const nsRules = await all(client.namespaces.listAuthorizationRules(rg, 'orders-ns'));
    assert.deepEqual(nsRules.map((r) => r.name), ['RootManageSharedAccessKey']);
    await client.eventHubs.createOrUpdateAuthorizationRule(rg, 'orders-ns', 'orders', 'sender', { rights: ['Send'] });
    await client.eventHubs.createOrUpdateAuthorizationRule(rg, 'orders-ns', 'orders', 'reader', { rights: ['Listen'] });
    assert.deepEqual((await client.eventHubs.getAuthorizationRule(rg, 'orders-ns', 'orders', 'sender')).rights, ['Send']);

    const root = await client.namespaces.listKeys(rg, 'orders-ns', 'RootManageSharedAccessKey');
    assert.match(root.primaryConnectionString!, /^Endpoint=sb:\/\/orders-ns\.servicebus\.localhost\/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=/);
    const sender = await client.eventHubs.listKeys(rg, 'orders-ns', 'orders', 'sender');
    assert.match(sender.primaryConnectionString!, /;EntityPath=orders$/);
    const reader = await client.eventHubs.listKeys(rg, 'orders-ns', 'orders', 'reader');

    // The connection strings, unmodified: the namespace's host name reaches it over TLS.
    const producer = new EventHubProducerClient(sender.primaryConnectionString!, noRetry);
    const consumer = new EventHubConsumerClient('analytics', reader.primaryConnectionString!, noRetry);
    try {
      assert.deepEqual(await producer.getPartitionIds(), ['0', '1', '2']);
      await producer.sendBatch([{ body: 'one' }, { body: 'two', properties: { n: 2 } }], { partitionId: '1' });
      const events = await receive(consumer, '1', earliestEventPosition, (got) => got.length >= 2);
      assert.deepEqual(events.map((e) => e.body), ['one', 'two']);
      assert.equal(events[1]!.properties!.n, 2);
      // The reader's rule cannot send.
      const readerProducer = new EventHubProducerClient(reader.primaryConnectionString!, noRetry);
      await assert.rejects(readerProducer.sendBatch([{ body: 'x' }]), /Send/);
      await readerProducer.close();
    } finally {
      await producer.close();
      await consumer.close();
    }

    // regenerateKeys: the old key stops working, the new one works.
    const regenerated = await client.eventHubs.regenerateKeys(rg, 'orders-ns', 'orders', 'sender', { keyType: 'PrimaryKey' });
    assert.notEqual(regenerated.primaryKey, sender.primaryKey);
    assert.equal(regenerated.secondaryKey, sender.secondaryKey);
    const stale = new EventHubProducerClient(sender.primaryConnectionString!, noRetry);
    await assert.rejects(stale.sendBatch([{ body: 'x' }]));
    await stale.close();
    const fresh = new EventHubProducerClient(regenerated.primaryConnectionString!, noRetry);
    await fresh.sendBatch([{ body: 'three' }], { partitionId: '1' });
    await fresh.close();
    const nsRegen = await client.namespaces.regenerateKeys(rg, 'orders-ns', 'RootManageSharedAccessKey', { keyType: 'SecondaryKey' });
    assert.equal(nsRegen.primaryKey, root.primaryKey);
    assert.notEqual(nsRegen.secondaryKey, root.secondaryKey);

    // Deleting children.
    await client.consumerGroups.delete(rg, 'orders-ns', 'orders', 'analytics');
    assert.deepEqual((await all(client.consumerGroups.listByEventHub(rg, 'orders-ns', 'orders'))).map((g) => g.name), ['$Default']);
    await client.eventHubs.deleteAuthorizationRule(rg, 'orders-ns', 'orders', 'reader');
    assert.deepEqual((await all(client.eventHubs.listAuthorizationRules(rg, 'orders-ns', 'orders'))).map((r) => r.name), ['sender']);
  });

  test('bad input gets ARM errors and changes nothing', async () => {
    await client.namespaces.beginCreateOrUpdateAndWait(rg, 'checks-ns', { location: 'westeurope' });
    await client.eventHubs.createOrUpdate(rg, 'checks-ns', 'fixed', { partitionCount: 2 });
    const badName = await armError(client.namespaces.beginCreateOrUpdateAndWait(rg, 'ab', { location: 'westeurope' }));
    assert.equal(badName.statusCode, 400);
    assert.equal(badName.code, 'InvalidResourceName');
    const noParent = await armError(client.eventHubs.createOrUpdate(rg, 'missing-ns', 'x', { partitionCount: 2 }));
    assert.equal(noParent.statusCode, 404);
    assert.equal(noParent.code, 'ParentResourceNotFound');
    const noHub = await armError(client.eventHubs.get(rg, 'checks-ns', 'nope'));
    assert.equal(noHub.statusCode, 404);
    assert.equal(noHub.code, 'ResourceNotFound');
    const noGroupParent = await armError(client.consumerGroups.createOrUpdate(rg, 'checks-ns', 'nope', 'g', {}));
    assert.equal(noGroupParent.statusCode, 404);
    const tooMany = await armError(client.eventHubs.createOrUpdate(rg, 'checks-ns', 'big', { partitionCount: 33 }));
    assert.equal(tooMany.statusCode, 400);
    assert.equal(tooMany.code, 'InvalidRequestContent');
    const changed = await armError(client.eventHubs.createOrUpdate(rg, 'checks-ns', 'fixed', { partitionCount: 4 }));
    assert.equal(changed.statusCode, 400);
    const badRights = await armError(client.namespaces.createOrUpdateAuthorizationRule(rg, 'checks-ns', 'r', { rights: ['Manage'] }));
    assert.equal(badRights.statusCode, 400);
    const badEntity = await armError(client.eventHubs.createOrUpdate(rg, 'checks-ns', '-bad-', {}));
    assert.equal(badEntity.statusCode, 400);
    // Names are one space with Service Bus's and unique across groups.
    const token = await managementToken(t);
    await rawRequest(t.host, 'PUT', `/subscriptions/${subscriptionId(t)}/resourcegroups/other-rg?api-version=2021-04-01`, { body: JSON.stringify({ location: 'westeurope' }), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    const taken = await armError(client.namespaces.beginCreateOrUpdateAndWait('other-rg', 'checks-ns', { location: 'westeurope' }));
    assert.equal(taken.statusCode, 409);
    const raw = await rawRequest(t.host, 'PUT', `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.EventHub/namespaces/checks-ns/eventhubs/fixed?api-version=2024-01-01`, {
      body: '{"properties": [1]}',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    });
    assert.equal(raw.status, 400);
    assert.equal(raw.json.error.code, 'InvalidRequestContent');
    // Nothing changed.
    assert.deepEqual((await all(client.eventHubs.listByNamespace(rg, 'checks-ns'))).map((h) => [h.name, h.partitionCount]), [['fixed', 2]]);
    assert.deepEqual((await all(client.namespaces.listAuthorizationRules(rg, 'checks-ns'))).map((r) => r.name), ['RootManageSharedAccessKey']);
    assert.equal(t.hub.eventHubs!.namespaces.getNamespace('ab'), undefined);
    assert.equal((await all(client.namespaces.listByResourceGroup('other-rg'))).length, 0);
  });

  test('deleting a namespace removes it and its events; a namespace of that name starts empty', async () => {
    await client.namespaces.beginCreateOrUpdateAndWait(rg, 'gone-ns', { location: 'westeurope' });
    await client.eventHubs.createOrUpdate(rg, 'gone-ns', 'hub', { partitionCount: 1 });
    const keys = await client.namespaces.listKeys(rg, 'gone-ns', 'RootManageSharedAccessKey');
    const producer = new EventHubProducerClient(keys.primaryConnectionString!, 'hub', noRetry);
    await producer.sendBatch([{ body: 'old' }]);
    await producer.close();
    await client.namespaces.beginDeleteAndWait(rg, 'gone-ns');
    assert.equal((await armError(client.namespaces.get(rg, 'gone-ns'))).statusCode, 404);
    assert.equal(t.hub.eventHubs!.namespaces.getNamespace('gone-ns'), undefined);
    const stale = new EventHubProducerClient(keys.primaryConnectionString!, 'hub', noRetry);
    await assert.rejects(stale.sendBatch([{ body: 'x' }]));
    await stale.close();
    await client.namespaces.beginCreateOrUpdateAndWait(rg, 'gone-ns', { location: 'westeurope' });
    await client.eventHubs.createOrUpdate(rg, 'gone-ns', 'hub', { partitionCount: 1 });
    const info = await t.hub.eventHubs!.namespaces.served('gone-ns', 'hub')!.partitionProperties(0);
    assert.equal(info.isEmpty, true);
  });

  test('a template deployment creates a namespace, an event hub, a Service Bus namespace and queue, and a role assignment scoped to the event hub', async () => {
    const cred = managementCredential(t);
    const uai = await new ManagedServiceIdentityClient(cred, subscriptionId(t), armEndpoint(t)).userAssignedIdentities.createOrUpdate(rg, 'tmpl-sender', { location: 'westeurope' });
    const template = {
      $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
      contentVersion: '1.0.0.0',
      parameters: { namespaceName: { type: 'string' }, principalId: { type: 'string' } },
      variables: { senderRole: "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '2b629674-e913-4c01-ae53-ef4638d8f975')]" },
      resources: [
        { type: 'Microsoft.EventHub/namespaces', apiVersion: '2024-01-01', name: "[parameters('namespaceName')]", location: '[resourceGroup().location]', sku: { name: 'Standard', tier: 'Standard', capacity: 1 } },
        {
          type: 'Microsoft.EventHub/namespaces/eventhubs',
          apiVersion: '2024-01-01',
          name: "[format('{0}/{1}', parameters('namespaceName'), 'telemetry')]",
          dependsOn: ["[resourceId('Microsoft.EventHub/namespaces', parameters('namespaceName'))]"],
          properties: { partitionCount: 2, retentionDescription: { cleanupPolicy: 'Delete', retentionTimeInHours: 48 } },
          resources: [{ type: 'consumergroups', apiVersion: '2024-01-01', name: 'analytics', dependsOn: ["[resourceId('Microsoft.EventHub/namespaces/eventhubs', parameters('namespaceName'), 'telemetry')]"], properties: {} }],
        },
        { type: 'Microsoft.ServiceBus/namespaces', apiVersion: '2021-11-01', name: 'tmpl-bus', location: '[resourceGroup().location]', sku: { name: 'Standard' } },
        { type: 'Microsoft.ServiceBus/namespaces/queues', apiVersion: '2021-11-01', name: 'tmpl-bus/jobs', dependsOn: ["[resourceId('Microsoft.ServiceBus/namespaces', 'tmpl-bus')]"], properties: { maxDeliveryCount: 3, lockDuration: 'PT20S' } },
        {
          type: 'Microsoft.Authorization/roleAssignments',
          apiVersion: '2022-04-01',
          name: "[guid(resourceGroup().id, parameters('principalId'), 'telemetry-sender')]",
          scope: "[resourceId('Microsoft.EventHub/namespaces/eventhubs', parameters('namespaceName'), 'telemetry')]",
          dependsOn: ["[resourceId('Microsoft.EventHub/namespaces/eventhubs', parameters('namespaceName'), 'telemetry')]"],
          properties: { roleDefinitionId: "[variables('senderRole')]", principalId: "[parameters('principalId')]", principalType: 'ServicePrincipal' },
        },
      ],
      outputs: {
        endpoint: { type: 'string', value: "[reference(resourceId('Microsoft.EventHub/namespaces', parameters('namespaceName')), '2024-01-01').serviceBusEndpoint]" },
        eventHubs: { type: 'string', value: "[listKeys(resourceId('Microsoft.EventHub/namespaces/authorizationRules', parameters('namespaceName'), 'RootManageSharedAccessKey'), '2024-01-01').primaryConnectionString]" },
        serviceBus: { type: 'string', value: "[listKeys(resourceId('Microsoft.ServiceBus/namespaces/authorizationRules', 'tmpl-bus', 'RootManageSharedAccessKey'), '2021-11-01').primaryConnectionString]" },
      },
    };
    const options = { endpoint: `https://${t.host}`, credentials: { scopes: ['https://management.azure.com/.default'] }, updateIntervalInMs: 50 };
    const deployments = new DeploymentsClient(cred, subscriptionId(t), options);
    const result = await deployments.deployments.createOrUpdate(rg, 'namespaces', { properties: { mode: 'Incremental', template, parameters: { namespaceName: { value: 'tmpl-hubs' }, principalId: { value: uai.principalId } } } });
    assert.equal(result.properties!.provisioningState, 'Succeeded', JSON.stringify(result.properties!.error));
    const outputs = result.properties!.outputs as Record<string, { value: string }>;
    assert.equal(outputs.endpoint!.value, 'https://tmpl-hubs.servicebus.localhost:443/');
    // listKeys() of the namespaces' implicit root rules: connection strings that work.
    assert.match(outputs.eventHubs!.value, /^Endpoint=sb:\/\/tmpl-hubs\.servicebus\.localhost\/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=/);
    assert.match(outputs.serviceBus!.value, /^Endpoint=sb:\/\/tmpl-bus\.servicebus\.localhost\//);
    const producer = new EventHubProducerClient(outputs.eventHubs!.value, 'telemetry', noRetry);
    await producer.sendBatch([{ body: 'from a template output' }]);
    await producer.close();

    const hub = await client.eventHubs.get(rg, 'tmpl-hubs', 'telemetry');
    assert.equal(hub.partitionCount, 2);
    assert.equal(hub.messageRetentionInDays, 2);
    assert.ok((await all(client.consumerGroups.listByEventHub(rg, 'tmpl-hubs', 'telemetry'))).some((g) => g.name === 'analytics'));
    const queue = await new ServiceBusManagementClient(cred, subscriptionId(t), armEndpoint(t)).queues.get(rg, 'tmpl-bus', 'jobs');
    assert.equal(queue.maxDeliveryCount, 3);
    assert.equal(queue.lockDuration, 'PT20S');
    const assignments = await all(new AuthorizationManagementClient(cred, subscriptionId(t), armEndpoint(t)).roleAssignments.listForScope(hub.id!, { filter: 'atScope()' }));
    const mine = assignments.find((a) => a.principalId === uai.principalId);
    assert.ok(mine, 'the role assignment exists at the event hub');
    assert.equal(mine.scope, hub.id);
    assert.match(mine.roleDefinitionId!, /2b629674-e913-4c01-ae53-ef4638d8f975$/);
    // The scope must name something that exists: an unknown event hub is refused.
    const auth = new AuthorizationManagementClient(cred, subscriptionId(t), armEndpoint(t));
    const missing = await armError(auth.roleAssignments.create(`${hub.id!.replace(/telemetry$/, 'nope')}`, '00000000-0000-0000-0000-000000000001', { roleDefinitionId: mine.roleDefinitionId!, principalId: uai.principalId!, principalType: 'ServicePrincipal' }));
    assert.equal(missing.statusCode, 404);
  });
});
