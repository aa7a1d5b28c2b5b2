import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IotHubClient, type IotHubDescription, type RouteProperties } from '@azure/arm-iothub';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { healthToArm } from '../src/control/iotHubs/routing.js';
import { sampleMessage } from '../src/hub/routing/testRoutes.js';

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

const EH_CS = 'Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=telemetry';
const SA_CS = 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0LWtleQ==;EndpointSuffix=core.windows.net';

/**
 * The routing operations users see and debug routing with: `$testnew`, `$testall` and
 * `routingEndpointsHealth` through the unmodified @azure/arm-iothub, and `fleethub routing`.
 */
describe('routing operations: test a route, test all routes, endpoint health, fleethub routing', () => {
  let t: TestHub;
  let client: IotHubClient;
  let msi: ManagedServiceIdentityClient;
  let rg: string;
  let hubName: string;
  const cli = async (...args: string[]) => {
    const r = await fleethub([...args, '--data', t.dataDir]);
    const out = r.stdout.trim();
    return { ...r, json: r.code === 0 && (out.startsWith('{') || out.startsWith('[')) ? JSON.parse(out) : undefined };
  };
  const routingOf = async () => (await client.iotHubResource.get(rg, hubName)).properties!.routing!;
  const putRouting = async (edit: (hub: IotHubDescription) => void) => {
    const hub = await client.iotHubResource.get(rg, hubName);
    edit(hub);
    return client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
  };
  const route = (name: string, condition: string, source = 'DeviceMessages', isEnabled = true): RouteProperties => ({ name, source, condition, endpointNames: ['events'], isEnabled });

  before(async () => {
    t = await startTestHub({ eventLog: { partitions: 2 } });
    client = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    msi = new ManagedServiceIdentityClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
    hubName = t.hub.config.hubName;
  });
  after(() => t.close());

  test('$testnew: true, false and undefined (a property the message lacks), with properties, system properties and body as text', async () => {
    const r = route('critical', "level = 'critical'");
    const test = (appProperties: Record<string, string>) =>
      client.iotHubResource.testRoute(hubName, rg, { route: r, message: { body: '{"t": 21}', appProperties, systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8' } } });
    const yes = await test({ level: 'critical' });
    assert.equal(yes.result, 'true');
    assert.deepEqual(yes.details?.compilationErrors, []);
    assert.equal((await test({ level: 'low' })).result, 'false');
    assert.equal((await test({ other: 'x' })).result, 'undefined');
    // No condition is `true`; `false` matches nothing.
    assert.equal((await client.iotHubResource.testRoute(hubName, rg, { route: { name: 'all', source: 'TwinChangeEvents', endpointNames: ['events'], isEnabled: true } })).result, 'true');
    assert.equal((await client.iotHubResource.testRoute(hubName, rg, { route: route('none', 'false') })).result, 'false');
  });

  test('$testnew: a condition that does not compile gives its compilation error with the position', async () => {
    const res = await client.iotHubResource.testRoute(hubName, rg, { route: route('broken', "level = = 'x'"), message: { appProperties: { level: 'x' } } });
    assert.equal(res.result, 'false');
    const errors = res.details!.compilationErrors!;
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.severity, 'error');
    assert.ok(errors[0]!.message);
    assert.deepEqual(errors[0]!.location!.start, { line: 1, column: 9 });
    assert.equal(errors[0]!.location!.end!.line, 1);
    assert.ok(errors[0]!.location!.end!.column! > 9);
  });

  test('$testnew: bad input is refused with ARM errors', async () => {
    let e = await armError(client.iotHubResource.testRoute(hubName, rg, { route: { ...route('x', 'true'), source: 'NoSuchSource' } }));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /NoSuchSource/);
    e = await armError(client.iotHubResource.testRoute('no-such-hub', rg, { route: route('x', 'true') }));
    assert.equal(e.statusCode, 404);
  });

  test('$testall: the enabled routes of the source given that match, and none of another source', async () => {
    await putRouting((hub) => {
      hub.properties!.routing!.routes = [
        route('critical', "level = 'critical'"),
        route('everything', 'true'),
        route('disabled', 'true', 'DeviceMessages', false),
        route('twins', 'true', 'TwinChangeEvents'),
        route('twins-critical', "level = 'critical'", 'TwinChangeEvents'),
      ];
    });
    const names = async (routingSource: string, appProperties: Record<string, string>) =>
      (await client.iotHubResource.testAllRoutes(hubName, rg, { routingSource, message: { body: 'x', appProperties } })).routes!.map((r) => r.properties!.name).sort();
    assert.deepEqual(await names('DeviceMessages', { level: 'critical' }), ['critical', 'everything']);
    assert.deepEqual(await names('DeviceMessages', { level: 'low' }), ['everything']);
    assert.deepEqual(await names('TwinChangeEvents', { level: 'critical' }), ['twins', 'twins-critical']);
    assert.deepEqual(await names('DeviceLifecycleEvents', {}), []);
    const full = (await client.iotHubResource.testAllRoutes(hubName, rg, { routingSource: 'DeviceMessages', message: { appProperties: { level: 'critical' } } })).routes!;
    assert.deepEqual(full.find((r) => r.properties!.name === 'critical')!.properties, { name: 'critical', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['events'], isEnabled: true });
    await putRouting((hub) => void (hub.properties!.routing!.routes = []));
  });

  test('routingEndpointsHealth lists every custom endpoint and events, in ARM pages', async () => {
    await putRouting((hub) => {
      hub.properties!.routing!.endpoints!.eventHubs = [{ name: 'eh-health', connectionString: EH_CS }];
      hub.properties!.routing!.endpoints!.serviceBusQueues = [{ name: 'q-health', connectionString: EH_CS.replace('telemetry', 'q') }];
    });
    const health = [];
    for await (const h of client.iotHubResource.listEndpointHealth(rg, hubName)) health.push(h);
    assert.deepEqual(health.map((h) => h.endpointId).sort(), ['eh-health', 'events', 'q-health']);
    for (const h of health) assert.ok(['unknown', 'healthy', 'degraded', 'unhealthy', 'dead'].includes(h.healthStatus!), h.healthStatus);
    assert.equal(health.find((h) => h.endpointId === 'eh-health')!.healthStatus, 'unknown');

    const quota = [];
    for await (const q of client.iotHubResource.listQuotaMetrics(rg, hubName)) quota.push(q);
    assert.deepEqual(quota.map((q) => q.name), ['TotalMessages', 'TotalDeviceCount']);
    assert.equal(quota[0]!.maxValue, 400_000);
    assert.equal(quota[1]!.maxValue, 1_000_000);
    await putRouting((hub) => {
      hub.properties!.routing!.endpoints!.eventHubs = [];
      hub.properties!.routing!.endpoints!.serviceBusQueues = [];
    });
  });

  test('a PUT with an unknown endpoint, a condition that does not compile or a 101st route is refused, and nothing changes', async () => {
    const before = await client.iotHubResource.get(rg, hubName);
    const put = (edit: (r: NonNullable<NonNullable<IotHubDescription['properties']>['routing']>) => void) => {
      const body = structuredClone(before);
      edit(body.properties!.routing!);
      return armError(client.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, body));
    };
    let e = await put((r) => void (r.routes = [{ ...route('r', 'true'), endpointNames: ['nowhere'] }]));
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /nowhere/);
    e = await put((r) => void (r.routes = [route('bad', "level = = 'x'")]));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'IH400104');
    assert.match(e.message, /RouteName:bad/);
    assert.match(e.message, /<start>:1:9/);
    e = await put((r) => void (r.routes = Array.from({ length: 101 }, (_, i) => route(`r${i}`, 'true'))));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /101 routes, more than the 100 allowed/);
    e = await put((r) => void (r.endpoints!.eventHubs = Array.from({ length: 11 }, (_, i) => ({ name: `eh${i}`, connectionString: EH_CS }))));
    assert.equal(e.code, 'InvalidRequestContent');
    assert.match(e.message, /11 custom endpoints, more than the 10 allowed/);
    const after = await client.iotHubResource.get(rg, hubName);
    assert.equal(after.etag, before.etag);
    assert.deepEqual(after.properties!.routing, before.properties!.routing);
    // 100 routes are allowed.
    const hundred = await putRouting((hub) => void (hub.properties!.routing!.routes = Array.from({ length: 100 }, (_, i) => route(`r${i}`, 'true'))));
    assert.equal(hundred.properties!.routing!.routes!.length, 100);
    await putRouting((hub) => void (hub.properties!.routing!.routes = []));
  });

  test('fleethub routing endpoint add with each kind and authentication type, set-auth, list and remove, through ARM', async () => {
    const uai = await msi.userAssignedIdentities.createOrUpdate(rg, 'router', { location: 'local' });
    const uaiId = uai.id!;
    await putRouting((hub) => void (hub.identity = { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uaiId]: {} } }));

    // One CLI process after another (each is a read-modify-write of the hub resource).
    const eh = await cli('routing', 'endpoint', 'add', 'eh1', '--kind', 'eventhub', '--auth', 'key', '--connection-string', EH_CS);
    assert.equal(eh.code, 0, eh.stderr);
    assert.equal(eh.json.authenticationType, 'keyBased');
    assert.doesNotMatch(eh.stdout, /c2VjcmV0LWtleQ/, 'keys are masked in output');
    const q = await cli('routing', 'endpoint', 'add', 'q1', '--kind', 'servicebus-queue', '--auth', 'system', '--endpoint-uri', 'sb://ns1.servicebus.windows.net', '--entity-path', 'orders');
    assert.equal(q.code, 0, q.stderr);
    const topic = await cli('routing', 'endpoint', 'add', 't1', '--kind', 'servicebus-topic', '--auth', 'user', '--identity', uaiId, '--endpoint-uri', 'sb://ns1.servicebus.windows.net', '--entity-path', 'alerts');
    assert.equal(topic.code, 0, topic.stderr);
    const st = await cli('routing', 'endpoint', 'add', 'st1', '--kind', 'storage', '--auth', 'key', '--connection-string', SA_CS, '--container', 'routed', '--encoding', 'json', '--batch-frequency', '60');
    assert.equal(st.code, 0, st.stderr);

    const r = await routingOf();
    assert.deepEqual(r.endpoints!.eventHubs!.map((e) => [e.name, e.authenticationType, e.connectionString]), [['eh1', 'keyBased', EH_CS]]);
    assert.deepEqual(r.endpoints!.serviceBusQueues!.map((e) => [e.name, e.authenticationType, e.endpointUri, e.entityPath, e.identity?.userAssignedIdentity ?? null]), [['q1', 'identityBased', 'sb://ns1.servicebus.windows.net', 'orders', null]]);
    assert.deepEqual(r.endpoints!.serviceBusTopics!.map((e) => [e.name, e.authenticationType, e.identity?.userAssignedIdentity]), [['t1', 'identityBased', uaiId]]);
    assert.deepEqual(r.endpoints!.storageContainers!.map((e) => [e.name, e.containerName, e.encoding, e.batchFrequencyInSeconds]), [['st1', 'routed', 'json', 60]]);

    // Bad input (in parallel: none of them writes): a clear error each, and the resource keeps its etag.
    const etag = (await client.iotHubResource.get(rg, hubName)).etag;
    const [listed, dup, notAttached] = await Promise.all([
      cli('routing', 'endpoint', 'list'),
      cli('routing', 'endpoint', 'add', 'eh1', '--kind', 'eventhub', '--connection-string', EH_CS),
      cli('routing', 'endpoint', 'set-auth', 'q1', '--auth', 'user', '--identity', uaiId.replace(/router$/, 'other')),
    ]);
    assert.deepEqual(listed.json.map((e: { kind: string; name: string }) => `${e.kind}:${e.name}`), ['eventhub:eh1', 'servicebus-queue:q1', 'servicebus-topic:t1', 'storage:st1']);
    assert.doesNotMatch(listed.stdout, /c2VjcmV0LWtleQ/);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already exists/);
    assert.notEqual(notAttached.code, 0);
    assert.match(notAttached.stderr, /IdentityInUse.*not attached/);
    assert.equal((await client.iotHubResource.get(rg, hubName)).etag, etag);

    // The managed-identity flow: key → user-assigned → system-assigned → key.
    let set = await cli('routing', 'endpoint', 'set-auth', 'eh1', '--auth', 'user', '--identity', uaiId, '--endpoint-uri', 'sb://ns1.servicebus.windows.net', '--entity-path', 'telemetry');
    assert.equal(set.code, 0, set.stderr);
    let e1 = (await routingOf()).endpoints!.eventHubs![0]!;
    assert.deepEqual([e1.authenticationType, e1.identity?.userAssignedIdentity, e1.endpointUri, e1.entityPath, e1.connectionString], ['identityBased', uaiId, 'sb://ns1.servicebus.windows.net', 'telemetry', undefined]);
    set = await cli('routing', 'endpoint', 'set-auth', 'eh1', '--auth', 'system');
    assert.equal(set.code, 0, set.stderr);
    e1 = (await routingOf()).endpoints!.eventHubs![0]!;
    assert.deepEqual([e1.authenticationType, e1.identity?.userAssignedIdentity ?? null, e1.entityPath], ['identityBased', null, 'telemetry']);
    set = await cli('routing', 'endpoint', 'set-auth', 'eh1', '--auth', 'key', '--connection-string', EH_CS);
    assert.equal(set.code, 0, set.stderr);
    e1 = (await routingOf()).endpoints!.eventHubs![0]!;
    assert.deepEqual([e1.authenticationType, e1.connectionString, e1.endpointUri], ['keyBased', EH_CS, undefined]);

    assert.equal((await cli('routing', 'endpoint', 'remove', 'q1')).code, 0);
    assert.deepEqual((await routingOf()).endpoints!.serviceBusQueues, []);
    await putRouting((hub) => {
      const e = hub.properties!.routing!.endpoints!;
      e.serviceBusTopics = [];
      e.storageContainers = [];
      e.eventHubs = [{ name: 'alerts', connectionString: EH_CS }];
    });
  });

  test('fleethub routing route add/update/list/remove, fallback, enrichments; bad input changes nothing', async () => {
    const added = await cli('routing', 'route', 'add', 'critical', '--source', 'DeviceMessages', '--condition', "level = 'critical'", '--endpoint', 'events');
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual(added.json, { name: 'critical', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['events'], isEnabled: true });
    const updated = await cli('routing', 'route', 'update', 'critical', '--enabled', 'false', '--endpoint', 'alerts');
    assert.equal(updated.code, 0, updated.stderr);
    assert.deepEqual([updated.json.isEnabled, updated.json.endpointNames], [false, ['alerts']]);
    await putRouting((hub) => void hub.properties!.routing!.routes!.push(route('twins', 'true', 'TwinChangeEvents')));
    const disabled = await cli('routing', 'fallback', 'disable');
    assert.equal(disabled.json.isEnabled, false);
    const enr = await cli('routing', 'enrichment', 'add', 'hub', '--value', '$iothubname', '--endpoint', 'alerts', '--endpoint', 'events');
    assert.equal(enr.code, 0, enr.stderr);
    const r = await routingOf();
    assert.deepEqual(r.routes!.map((x) => `${x.name}:${x.source}:${x.isEnabled}`), ['critical:DeviceMessages:false', 'twins:TwinChangeEvents:true']);
    assert.equal(r.fallbackRoute!.isEnabled, false);
    assert.deepEqual(r.enrichments, [{ key: 'hub', value: '$iothubname', endpointNames: ['alerts', 'events'] }]);

    // Bad input, and a 101st route (in parallel: none of them writes); the resource keeps its etag.
    await putRouting((hub) => void hub.properties!.routing!.routes!.push(...Array.from({ length: 98 }, (_, i) => route(`filler${i}`, 'true'))));
    const etag = (await client.iotHubResource.get(rg, hubName)).etag;
    const [listed, unknownEndpoint, badCondition, inUse, tooMany] = await Promise.all([
      cli('routing', 'route', 'list', '--source', 'TwinChangeEvents'),
      cli('routing', 'route', 'update', 'twins', '--endpoint', 'nowhere'),
      cli('routing', 'route', 'update', 'twins', '--condition', "level = = 'x'"),
      cli('routing', 'endpoint', 'remove', 'alerts'),
      cli('routing', 'route', 'add', 'one-too-many', '--endpoint', 'events'),
    ]);
    assert.deepEqual(listed.json.map((x: { name: string }) => x.name), ['twins']);
    assert.notEqual(unknownEndpoint.code, 0);
    assert.match(unknownEndpoint.stderr, /no endpoint named 'nowhere'/);
    assert.notEqual(badCondition.code, 0);
    assert.match(badCondition.stderr, /IH400104.*RouteName:twins.*<start>:1:9/);
    assert.match(inUse.stderr, /route 'critical'.*enrichment 'hub'/);
    assert.notEqual(tooMany.code, 0);
    assert.match(tooMany.stderr, /InvalidRequestContent.*more than the 100 allowed/);
    assert.equal((await client.iotHubResource.get(rg, hubName)).etag, etag);
    await putRouting((hub) => void (hub.properties!.routing!.routes = hub.properties!.routing!.routes!.filter((x) => !x.name.startsWith('filler'))));

    assert.equal((await cli('routing', 'route', 'remove', 'twins')).code, 0);
    assert.equal((await cli('routing', 'enrichment', 'remove', 'hub')).code, 0);
    assert.equal((await cli('routing', 'fallback', 'enable')).json.isEnabled, true);
    const after = await routingOf();
    assert.deepEqual(after.routes!.map((x) => x.name), ['critical']);
    assert.deepEqual(after.enrichments, []);
  });

  test('fleethub routing test, test-all, health and stats', async () => {
    await putRouting((hub) => {
      hub.properties!.routing!.enrichments = [];
      hub.properties!.routing!.endpoints!.eventHubs = [{ name: 'alerts', connectionString: EH_CS }];
      hub.properties!.routing!.routes = [{ ...route('critical', "level = 'critical'"), endpointNames: ['alerts'] }, route('twins', 'true', 'TwinChangeEvents')];
    });
    const [yes, broken, all, health, stats] = await Promise.all([
      cli('routing', 'test', '--route', 'critical', '--body', '{"t":1}', '--app-property', 'level=critical', '--system-property', 'contentType=application/json'),
      cli('routing', 'test', '--condition', "level = = 'x'"),
      cli('routing', 'test-all', '--source', 'DeviceMessages', '--app-property', 'level=critical'),
      cli('routing', 'health'),
      cli('routing', 'stats'),
    ]);
    assert.equal(yes.code, 0, yes.stderr);
    assert.equal(yes.json.result, 'true');
    assert.equal(broken.json.result, 'false');
    assert.deepEqual(broken.json.details.compilationErrors[0].location.start, { line: 1, column: 9 });
    assert.deepEqual(all.json.map((x: { properties: { name: string } }) => x.properties.name), ['critical']);

    assert.equal(health.code, 0, health.stderr);
    assert.deepEqual(health.json.map((h: { endpointId: string }) => h.endpointId).sort(), ['alerts', 'events']);

    assert.equal(stats.code, 0, stats.stderr);
    assert.deepEqual(Object.keys(stats.json).sort(), ['endpoints', 'orphaned', 'routes']);
    assert.ok(stats.json.routes.some((r: { route: string; matched: number }) => r.route === 'critical' && typeof r.matched === 'number'));
    const alerts = stats.json.endpoints.find((e: { endpoint: string }) => e.endpoint === 'alerts');
    for (const k of ['delivered', 'dropped', 'backlog']) assert.equal(typeof alerts[k], 'number');
    assert.equal(typeof stats.json.orphaned, 'number');
  });
});

