import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IotHubClient, type IotHubDescription } from '@azure/arm-iothub';
import { startTestHub, rawRequest, type TestHub } from './support/hub.js';
import { rootCa, issue } from './support/certs.js';
import { armEndpoint, defaultGroup, managementCredential, managementToken, subscriptionId } from './support/arm.js';

/** The error an ARM SDK call fails with: status and ARM error code. */
async function armError(p: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode: number; code: string; message: string };
    return { statusCode: err.statusCode, code: err.code, message: err.message };
  }
  assert.fail('expected the call to fail');
}

describe('Microsoft.Devices/IotHubs through the unmodified @azure/arm-iothub', () => {
  let t: TestHub;
  let client: IotHubClient;
  let rg: string;
  let hubName: string;

  before(async () => {
    t = await startTestHub({ eventLog: { partitions: 2 } });
    client = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
    hubName = t.hub.config.hubName;
  });
  after(() => t.close());

  test('the process hub is listed in the default group and subscription with its host name and partitions', async () => {
    const bySub: IotHubDescription[] = [];
    for await (const h of client.iotHubResource.listBySubscription()) bySub.push(h);
    const byGroup: IotHubDescription[] = [];
    for await (const h of client.iotHubResource.listByResourceGroup(rg)) byGroup.push(h);
    assert.deepEqual(bySub.map((h) => h.name), [hubName]);
    assert.deepEqual(byGroup.map((h) => h.name), [hubName]);
    const hub = await client.iotHubResource.get(rg, hubName);
    assert.equal(hub.id, `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${hubName}`);
    assert.equal(hub.type, 'Microsoft.Devices/IotHubs');
    assert.equal(hub.properties!.hostName, t.host);
    assert.equal(hub.properties!.provisioningState, 'Succeeded');
    assert.equal(hub.properties!.eventHubEndpoints!.events!.partitionCount, 2);
    assert.deepEqual(hub.properties!.eventHubEndpoints!.events!.partitionIds, ['0', '1']);
    assert.equal(hub.identity!.type, 'None');
    assert.equal(hub.sku.name, 'S1');
  });

  test('listKeys returns the shared access policies with their keys', async () => {
    const keys = [];
    for await (const k of client.iotHubResource.listKeys(rg, hubName)) keys.push(k);
    const owner = keys.find((k) => k.keyName === 'iothubowner')!;
    assert.equal(owner.primaryKey, (await t.hub.store.policies.get('iothubowner'))!.primaryKey);
    assert.match(owner.rights, /RegistryWrite/);
  });

  test('read-modify-write: PUT of what GET returned keeps it, with a changed setting', async () => {
    const hub = await client.iotHubResource.get(rg, hubName);
    hub.properties!.cloudToDevice!.maxDeliveryCount = 42;
    hub.properties!.enableFileUploadNotifications = true;
    const updated = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
    assert.equal(updated.properties!.cloudToDevice!.maxDeliveryCount, 42);
    assert.equal(updated.properties!.enableFileUploadNotifications, true);
    assert.notEqual(updated.etag, hub.etag);
    const again = await client.iotHubResource.get(rg, hubName);
    assert.equal(again.properties!.cloudToDevice!.maxDeliveryCount, 42);
  });

  test('raw read-modify-write with api-version 2021-03-31: every read-only field GET returned is accepted back', async () => {
    const token = await managementToken(t);
    const path = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${hubName}?api-version=2021-03-31`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const got = await rawRequest(t.host, 'GET', path, { headers });
    assert.equal(got.status, 200);
    got.json.properties.messagingEndpoints.fileNotifications.maxDeliveryCount = 7;
    const put = await rawRequest(t.host, 'PUT', path, { headers, body: JSON.stringify(got.json) });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.properties.messagingEndpoints.fileNotifications.maxDeliveryCount, 7);
    assert.equal(put.json.properties.hostName, got.json.properties.hostName);
    // `//` inside the path (what the SDKs send for scopes) is tolerated.
    const doubled = await rawRequest(t.host, 'GET', path.replace('/providers/', '//providers/'), { headers });
    assert.equal(doubled.status, 200);
  });

  test('tags are updated by PATCH', async () => {
    const updated = await client.iotHubResource.beginUpdateAndWait(rg, hubName, { tags: { env: 'test' } });
    assert.deepEqual(updated.tags, { env: 'test' });
    assert.deepEqual((await client.iotHubResource.get(rg, hubName)).tags, { env: 'test' });
  });

  test('the system-assigned identity turned on gets a principal; off removes it; on again is a new principal', async () => {
    const hub = await client.iotHubResource.get(rg, hubName);
    const on = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, { ...hub, identity: { type: 'SystemAssigned' } });
    assert.equal(on.identity!.type, 'SystemAssigned');
    assert.match(on.identity!.principalId!, /^[0-9a-f-]{36}$/);
    assert.equal(on.identity!.tenantId, t.hub.control!.deps.tenancy.tenantId);
    const first = on.identity!.principalId!;
    assert.ok(await t.hub.control!.deps.principals.get(first));

    const off = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, { ...on, identity: { type: 'None' } });
    assert.equal(off.identity!.type, 'None');
    assert.equal(off.identity!.principalId, undefined);
    assert.equal(await t.hub.control!.deps.principals.get(first), undefined);

    const again = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, { ...off, identity: { type: 'SystemAssigned' } });
    assert.notEqual(again.identity!.principalId, first);
  });

  test('turning the system identity off while a routing endpoint uses it is refused, and nothing changes', async () => {
    const hub = await client.iotHubResource.get(rg, hubName);
    hub.identity = { type: 'SystemAssigned' };
    hub.properties!.routing!.endpoints!.eventHubs = [
      { name: 'telemetry-eh', authenticationType: 'identityBased', endpointUri: 'sb://ns.servicebus.windows.net', entityPath: 'telemetry' },
    ];
    const withEndpoint = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
    const principalId = withEndpoint.identity!.principalId;
    assert.equal(withEndpoint.properties!.routing!.endpoints!.eventHubs![0]!.authenticationType, 'identityBased');

    const e = await armError(client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, { ...withEndpoint, identity: { type: 'None' } }));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'IdentityInUse');
    assert.match(e.message, /telemetry-eh/);
    const after = await client.iotHubResource.get(rg, hubName);
    assert.equal(after.identity!.type, 'SystemAssigned');
    assert.equal(after.identity!.principalId, principalId);
    assert.equal(after.etag, withEndpoint.etag);

    // Removing the endpoint first, then the identity, works.
    after.properties!.routing!.endpoints!.eventHubs = [];
    const cleared = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, { ...after, identity: { type: 'None' } });
    assert.equal(cleared.identity!.type, 'None');
  });

  test('checkNameAvailability: a hub\'s name is taken (any case), an unused one is available, a malformed one is Invalid', async () => {
    assert.deepEqual(await client.iotHubResource.checkNameAvailability({ name: hubName.toUpperCase() }), { nameAvailable: false, reason: 'AlreadyExists', message: `IotHub name '${hubName.toUpperCase()}' is not available` });
    const free = await client.iotHubResource.checkNameAvailability({ name: 'no-such-hub-1' });
    assert.equal(free.nameAvailable, true);
    for (const name of ['ab', 'ends-with-', 'under_score', 'x'.repeat(51)]) {
      const bad = await client.iotHubResource.checkNameAvailability({ name });
      assert.equal(bad.nameAvailable, false, name);
      assert.equal(bad.reason, 'Invalid', name);
    }
    // No name: ARM's 400; another provider action: not found.
    const token = await managementToken(t);
    const path = `/subscriptions/${subscriptionId(t)}/providers/Microsoft.Devices`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const missing = await rawRequest(t.host, 'POST', `${path}/checkNameAvailability?api-version=2023-06-30`, { headers, body: '{}' });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'InvalidRequestContent');
    const dps = await rawRequest(t.host, 'POST', `${path}/checkProvisioningServiceNameAvailability?api-version=2022-12-12`, { headers, body: JSON.stringify({ name: `${hubName}-dps` }) });
    assert.equal(dps.status, 200);
    assert.equal(dps.json.reason, 'AlreadyExists');
    const other = await rawRequest(t.host, 'POST', `${path}/checkSomethingElse?api-version=2023-06-30`, { headers, body: '{}' });
    assert.equal(other.status, 404);
  });

  test('bad input gets ARM errors and changes nothing', async () => {
    const before = await client.iotHubResource.get(rg, hubName);
    const put = (body: Partial<IotHubDescription>) => armError(client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, { ...before, ...body } as IotHubDescription));

    let e = await put({ identity: { type: 'UserAssigned', userAssignedIdentities: { 'not-an-id': {} } } });
    assert.equal(e.code, 'LinkedInvalidPropertyId');

    const missing = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nobody`;
    e = await put({ identity: { type: 'UserAssigned', userAssignedIdentities: { [missing]: {} } } });
    assert.equal(e.code, 'FailedIdentityOperation');
    assert.match(e.message, /nobody/);

    e = await put({ properties: { ...before.properties, ipFilterRules: [{ filterName: 'x', action: 'Reject', ipMask: '10.0.0.0/8' }] } });
    assert.equal(e.code, 'FeatureNotSupported');
    assert.match(e.message, /ipFilterRules/);

    e = await put({ properties: { ...before.properties, cloudToDevice: { maxDeliveryCount: 500 } } });
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /maxDeliveryCount/);

    e = await put({ properties: { ...before.properties, eventHubEndpoints: { events: { partitionCount: 8 } } } });
    assert.equal(e.code, 'InvalidPartitionCount');

    // Malformed JSON and a body that is not an object: raw requests.
    const token = await managementToken(t);
    const path = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${hubName}?api-version=2023-06-30`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    let r = await rawRequest(t.host, 'PUT', path, { body: '{"location": ', headers });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'InvalidRequestContent');
    r = await rawRequest(t.host, 'PUT', path, { body: '[1,2]', headers });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'InvalidRequestContent');
    // An identity type the SDK would not send.
    r = await rawRequest(t.host, 'PUT', path, { body: JSON.stringify({ location: 'local', identity: { type: 'Bogus' } }), headers });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'InvalidRequestContent');
    assert.match(r.json.error.message, /identity\.type/);
    r = await rawRequest(t.host, 'GET', path.replace('2023-06-30', '1999-01-01'), { headers });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'NoRegisteredProviderFound');
    r = await rawRequest(t.host, 'GET', path.split('?')[0]!, { headers });
    assert.equal(r.json.error.code, 'MissingApiVersionParameter');

    const afterAll = await client.iotHubResource.get(rg, hubName);
    assert.equal(afterAll.etag, before.etag);
    assert.deepEqual(afterAll.identity, before.identity);
  });

  test('a route or fallback route whose condition does not compile is refused with the route, the error and the position; routing limits too; nothing changes', async () => {
    const before = await client.iotHubResource.get(rg, hubName);
    const withRouting = (routing: Record<string, unknown>) =>
      ({ ...before, properties: { ...before.properties, routing: { ...before.properties!.routing, ...routing } } }) as IotHubDescription;
    const put = (routing: Record<string, unknown>) => armError(client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, withRouting(routing)));
    const route = (name: string, condition: string) => ({ name, source: 'DeviceMessages', condition, endpointNames: ['events'], isEnabled: true });

    let e = await put({ routes: [route('ok', "processingPath = 'hot'"), route('hot-path', "processingPath = 'hot' AND\n  $body.temp >> 3")] });
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'IH400104');
    assert.match(e.message, /Invalid Routing Condition, RouteName:hot-path/);
    assert.match(e.message, /line 2, column 15/);
    assert.match(e.message, /unexpected '>'/);

    e = await put({ routes: [route('fn', "nosuch($connectionDeviceId) = 'x'")] });
    assert.equal(e.code, 'IH400104');
    assert.match(e.message, /RouteName:fn, .*line 1, column 1: unknown function 'nosuch'/);

    e = await put({ fallbackRoute: { ...route('$fallback', "processingPath = 'unterminated"), name: '$fallback' } });
    assert.equal(e.code, 'IH400104');
    assert.match(e.message, /RouteName:\$fallback, .*line 1, column 18: unterminated string/);

    e = await put({ routes: Array.from({ length: 101 }, (_, i) => route(`r${i}`, 'true')) });
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /101 routes, more than the 100/);

    const eventHubs = Array.from({ length: 11 }, (_, i) => ({ name: `eh${i}`, connectionString: `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=e${i}` }));
    e = await put({ endpoints: { ...before.properties!.routing!.endpoints, eventHubs } });
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /11 custom endpoints, more than the 10/);

    e = await put({ enrichments: Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: 'v', endpointNames: ['events'] })) });
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /11 enrichments, more than the 10/);

    e = await put({ routes: [route('bad name!', 'true')] });
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /not a valid route name/);

    const unchanged = await client.iotHubResource.get(rg, hubName);
    assert.equal(unchanged.etag, before.etag);
    assert.deepEqual(unchanged.properties!.routing, before.properties!.routing);

    // A condition that compiles is kept as written.
    const condition = "$body.Weather.Temperature > 50 AND STARTS_WITH($connectionDeviceId, \"sensor-\")";
    const saved = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, withRouting({ routes: [route('warm', condition)] }));
    assert.equal(saved.properties!.routing!.routes![0]!.condition, condition);
    const cleared = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, withRouting({ routes: [] }));
    assert.deepEqual(cleared.properties!.routing!.routes, []);
  });

  test('consumer groups of the built-in endpoint are child resources', async () => {
    const created = await client.iotHubResource.createEventHubConsumerGroup(rg, hubName, 'events', 'analytics', { properties: { name: 'analytics' } });
    assert.equal(created.name, 'analytics');
    assert.equal(created.id, `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${hubName}/eventHubEndpoints/events/ConsumerGroups/analytics`);
    const names = [];
    for await (const g of client.iotHubResource.listEventHubConsumerGroups(rg, hubName, 'events')) names.push(g.name);
    assert.deepEqual(names, ['$Default', 'analytics']);
    assert.deepEqual(await t.hub.store.consumerGroups.list(), ['analytics']);
    assert.equal((await client.iotHubResource.getEventHubConsumerGroup(rg, hubName, 'events', 'analytics')).name, 'analytics');
    await client.iotHubResource.deleteEventHubConsumerGroup(rg, hubName, 'events', 'analytics');
    assert.deepEqual(await t.hub.store.consumerGroups.list(), []);
    const e = await armError(client.iotHubResource.createEventHubConsumerGroup(rg, hubName, 'events', 'bad name!', { properties: { name: 'bad name!' } }));
    assert.equal(e.statusCode, 400);
    assert.equal((await armError(client.iotHubResource.deleteEventHubConsumerGroup(rg, hubName, 'events', '$Default'))).statusCode, 400);
  });

  test('CA certificates are child resources: upload, verification code, proof of possession, delete', async () => {
    const ca = await rootCa('arm-test-ca');
    const uploaded = await client.certificates.createOrUpdate(rg, hubName, 'fleet-ca', { properties: { certificate: ca.pem } });
    assert.equal(uploaded.name, 'fleet-ca');
    assert.equal(uploaded.properties!.isVerified, false);
    assert.match(uploaded.properties!.thumbprint!, /^[0-9A-F]{40}$/i);
    const listed = await client.certificates.listByIotHub(rg, hubName);
    assert.deepEqual(listed.value!.map((c) => c.name), ['fleet-ca']);
    const code = await client.certificates.generateVerificationCode(rg, hubName, 'fleet-ca', uploaded.etag!);
    const proof = await issue(ca, code.properties!.verificationCode!);
    const verified = await client.certificates.verify(rg, hubName, 'fleet-ca', code.etag!, { certificate: proof.pem });
    assert.equal(verified.properties!.isVerified, true);
    await client.certificates.delete(rg, hubName, 'fleet-ca', verified.etag!);
    assert.deepEqual((await client.certificates.listByIotHub(rg, hubName)).value, []);
    const e = await armError(client.certificates.createOrUpdate(rg, hubName, 'broken', { properties: { certificate: 'not a pem' } }));
    assert.equal(e.statusCode, 400);
  });

  test('unknown hub, group and subscription: ARM not-found errors', async () => {
    let e = await armError(client.iotHubResource.get(rg, 'no-such-hub'));
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, 'ResourceNotFound');
    e = await armError(client.iotHubResource.get('no-such-group', hubName));
    assert.equal(e.code, 'ResourceGroupNotFound');
    const other = new IotHubClient(managementCredential(t), '00000000-0000-0000-0000-000000000000', armEndpoint(t));
    e = await armError(other.iotHubResource.get(rg, hubName));
    assert.equal(e.code, 'SubscriptionNotFound');
  });

  test('no token is 401; a principal without a role gets AuthorizationFailed (403)', async () => {
    const path = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${hubName}?api-version=2023-06-30`;
    let r = await rawRequest(t.host, 'GET', path);
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'AuthenticationFailed');
    r = await rawRequest(t.host, 'GET', path, { headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'InvalidAuthenticationToken');

    const { deps } = t.hub.control!;
    const stranger = await deps.principals.create('userAssigned', '/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/stranger', 'stranger');
    const strangers = new IotHubClient(managementCredential(t, async () => stranger), subscriptionId(t), armEndpoint(t));
    const e = await armError(strangers.iotHubResource.get(rg, hubName));
    assert.equal(e.statusCode, 403);
    assert.equal(e.code, 'AuthorizationFailed');
    assert.match(e.message, new RegExp(`'${stranger.principalId}'.*'Microsoft.Devices/IotHubs/read'`));
  });
});

describe('the built-in endpoint of a hub on another AMQP port, as ARM describes it', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ ports: { amqp: 0 } } as never);
  });
  after(() => t?.close());

  test('properties.eventHubEndpoints.events.endpoint carries the port, and a connection string built from it (listKeys) reads the endpoint', async () => {
    assert.notEqual(t.hub.ports.amqp, 5671);
    const client = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const hub = await client.iotHubResource.get(defaultGroup(t), t.hub.config.hubName);
    const events = hub.properties!.eventHubEndpoints!.events!;
    assert.equal(events.endpoint, `sb://${t.host}:${t.hub.ports.amqp}/`);
    // What `az iot hub connection-string show --default-eventhub` and Azure's portal build.
    const key = (await client.iotHubResource.getKeysForKeyName(defaultGroup(t), t.hub.config.hubName, 'service')).primaryKey;
    const { EventHubConsumerClient } = await import('@azure/event-hubs');
    const consumer = new EventHubConsumerClient('$Default', `Endpoint=${events.endpoint};SharedAccessKeyName=service;SharedAccessKey=${key};EntityPath=${events.path}`, { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } });
    try {
      assert.deepEqual(await consumer.getPartitionIds(), events.partitionIds);
    } finally {
      await consumer.close();
    }
  });
});
