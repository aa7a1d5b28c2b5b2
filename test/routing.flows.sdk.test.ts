import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { IotHubClient, type EndpointHealthData, type RoutingProperties } from '@azure/arm-iothub';
import { ManagedServiceIdentityClient, type Identity } from '@azure/arm-msi';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { EventHubManagementClient } from '@azure/arm-eventhub';
import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import { ServiceBusClient } from '@azure/service-bus';
import { BlobServiceClient } from '@azure/storage-blob';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { receiveAll } from './support/serviceBus.js';
import { decodeAvro } from './support/avro.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { bodyText, readEventHub, sendAs } from './support/routingFlows.js';

const { Client } = device;
const EH_NS = 'flows-eh';
const SB_NS = 'flows-sb';
/** The role's id, as Azure's built-in role definitions name it. */
const EVENT_HUBS_DATA_SENDER = '2b629674-e913-4c01-ae53-ef4638d8f975';

/**
 * Issue 16's managed-identity flow end to end, each step through the unmodified SDKs a user
 * would use: ARM (identity, hub, role assignment, routing), devices over MQTT and AMQP, and the
 * Event Hubs, Service Bus and Blob clients reading what the hub routed.
 */
describe('routing flows: managed identity, key, Service Bus and storage endpoints with the unmodified SDKs', { timeout: 90_000 }, () => {
  let t: TestHub;
  let iothub: IotHubClient;
  let msi: ManagedServiceIdentityClient;
  let auth: AuthorizationManagementClient;
  let rg: string;
  let hubName: string;
  let ehRoot: string;
  let ehHubId: string;
  let uai: Identity;
  let mqtt: InstanceType<typeof Client>;
  let amqp: InstanceType<typeof Client>;
  /** The built-in endpoint's connection string (events). */
  let eventsCs: string;

  const routingOf = async () => (await iothub.iotHubResource.get(rg, hubName)).properties!.routing!;
  async function putHub(edit: (hub: Awaited<ReturnType<typeof iothub.iotHubResource.get>>) => void) {
    const hub = await iothub.iotHubResource.get(rg, hubName);
    edit(hub);
    return iothub.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
  }
  const putRouting = (routing: RoutingProperties) => putHub((hub) => void (hub.properties!.routing = routing));
  async function health(): Promise<EndpointHealthData[]> {
    const out: EndpointHealthData[] = [];
    for await (const h of iothub.iotHubResource.listEndpointHealth(rg, hubName)) out.push(h);
    return out;
  }
  const healthOf = async (name: string) => (await health()).find((h) => h.endpointId === name);
  const noEndpoints = { eventHubs: [], serviceBusQueues: [], serviceBusTopics: [], storageContainers: [] };
  const fallback = { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true };
  const assignRole = async (scope: string, principalId: string) =>
    auth.roleAssignments.create(scope, randomUUID(), {
      roleDefinitionId: `/subscriptions/${subscriptionId(t)}/providers/Microsoft.Authorization/roleDefinitions/${EVENT_HUBS_DATA_SENDER}`,
      principalId,
      principalType: 'ServicePrincipal',
    });
  const deviceOf = (e: { systemProperties?: Record<string, unknown> }) => String(e.systemProperties?.['iothub-connection-device-id']);

  before(async () => {
    t = await startTestHub({
      ports: { storage: 10000 } as never,
      eventLog: { partitions: 2 },
      routing: { deadAfterMs: 60_000, retryMinMs: 50, retryMaxMs: 300, deadProbeMs: 60_000, minBatchFrequencySeconds: 1, statusLogSeconds: 0 },
      serviceBusTimerMs: 50,
      eventHubsNamespaces: [{ name: EH_NS, eventHubs: [{ name: 'by-identity', partitionCount: 2 }, { name: 'by-key', partitionCount: 1 }] }],
      serviceBusNamespaces: [{ name: SB_NS, queues: [{ name: 'routed' }], topics: [{ name: 'routed-topic', subscriptions: [{ name: 'all' }] }] }],
    } as never);
    iothub = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    msi = new ManagedServiceIdentityClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    auth = new AuthorizationManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
    hubName = t.hub.config.hubName;
    const info = await t.hub.info();
    eventsCs = info.eventHubCompatibleConnectionString;
    ehRoot = info.eventHubsNamespaces!.find((n) => n.name === EH_NS)!.connectionString;
    ehHubId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.EventHub/namespaces/${EH_NS}/eventhubs/by-identity`;
    mqtt = Client.fromConnectionString((await createDevice(t, 'flow-mqtt')).connectionString, deviceMqtt.Mqtt as never);
    amqp = Client.fromConnectionString((await createDevice(t, 'flow-amqp')).connectionString, deviceAmqp.Amqp as never);
    await mqtt.open();
    await amqp.open();
  });
  after(async () => {
    await mqtt?.close();
    await amqp?.close();
    await t?.close();
  });

  test('1. a user-assigned identity is created with @azure/arm-msi', async () => {
    uai = await msi.userAssignedIdentities.createOrUpdate(rg, 'router-identity', { location: 'local' });
    assert.match(uai.id!, /\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/router-identity$/);
    assert.ok(uai.principalId && uai.clientId);
  });

  test('2. the identity is attached to the hub with @azure/arm-iothub', async () => {
    const hub = await putHub((h) => void (h.identity = { type: 'UserAssigned', userAssignedIdentities: { [uai.id!]: {} } }));
    assert.equal(hub.identity!.type, 'UserAssigned');
    assert.equal(hub.identity!.userAssignedIdentities![uai.id!]!.principalId, uai.principalId);
  });

  test("3. the identity gets 'Azure Event Hubs Data Sender' on the event hub with @azure/arm-authorization", async () => {
    const a = await assignRole(ehHubId, uai.principalId!);
    assert.equal(a.scope, ehHubId);
    assert.equal(a.principalId, uai.principalId);
  });

  test('4. an identityBased Event Hubs endpoint (user-assigned) and a route on an application property: MQTT and AMQP messages arrive with system properties, application properties and an enrichment', async () => {
    const endpointUri = `sb://${EH_NS}.servicebus.${t.hub.config.hubDomain}`;
    await putRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'eh-identity', authenticationType: 'identityBased', endpointUri, entityPath: 'by-identity', identity: { userAssignedIdentity: uai.id! } }] },
      routes: [{ name: 'critical', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['eh-identity'], isEnabled: true }],
      fallbackRoute: fallback,
      enrichments: [{ key: 'site', value: 'plant-7', endpointNames: ['eh-identity'] }],
    });
    const stored = (await routingOf()).endpoints!.eventHubs![0]!;
    assert.deepEqual([stored.authenticationType, stored.endpointUri, stored.entityPath, stored.identity?.userAssignedIdentity], ['identityBased', endpointUri, 'by-identity', uai.id]);
    await sendAs(mqtt, '{"temp":30}', { level: 'critical' }, true);
    await sendAs(amqp, 'amqp-critical', { level: 'critical', extra: 'x' });
    await sendAs(mqtt, 'not-routed', { level: 'info' });
    const got = await readEventHub(ehRoot, 'by-identity', (e) => e.length >= 2);
    assert.deepEqual(got.map(bodyText).sort(), ['amqp-critical', '{"temp":30}'].sort(), 'only the matching messages');
    const fromMqtt = got.find((e) => deviceOf(e) === 'flow-mqtt')!;
    assert.deepEqual(fromMqtt.body, { temp: 30 });
    assert.equal(fromMqtt.contentType, 'application/json');
    assert.deepEqual(fromMqtt.properties, { level: 'critical', site: 'plant-7' });
    assert.equal(fromMqtt.systemProperties!['iothub-message-source'], 'Telemetry');
    assert.ok(fromMqtt.systemProperties!['iothub-enqueuedtime'] instanceof Date || typeof fromMqtt.systemProperties!['iothub-enqueuedtime'] === 'number', 'iothub-enqueuedtime is a timestamp');
    assert.match(String(fromMqtt.systemProperties!['iothub-connection-auth-method']), /"type":"sas"/);
    assert.equal(fromMqtt.partitionKey, 'flow-mqtt');
    const fromAmqp = got.find((e) => deviceOf(e) === 'flow-amqp')!;
    assert.deepEqual(fromAmqp.properties, { level: 'critical', extra: 'x', site: 'plant-7' });
    const h = await eventually(async () => ((await healthOf('eh-identity'))?.healthStatus === 'healthy' ? (await healthOf('eh-identity'))! : undefined));
    assert.ok(h.lastSuccessfulSendAttemptTime instanceof Date);
  });

  const backlog: Record<string, string[]> = { 'flow-mqtt': [], 'flow-amqp': [] };
  test("5. the endpoint switched to the hub's system-assigned identity, without a role: unhealthy with an authorization error; devices keep sending, events is unaffected", async () => {
    await putHub((hub) => {
      hub.identity = { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uai.id!]: {} } };
      const e = hub.properties!.routing!.endpoints!.eventHubs![0]!;
      delete e.identity;
    });
    const system = (await iothub.iotHubResource.get(rg, hubName)).identity!.principalId!;
    assert.ok(system);
    for (let i = 0; i < 5; i++) {
      for (const [id, client] of [['flow-mqtt', mqtt], ['flow-amqp', amqp]] as const) {
        const body = `${id}-backlog-${i}`;
        await sendAs(client, body, { level: 'critical', n: String(i) });
        backlog[id]!.push(body);
      }
    }
    await sendAs(amqp, 'to-events', { level: 'info' });
    const h = await eventually(async () => {
      const x = await healthOf('eh-identity');
      return x?.healthStatus === 'unhealthy' ? x : undefined;
    }, 10_000);
    assert.match(h.lastKnownError!, /unauthori[sz]ed|authoriz/i, h.lastKnownError);
    assert.ok(h.lastKnownError!.includes(system), `the error names the principal: ${h.lastKnownError}`);
    assert.ok(h.lastKnownErrorTime instanceof Date);
    assert.equal((await healthOf('events'))!.healthStatus, 'healthy');
    // Both, not the first: the two devices' messages are on different partitions, delivered in batches of their own.
    const events = await readEventHub(eventsCs, '', (e) => e.some((x) => bodyText(x) === 'to-events') && e.some((x) => bodyText(x) === 'not-routed'));
    assert.deepEqual(events.map(bodyText).filter((b) => b.startsWith('to-events') || b === 'not-routed').sort(), ['not-routed', 'to-events'], 'events got the unmatched messages');
    assert.ok(!events.some((e) => bodyText(e).includes('backlog')), 'routed messages are not on events');
  });

  test('6. the role assigned to the system identity: the backlog is delivered, every message, in order per device', async () => {
    const system = (await iothub.iotHubResource.get(rg, hubName)).identity!.principalId!;
    await assignRole(ehHubId, system);
    await eventually(async () => (await healthOf('eh-identity'))?.healthStatus === 'healthy', 15_000);
    const got = await readEventHub(ehRoot, 'by-identity', (e) => e.filter((x) => bodyText(x).includes('backlog')).length >= 10);
    for (const id of Object.keys(backlog)) {
      const mine = got.filter((e) => deviceOf(e) === id && bodyText(e).includes('backlog')).sort((a, b) => a.sequenceNumber - b.sequenceNumber);
      assert.deepEqual(mine.map(bodyText), backlog[id], `${id}: all, in order, once`);
      assert.ok(mine.every((e) => e.properties!.site === 'plant-7'));
    }
  });

  test('7. key-based: the namespace rule connection string from @azure/arm-eventhub listKeys', async () => {
    const keys = await new EventHubManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t)).namespaces.listKeys(rg, EH_NS, 'RootManageSharedAccessKey');
    assert.ok(keys.primaryConnectionString);
    const routing = await routingOf();
    routing.endpoints!.eventHubs!.push({ name: 'eh-key', connectionString: `${keys.primaryConnectionString};EntityPath=by-key` });
    routing.routes!.push({ name: 'keyed', source: 'DeviceMessages', condition: "level = 'keyed'", endpointNames: ['eh-key'], isEnabled: true });
    await putRouting(routing);
    await sendAs(mqtt, 'by-key-1', { level: 'keyed' });
    await sendAs(amqp, 'by-key-2', { level: 'keyed' });
    const got = await readEventHub(ehRoot, 'by-key', (e) => e.length >= 2);
    assert.deepEqual(got.map(bodyText).sort(), ['by-key-1', 'by-key-2']);
    assert.equal((await healthOf('eh-key'))!.healthStatus, 'healthy');
  });

  test('8. Service Bus: a queue endpoint and a topic endpoint, read with @azure/service-bus receivers', async () => {
    const keys = await new ServiceBusManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t)).namespaces.listKeys(rg, SB_NS, 'RootManageSharedAccessKey');
    const sbCs = keys.primaryConnectionString!;
    const routing = await routingOf();
    routing.endpoints!.serviceBusQueues = [{ name: 'sb-queue', connectionString: `${sbCs};EntityPath=routed` }];
    routing.endpoints!.serviceBusTopics = [{ name: 'sb-topic', connectionString: `${sbCs};EntityPath=routed-topic` }];
    // A route has one endpoint (as on IoT Hub): one route each.
    routing.routes!.push({ name: 'to-queue', source: 'DeviceMessages', condition: "level = 'sb'", endpointNames: ['sb-queue'], isEnabled: true });
    routing.routes!.push({ name: 'to-topic', source: 'DeviceMessages', condition: "level = 'sb'", endpointNames: ['sb-topic'], isEnabled: true });
    await putRouting(routing);
    await sendAs(mqtt, '{"q":1}', { level: 'sb' }, true);
    await sendAs(amqp, 'sb-2', { level: 'sb' });
    const client = new ServiceBusClient(sbCs);
    try {
      const queue = client.createReceiver('routed', { receiveMode: 'receiveAndDelete' });
      const topic = client.createReceiver('routed-topic', 'all', { receiveMode: 'receiveAndDelete' });
      for (const [what, receiver] of [['queue', queue], ['topic', topic]] as const) {
        const got = await receiveAll(receiver, 2);
        assert.equal(got.length, 2, what);
        const first = got.find((m) => m.applicationProperties!['iothub-connection-device-id'] === 'flow-mqtt')!;
        assert.deepEqual(first.body, { q: 1 }, what);
        assert.equal(first.contentType, 'application/json');
        assert.equal(first.applicationProperties!.level, 'sb');
        assert.equal(first.applicationProperties!['iothub-message-source'], 'Telemetry');
        assert.ok(got.some((m) => m.applicationProperties!['iothub-connection-device-id'] === 'flow-amqp'));
        await receiver.close();
      }
    } finally {
      await client.close();
    }
  });

  test('a PUT with storage or identityBased endpoint settings IoT Hub refuses (encoding, fileNameFormat, chunk size, batch frequency, no entityPath) is 400 and changes nothing', async () => {
    const before = await iothub.iotHubResource.get(rg, hubName);
    const storage = { name: 'st-bad', connectionString: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net', containerName: 'c' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ storageContainers: [{ ...storage, encoding: 'csv' }] }, /encoding/],
      [{ storageContainers: [{ ...storage, fileNameFormat: '{iothub}/{YYYY}' }] }, /fileNameFormat.*\{partition\}/],
      [{ storageContainers: [{ ...storage, maxChunkSizeInBytes: 1024 }] }, /maxChunkSizeInBytes/],
      [{ storageContainers: [{ ...storage, batchFrequencyInSeconds: 721 }] }, /batchFrequencyInSeconds/],
      [{ serviceBusQueues: [{ name: 'q-bad', authenticationType: 'identityBased', endpointUri: `sb://${SB_NS}.servicebus.localhost` }] }, /entityPath/],
    ];
    for (const [endpoints, message] of cases) {
      const body = structuredClone(before);
      Object.assign(body.properties!.routing!.endpoints!, endpoints);
      const e = await iothub.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, body).then(
        () => assert.fail(`accepted: ${JSON.stringify(endpoints)}`),
        (err: { statusCode?: number; code?: string; message: string }) => err,
      );
      assert.equal(e.statusCode, 400, e.message);
      assert.equal(e.code, 'InvalidRequestContent');
      assert.match(e.message, message);
    }
    assert.equal((await iothub.iotHubResource.get(rg, hubName)).etag, before.etag);
  });

  test('9. Storage: a storageContainers endpoint on the embedded Azurite; @azure/storage-blob lists and reads the blobs, avsc decodes the Avro', async () => {
    const storageCs = (await t.hub.info()).storageConnectionString;
    const blobs = BlobServiceClient.fromConnectionString(storageCs);
    await blobs.getContainerClient('routed').createIfNotExists();
    const routing = await routingOf();
    routing.endpoints!.storageContainers = [{ name: 'st', connectionString: storageCs, containerName: 'routed', batchFrequencyInSeconds: 1, encoding: 'avro' }];
    routing.routes!.push({ name: 'to-storage', source: 'DeviceMessages', condition: "level = 'stored'", endpointNames: ['st'], isEnabled: true });
    await putRouting(routing);
    await sendAs(mqtt, '{"s":1}', { level: 'stored' }, true);
    await sendAs(amqp, 'stored-2', { level: 'stored' });
    const names = await eventually(async () => {
      const n: string[] = [];
      for await (const b of blobs.getContainerClient('routed').listBlobsFlat()) n.push(b.name);
      return n.length > 0 ? n : undefined;
    }, 10_000);
    // Both messages may be in one batch or in two; their records are all that counts.
    await new Promise((r) => setTimeout(r, 1500));
    const records: any[] = [];
    for await (const b of blobs.getContainerClient('routed').listBlobsFlat()) {
      assert.match(b.name, new RegExp(`^${hubName}/\\d{2}/\\d{4}/\\d{2}/\\d{2}/\\d{2}/\\d{2}`), b.name);
      const data = await blobs.getContainerClient('routed').getBlobClient(b.name).downloadToBuffer();
      records.push(...(await decodeAvro(data)).records);
    }
    assert.ok(names.length >= 1);
    assert.deepEqual(records.map((r) => r.Body.toString()).sort(), ['stored-2', '{"s":1}'].sort());
    const r = records.find((x) => x.SystemProperties.connectionDeviceId === 'flow-mqtt');
    assert.equal(r.Properties.level, 'stored');
    assert.equal(r.SystemProperties.contentType, 'application/json');
    assert.match(r.EnqueuedTimeUtc, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/);
  });
});