describe('routing operations: the pure parts', () => {
  test("the router's health becomes ARM's EndpointHealthData, times in RFC 1123 as the SDK reads them", () => {
    const arm = healthToArm({
      endpointId: 'eh1',
      healthStatus: 'unhealthy',
      lastKnownError: 'Unauthorized: no role',
      lastKnownErrorTime: '2026-12-02T02:30:00.000Z',
      lastSendAttemptTime: '2026-12-02T02:30:00.000Z',
    });
    assert.deepEqual(arm, {
      endpointId: 'eh1',
      healthStatus: 'unhealthy',
      lastKnownError: 'Unauthorized: no role',
      lastKnownErrorTime: 'Wed, 02 Dec 2026 02:30:00 GMT',
      lastSendAttemptTime: 'Wed, 02 Dec 2026 02:30:00 GMT',
    });
  });

  test('a sample message: system properties by either name, the body encoded as contentEncoding says', () => {
    const m = sampleMessage('DeviceMessages', {
      body: 'hé',
      appProperties: { level: 'critical' },
      systemProperties: { contentType: 'application/json', contentEncoding: 'utf-16', 'iothub-connection-device-id': 'd1', $connectionModuleId: 'm1' },
    });
    assert.equal(m.systemProperties['content-type'], 'application/json');
    assert.equal(m.systemProperties['content-encoding'], 'utf-16');
    assert.equal(m.systemProperties['iothub-message-source'], 'Telemetry');
    assert.deepEqual([m.deviceId, m.moduleId], ['d1', 'm1']);
    assert.deepEqual(m.body, Buffer.from('hé', 'utf16le'));
    assert.deepEqual(sampleMessage('TwinChangeEvents', { body: 'hé' }).body, Buffer.from('hé', 'utf8'));
    assert.equal(sampleMessage('TwinChangeEvents', {}).systemProperties['iothub-message-source'], 'twinChangeEvents');
    assert.throws(() => sampleMessage('DeviceMessages', { appProperties: { n: 1 } }), /message\.appProperties\.n/);
  });
});
