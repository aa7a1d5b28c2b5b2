import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IotHubClient, type RoutingProperties, type RoutingTwin } from '@azure/arm-iothub';
import type { ReceivedEventData } from '@azure/event-hubs';
import iothubSdk from 'azure-iothub';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice } from './support/devices.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { bodyText, readEventHub, sendAs } from './support/routingFlows.js';

const { Client } = device;
const NS = 'flows-cond';

/** A JSON body as the consumer hands it (parsed when it parsed, bytes or text otherwise). */
const json = (e: ReceivedEventData): any => (typeof e.body === 'object' && e.body !== null && !Buffer.isBuffer(e.body) ? e.body : JSON.parse(bodyText(e)));

/**
 * Issue 16 end to end, part two: non-telemetry routes deliver IoT Hub's documented event shapes to
 * a custom endpoint, and route conditions give the same answer through $testnew as through real
 * delivery (unmodified @azure/arm-iothub, device, service and Event Hubs SDKs).
 */
describe('routing flows: non-telemetry events and route conditions, $testnew against real delivery', { timeout: 90_000 }, () => {
  let t: TestHub;
  let iothub: IotHubClient;
  let registry: iothubSdk.Registry;
  let rg: string;
  let hubName: string;
  let root: string;
  const noEndpoints = { eventHubs: [], serviceBusQueues: [], serviceBusTopics: [], storageContainers: [] };
  async function putRouting(routing: RoutingProperties) {
    const hub = await iothub.iotHubResource.get(rg, hubName);
    hub.properties!.routing = routing;
    await iothub.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
  }

  before(async () => {
    t = await startTestHub({
      routing: { retryMinMs: 50, retryMaxMs: 300, statusLogSeconds: 0 },
      eventHubsNamespaces: [{ name: NS, eventHubs: [{ name: 'events-out', partitionCount: 1 }, { name: 'conditions', partitionCount: 1 }] }],
    });
    iothub = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    registry = iothubSdk.Registry.fromConnectionString(await t.connectionString());
    rg = defaultGroup(t);
    hubName = t.hub.config.hubName;
    root = (await t.hub.info()).eventHubsNamespaces!.find((n) => n.name === NS)!.connectionString;
  });
  after(() => t?.close());

  test('TwinChangeEvents, DeviceLifecycleEvents and DeviceConnectionStateEvents routes deliver the documented shapes to an Event Hubs endpoint', async () => {
    await putRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'ops', connectionString: `${root};EntityPath=events-out` }] },
      routes: [
        { name: 'twins', source: 'TwinChangeEvents', condition: 'true', endpointNames: ['ops'], isEnabled: true },
        { name: 'lifecycle', source: 'DeviceLifecycleEvents', condition: "opType = 'createDeviceIdentity'", endpointNames: ['ops'], isEnabled: true },
        { name: 'connections', source: 'DeviceConnectionStateEvents', endpointNames: ['ops'], isEnabled: true },
      ],
      fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
    });
    const { connectionString } = await createDevice(t, 'ops-dev');
    await registry.updateTwin('ops-dev', { tags: { site: 'north' }, properties: { desired: { mode: 'eco' } } } as never, '*');
    const client = Client.fromConnectionString(connectionString, deviceMqtt.Mqtt as never);
    await client.open();
    await sendAs(client, 'hello');
    await client.close();
    await registry.delete('ops-dev');
    const opTypes = (events: ReceivedEventData[]) => events.map((e) => e.properties!.opType);
    const got = await readEventHub(root, 'events-out', (e) => opTypes(e).includes('deviceDisconnected'));
    assert.deepEqual(opTypes(got), ['createDeviceIdentity', 'updateTwin', 'deviceConnected', 'deviceDisconnected'], 'the deletion matched no route');
    for (const e of got) {
      assert.equal(e.properties!.hubName, hubName);
      assert.equal(e.properties!.deviceId, 'ops-dev');
      assert.match(String(e.properties!.operationTimestamp), /^\d{4}-\d{2}-\d{2}T/);
      assert.equal(e.systemProperties!['iothub-connection-device-id'], 'ops-dev');
      assert.equal(e.contentType, 'application/json');
      assert.equal(e.partitionKey, 'ops-dev');
    }
    const [created, twin, connected, disconnected] = got as [ReceivedEventData, ReceivedEventData, ReceivedEventData, ReceivedEventData];
    assert.equal(created.properties!['iothub-message-schema'], 'deviceLifecycleNotification');
    assert.equal(created.systemProperties!['iothub-message-source'], 'deviceLifecycleEvents');
    assert.equal(json(created).deviceId, 'ops-dev');
    assert.equal(typeof json(created).properties.desired.$version, 'number');
    assert.equal(twin.properties!['iothub-message-schema'], 'twinChangeNotification');
    assert.equal(twin.systemProperties!['iothub-message-source'], 'twinChangeEvents');
    assert.deepEqual(json(twin).tags, { site: 'north' });
    assert.equal(json(twin).properties.desired.mode, 'eco');
    assert.equal(typeof json(twin).version, 'number');
    for (const c of [connected, disconnected]) {
      assert.equal(c.properties!['iothub-message-schema'], 'deviceConnectionStateNotification');
      assert.equal(c.systemProperties!['iothub-message-source'], 'deviceConnectionStateEvents');
      assert.deepEqual(Object.keys(json(c)), ['sequenceNumber']);
    }
    assert.ok(json(disconnected).sequenceNumber > json(connected).sequenceNumber);
  });

  test('route conditions: each case gives the same answer through $testnew and through real delivery (MQTT and AMQP)', async () => {
    type Case = { condition: string; body: string; json: boolean; props?: Record<string, string>; expected: 'true' | 'false' | 'undefined' };
    const twin: RoutingTwin = { tags: { site: 'north' }, properties: { desired: { mode: 'eco' } } };
    const cases: Case[] = [
      { condition: '$body.temp > 20', body: '{"temp":25}', json: true, expected: 'true' },
      { condition: '$body.temp > 20', body: '{"temp":10}', json: true, expected: 'false' },
      // Without content type application/json and encoding UTF-8 the body cannot be queried.
      { condition: '$body.temp > 20', body: '{"temp":25}', json: false, expected: 'undefined' },
      { condition: "$twin.tags.site = 'north'", body: 'x', json: false, expected: 'true' },
      { condition: "$twin.properties.desired.mode = 'eco' AND $twin.tags.site = 'south'", body: 'x', json: false, expected: 'false' },
      { condition: "STARTS_WITH(level, 'crit')", body: 'x', json: false, props: { level: 'critical' }, expected: 'true' },
      { condition: "LOWER(level) = 'critical' AND IS_DEFINED($body.temp)", body: '{"temp":1}', json: true, props: { level: 'CRITICAL' }, expected: 'true' },
      { condition: "nosuch = 'x'", body: 'x', json: false, expected: 'undefined' },
      { condition: "NOT (nosuch = 'x')", body: 'x', json: false, expected: 'undefined' },
      { condition: "level = 'critical' OR nosuch = 'x'", body: 'x', json: false, props: { level: 'critical' }, expected: 'true' },
    ];
    // $testnew, with the device's twin as the test input.
    for (const c of cases) {
      const res = await iothub.iotHubResource.testRoute(hubName, rg, {
        route: { name: 'c', source: 'DeviceMessages', condition: c.condition, endpointNames: ['events'], isEnabled: true },
        message: { body: c.body, appProperties: c.props ?? {}, systemProperties: c.json ? { contentType: 'application/json', contentEncoding: 'utf-8' } : {} },
        twin,
      });
      assert.deepEqual(res.details?.compilationErrors ?? [], [], c.condition);
      assert.equal(res.result, c.expected, `$testnew: ${c.condition} (${c.json ? 'JSON' : 'no content type'})`);
    }
    // Real delivery: one route per case (the case's number as a property), the twin is the device's.
    await putRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'cond', connectionString: `${root};EntityPath=conditions` }] },
      routes: cases.map((c, i) => ({ name: `case${i}`, source: 'DeviceMessages', condition: `caseid = '${i}' AND (${c.condition})`, endpointNames: ['cond'], isEnabled: true })),
      fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
    });
    const devices = [];
    for (const [id, transport] of [['cond-mqtt', deviceMqtt.Mqtt], ['cond-amqp', deviceAmqp.Amqp]] as const) {
      const { connectionString } = await createDevice(t, id);
      await registry.updateTwin(id, { tags: twin.tags, properties: { desired: twin.properties!.desired } } as never, '*');
      const client = Client.fromConnectionString(connectionString, transport as never);
      await client.open();
      devices.push(client);
    }
    try {
      for (const [i, c] of cases.entries()) {
        for (const client of devices) await sendAs(client, c.body, { ...c.props, caseid: String(i) }, c.json);
      }
    } finally {
      for (const client of devices) await client.close();
    }
    const expectedCount = cases.filter((c) => c.expected === 'true').length * 2;
    const got = await readEventHub(root, 'conditions', (e) => e.length >= expectedCount, 8000);
    // A moment more: nothing else may come.
    await new Promise((r) => setTimeout(r, 500));
    const delivered = (await readEventHub(root, 'conditions', (e) => e.length >= got.length, 3000)).map((e) => `${e.properties!.caseid}/${e.systemProperties!['iothub-connection-device-id']}`);
    const expected = cases.flatMap((c, i) => (c.expected === 'true' ? [`${i}/cond-mqtt`, `${i}/cond-amqp`] : []));
    assert.deepEqual(delivered.sort(), expected.sort(), 'delivered exactly the cases $testnew calls true');
  });
});
