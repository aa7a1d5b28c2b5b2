/**
 * Routing's non-telemetry event sources, driven by the unmodified SDKs against a real hub: the
 * service SDK (azure-iothub Registry, twins, JobClient) creating and deleting identities and
 * updating twins, devices and modules (azure-iot-device over MQTT and AMQP) connecting,
 * disconnecting and reporting properties. What the sources hand to routing is collected by a
 * RoutingIngest attached in the test, and checked against IoT Hub's documented shapes.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import iothub from 'azure-iothub';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule, eventually } from './support/devices.js';
import { sdkError, within } from './support/sdk.js';
import type { RoutableMessage, RoutingIngest, RouteSource } from '../src/hub/routing/types.js';

const { Client, ModuleClient } = device;

/** What routing would receive: every submitted message, in submission order. */
class CollectingIngest implements RoutingIngest {
  readonly messages: RoutableMessage[] = [];
  async submit(message: RoutableMessage): Promise<void> {
    this.messages.push(message);
  }
  of(source: RouteSource, deviceId: string, moduleId?: string): RoutableMessage[] {
    return this.messages.filter((m) => m.source === source && m.deviceId === deviceId && (moduleId === undefined || m.moduleId === moduleId));
  }
}

const bodyOf = (m: RoutableMessage) => JSON.parse(m.body.toString('utf8'));
const isoPattern = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** The properties every non-telemetry event carries (IoT Hub's "common event properties"). */
function assertCommon(m: RoutableMessage, expected: { hubName: string; deviceId: string; moduleId?: string; messageSource: string; schema: string; opType: string }) {
  const sys = m.systemProperties;
  assert.equal(sys['content-type'], 'application/json');
  assert.equal(sys['content-encoding'], 'utf-8');
  assert.equal(sys['iothub-connection-device-id'], expected.deviceId);
  assert.equal(sys['iothub-connection-module-id'], expected.moduleId);
  assert.equal(sys['iothub-message-source'], expected.messageSource);
  assert.equal(sys['user-id'], expected.hubName);
  assert.equal(typeof sys['message-id'], 'string');
  assert.ok((sys['message-id'] as string).length > 0);
  assert.equal(typeof sys['correlation-id'], 'string');
  assert.match(String(sys['iothub-enqueuedtime']), isoPattern);
  const p = m.properties;
  assert.equal(p.hubName, expected.hubName);
  assert.equal(p.deviceId, expected.deviceId);
  assert.equal(p.moduleId, expected.moduleId);
  assert.equal(p['iothub-message-schema'], expected.schema);
  assert.equal(p.opType, expected.opType);
  assert.match(String(p.operationTimestamp), isoPattern);
  assert.equal(m.deviceId, expected.deviceId);
  assert.equal(m.moduleId, expected.moduleId);
}

describe('routing: non-telemetry event sources', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let hubName: string;
  let ingest: CollectingIngest;

  before(async () => {
    t = await startTestHub({ jobDeviceOperationsPerSecond: 1000 });
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    hubName = t.hub.config.hubName;
  });
  after(() => t.close());
  beforeEach(() => {
    ingest = new CollectingIngest();
    t.hub.routingEvents.attach(ingest);
  });

  /** Lets every event emitted so far reach the ingest. */
  const settled = () => t.hub.routingEvents.idle();

  test('device and module lifecycle: create and delete, with the twin as body', async () => {
    await registry.create({ deviceId: 'life-1' } as any);
    await settled();
    const [created] = ingest.of('DeviceLifecycleEvents', 'life-1');
    assert.ok(created, 'a createDeviceIdentity event');
    assertCommon(created, { hubName, deviceId: 'life-1', messageSource: 'deviceLifecycleEvents', schema: 'deviceLifecycleNotification', opType: 'createDeviceIdentity' });
    const twin = bodyOf(created);
    assert.equal(twin.deviceId, 'life-1');
    assert.equal(twin.moduleId, undefined);
    assert.equal(twin.etag, (await registry.getTwin('life-1')).responseBody.etag);
    assert.equal(typeof twin.version, 'number');
    assert.equal(twin.properties.desired.$version, 1);
    assert.equal(twin.properties.reported.$version, 1);
    assert.match(twin.properties.desired.$metadata.$lastUpdated, isoPattern);

    await registry.addModule({ deviceId: 'life-1', moduleId: 'mod-a' } as any);
    await registry.updateTwin('life-1', { tags: { site: 'north' } }, '*');
    await registry.removeModule('life-1', 'mod-a');
    await registry.delete('life-1');
    await settled();
    const lifecycle = ingest.of('DeviceLifecycleEvents', 'life-1');
    assert.deepEqual(
      lifecycle.map((m) => [m.properties.opType, m.properties['iothub-message-schema'], m.moduleId]),
      [
        ['createDeviceIdentity', 'deviceLifecycleNotification', undefined],
        ['createModuleIdentity', 'moduleLifecycleNotification', 'mod-a'],
        ['deleteModuleIdentity', 'moduleLifecycleNotification', 'mod-a'],
        ['deleteDeviceIdentity', 'deviceLifecycleNotification', undefined],
      ],
    );
    assertCommon(lifecycle[1]!, { hubName, deviceId: 'life-1', moduleId: 'mod-a', messageSource: 'deviceLifecycleEvents', schema: 'moduleLifecycleNotification', opType: 'createModuleIdentity' });
    assert.equal(bodyOf(lifecycle[1]!).moduleId, 'mod-a');
    // The deleted device's event carries its twin as it was just before.
    assert.deepEqual(bodyOf(lifecycle[3]!).tags, { site: 'north' });

    // Bulk registry operations create identities too; a refused create (the device exists) emits nothing.
    const before = ingest.messages.length;
    const bulk = await registry.addDevices([{ deviceId: 'life-b1' }, { deviceId: 'life-b2' }] as any);
    assert.equal(bulk.responseBody.isSuccessful, true);
    await registry.create({ deviceId: 'life-b1' } as any).then(
      () => assert.fail('the second create succeeded'),
      (e) => sdkError('DeviceAlreadyExistsError')(e),
    );
    await settled();
    assert.deepEqual(
      ingest.messages.slice(before).map((m) => [m.deviceId, m.properties.opType]),
      [
        ['life-b1', 'createDeviceIdentity'],
        ['life-b2', 'createDeviceIdentity'],
      ],
    );
  });

  test('twin change events: service PATCH of tags and desired properties carries only what changed, with metadata', async () => {
    await registry.create({ deviceId: 'twin-1' } as any);
    await registry.updateTwin('twin-1', { tags: { a: 1, keep: 'x' }, properties: { desired: { untouched: true } } }, '*');
    await settled();
    ingest.messages.length = 0;

    const res = await registry.updateTwin('twin-1', { tags: { a: 2 }, properties: { desired: { fw: { version: '2.0' } } } }, '*');
    await settled();
    const events = ingest.of('TwinChangeEvents', 'twin-1');
    assert.equal(events.length, 1);
    const [m] = events;
    assertCommon(m!, { hubName, deviceId: 'twin-1', messageSource: 'twinChangeEvents', schema: 'twinChangeNotification', opType: 'updateTwin' });
    const body = bodyOf(m!);
    const twin = res.responseBody as any;
    assert.equal(body.version, twin.version);
    assert.deepEqual(body.tags, { a: 2 });
    assert.equal(body.properties.reported, undefined);
    const desired = body.properties.desired;
    assert.deepEqual(desired.fw, { version: '2.0' });
    assert.equal(desired.untouched, undefined, 'only the changed part');
    assert.equal(desired.$version, twin.properties.desired.$version);
    assert.equal(desired.$metadata.$lastUpdatedVersion, twin.properties.desired.$version);
    assert.match(desired.$metadata.$lastUpdated, isoPattern);
    assert.deepEqual(desired.$metadata.fw, twin.properties.desired.$metadata.fw);
    assert.equal(desired.$metadata.untouched, undefined);

    // Removing a desired property and a tag: the nulls are what changed.
    await registry.updateTwin('twin-1', { tags: { keep: null }, properties: { desired: { untouched: null } } }, '*');
    await settled();
    const removal = bodyOf(ingest.of('TwinChangeEvents', 'twin-1')[1]!);
    assert.deepEqual(removal.tags, { keep: null });
    assert.equal(removal.properties.desired.untouched, null);
  });

  test('no twin change event when the update is refused or changes nothing', async () => {
    await registry.create({ deviceId: 'twin-none' } as any);
    await registry.updateTwin('twin-none', { tags: { a: 1 } }, '*');
    await settled();
    ingest.messages.length = 0;

    // A stale etag: 412, nothing written.
    await assert.rejects(registry.updateTwin('twin-none', { tags: { a: 2 } }, 'AAAAAAAAAAE='), sdkError('InvalidEtagError'));
    // A property name IoT Hub refuses: 400, nothing written.
    await assert.rejects(registry.updateTwin('twin-none', { properties: { desired: { 'bad.name': 1 } } }, '*'), sdkError('ArgumentError'));
    // The same tags again: the twin does not change.
    await registry.updateTwin('twin-none', { tags: { a: 1 } }, '*');
    await settled();
    assert.deepEqual(ingest.of('TwinChangeEvents', 'twin-none'), []);
    assert.equal((await registry.getTwin('twin-none')).responseBody.tags?.a, 1);
  });

  test('desired properties written by an automatic configuration are a twin change', async () => {
    await registry.create({ deviceId: 'cfg-1' } as any);
    await registry.updateTwin('cfg-1', { tags: { cfg: 'on' } }, '*');
    await settled();
    ingest.messages.length = 0;
    await registry.addConfiguration({
      id: 'events-cfg',
      content: { deviceContent: { 'properties.desired.settings': { mode: 'eco' } } },
      targetCondition: "tags.cfg = 'on'",
      priority: 1,
    } as any);
    const [m] = await eventually(() => {
      const e = ingest.of('TwinChangeEvents', 'cfg-1');
      return e.length > 0 ? e : undefined;
    }, 10_000);
    assertCommon(m!, { hubName, deviceId: 'cfg-1', messageSource: 'twinChangeEvents', schema: 'twinChangeNotification', opType: 'updateTwin' });
    const body = bodyOf(m!);
    assert.deepEqual(body.properties.desired.settings, { mode: 'eco' });
    assert.equal(body.tags, undefined);
    await registry.removeConfiguration('events-cfg');
  });

  test('twin replace (PUT) carries the whole twin, opType replaceTwin', async () => {
    await registry.create({ deviceId: 'twin-put' } as any);
    await registry.updateTwin('twin-put', { tags: { old: 1 }, properties: { desired: { a: 1 } } }, '*');
    await settled();
    ingest.messages.length = 0;
    const res = await rawRequest(t.host, 'PUT', '/twins/twin-put?api-version=2021-04-12', {
      headers: { authorization: await serviceToken(t), 'content-type': 'application/json' },
      body: JSON.stringify({ tags: { fresh: true }, properties: { desired: { b: 2 } } }),
    });
    assert.equal(res.status, 200, res.text);
    await settled();
    const [m] = ingest.of('TwinChangeEvents', 'twin-put');
    assertCommon(m!, { hubName, deviceId: 'twin-put', messageSource: 'twinChangeEvents', schema: 'twinChangeNotification', opType: 'replaceTwin' });
    const body = bodyOf(m!);
    assert.equal(body.deviceId, 'twin-put');
    assert.equal(body.etag, res.json.etag);
    assert.equal(body.version, res.json.version);
    assert.deepEqual(body.tags, { fresh: true });
    assert.equal(body.properties.desired.b, 2);
    assert.equal(body.properties.desired.a, undefined);
    assert.equal(body.properties.desired.$version, res.json.properties.desired.$version);
    assert.ok(body.properties.reported.$metadata);
  });

  for (const [name, transport] of [['MQTT', deviceMqtt.Mqtt], ['AMQP', deviceAmqp.Amqp]] as const) {
    test(`${name}: connection state events in order with increasing sequence numbers, and reported-property changes`, async () => {
      const deviceId = `conn-${name.toLowerCase()}`;
      const { connectionString } = await createDevice(t, deviceId);
      await settled();
      ingest.messages.length = 0;

      const client = Client.fromConnectionString(connectionString, transport);
      await within(10_000, client.open(), 'client.open');
      const twin = await within(10_000, client.getTwin(), 'client.getTwin');
      await within(10_000, new Promise<void>((resolve, reject) => twin.properties.reported.update({ temperature: 21, nested: { a: 1 } }, (e: unknown) => (e ? reject(e) : resolve()))), 'reported update');
      // A reported patch IoT Hub refuses (a property name with '.') changes nothing and emits nothing.
      await assert.rejects(
        within(10_000, new Promise<void>((resolve, reject) => twin.properties.reported.update({ 'bad.name': 1 }, (e: unknown) => (e ? reject(e) : resolve()))), 'refused reported update'),
      );
      await client.close();
      await eventually(() => ingest.of('DeviceConnectionStateEvents', deviceId).length >= 2 || undefined, 10_000);

      // A second session: connected again (over AMQP, once a device link is attached), then disconnected.
      const again = Client.fromConnectionString(connectionString, transport);
      await within(10_000, again.open(), 'client.open');
      await within(10_000, again.sendEvent(new device.Message('hello')), 'client.sendEvent');
      await again.close();
      const states = await eventually(() => {
        const s = ingest.of('DeviceConnectionStateEvents', deviceId);
        return s.length >= 4 ? s : undefined;
      }, 10_000);
      assert.deepEqual(
        states.map((m) => m.properties.opType),
        ['deviceConnected', 'deviceDisconnected', 'deviceConnected', 'deviceDisconnected'],
      );
      assertCommon(states[0]!, { hubName, deviceId, messageSource: 'deviceConnectionStateEvents', schema: 'deviceConnectionStateNotification', opType: 'deviceConnected' });
      const sequence = states.map((m) => bodyOf(m).sequenceNumber as string);
      for (const s of sequence) assert.match(s, /^[0-9A-F]{64}$/);
      for (let i = 1; i < sequence.length; i++) assert.ok(sequence[i]! > sequence[i - 1]!, `${sequence[i]} > ${sequence[i - 1]}`);
      assert.deepEqual(Object.keys(bodyOf(states[0]!)), ['sequenceNumber']);

      // The device's reported patch is a twin change event with the reported part only.
      const [change] = ingest.of('TwinChangeEvents', deviceId);
      assert.ok(change, 'a twin change event for the reported patch');
      assertCommon(change, { hubName, deviceId, messageSource: 'twinChangeEvents', schema: 'twinChangeNotification', opType: 'updateTwin' });
      const body = bodyOf(change);
      const serviceTwin = (await registry.getTwin(deviceId)).responseBody as any;
      assert.equal(body.properties.desired, undefined);
      assert.equal(body.tags, undefined);
      assert.equal(body.properties.reported.temperature, 21);
      assert.deepEqual(body.properties.reported.nested, { a: 1 });
      assert.equal(body.properties.reported.$version, serviceTwin.properties.reported.$version);
      assert.match(body.properties.reported.$metadata.temperature.$lastUpdated, isoPattern);
      assert.equal(body.version, serviceTwin.version);
      // Events of one device reach routing in the order they happened.
      const order = ingest.messages.filter((m) => m.deviceId === deviceId).map((m) => m.properties.opType);
      assert.deepEqual(order, ['deviceConnected', 'updateTwin', 'deviceDisconnected', 'deviceConnected', 'deviceDisconnected']);
    });
  }

  test('a module connects over MQTT: moduleConnected / moduleDisconnected; its twin changes carry the module id', async () => {
    await registry.create({ deviceId: 'mod-dev' } as any);
    const { connectionString } = await createModule(t, 'mod-dev', 'edge-1');
    await settled();
    ingest.messages.length = 0;
    const client = ModuleClient.fromConnectionString(connectionString, deviceMqtt.Mqtt);
    await within(10_000, client.open(), 'ModuleClient.open');
    await registry.updateModuleTwin('mod-dev', 'edge-1', { properties: { desired: { interval: 5 } } }, '*');
    await client.close();
    const events = await eventually(() => {
      const e = ingest.messages.filter((m) => m.deviceId === 'mod-dev');
      return e.length >= 3 ? e : undefined;
    }, 10_000);
    assert.deepEqual(
      events.map((m) => [m.source, m.properties.opType, m.moduleId]),
      [
        ['DeviceConnectionStateEvents', 'moduleConnected', 'edge-1'],
        ['TwinChangeEvents', 'updateTwin', 'edge-1'],
        ['DeviceConnectionStateEvents', 'moduleDisconnected', 'edge-1'],
      ],
    );
    assertCommon(events[1]!, { hubName, deviceId: 'mod-dev', moduleId: 'edge-1', messageSource: 'twinChangeEvents', schema: 'twinChangeNotification', opType: 'updateTwin' });
    assert.equal(bodyOf(events[1]!).properties.desired.interval, 5);
  });

  test('device job lifecycle: each device of a twin-update job ends with an event, after the job\'s twin change', async () => {
    await registry.addDevices([{ deviceId: 'job-1' }, { deviceId: 'job-2' }, { deviceId: 'job-3' }] as any);
    await settled();
    ingest.messages.length = 0;
    const jobs = iothub.JobClient.fromConnectionString(await t.connectionString());
    await jobs.scheduleTwinUpdate('events-job', "deviceId IN ['job-1', 'job-2']", { etag: '*', tags: { wave: 1 } } as any);
    const done = await eventually(async () => {
      const j = (await jobs.getJob('events-job')).jobStatus as any;
      return j.status === 'completed' ? j : undefined;
    }, 10_000);
    assert.equal(done.deviceJobStatistics.succeededCount, 2);
    await settled();
    for (const deviceId of ['job-1', 'job-2']) {
      const mine = ingest.messages.filter((m) => m.deviceId === deviceId);
      assert.deepEqual(mine.map((m) => m.properties.opType), ['updateTwin', 'deviceJobCompleted']);
      const [, jobEvent] = mine;
      assertCommon(jobEvent!, { hubName, deviceId, messageSource: 'jobLifecycleEvents', schema: 'deviceJobLifecycleNotification', opType: 'deviceJobCompleted' });
      assert.equal(jobEvent!.source, 'DeviceJobLifecycleEvents');
      const body = bodyOf(jobEvent!);
      assert.equal(body.jobId, 'events-job');
      assert.equal(body.deviceId, deviceId);
      assert.equal(body.jobType, 'scheduleUpdateTwin');
      assert.equal(body.status, 'completed');
      assert.deepEqual(bodyOf(mine[0]!).tags, { wave: 1 });
    }
    assert.deepEqual(ingest.messages.filter((m) => m.deviceId === 'job-3'), []);
  });

  test('the hub\'s shutdown reports its live connections disconnected', async () => {
    const { connectionString } = await createDevice(t, 'shutdown-1');
    const client = Client.fromConnectionString(connectionString, deviceMqtt.Mqtt);
    await within(10_000, client.open(), 'client.open');
    await eventually(() => ingest.of('DeviceConnectionStateEvents', 'shutdown-1').length === 1 || undefined);
    try {
      // The collecting ingest stays attached to the hub that stops.
      await t.restart();
    } finally {
      await client.close().catch(() => undefined);
    }
    const states = ingest.of('DeviceConnectionStateEvents', 'shutdown-1');
    assert.deepEqual(states.map((m) => m.properties.opType), ['deviceConnected', 'deviceDisconnected']);
    registry = iothub.Registry.fromConnectionString(await t.connectionString());

    // After the restart the sequence numbers go on growing.
    const later = new CollectingIngest();
    t.hub.routingEvents.attach(later);
    const again = Client.fromConnectionString(connectionString, deviceMqtt.Mqtt);
    await within(10_000, again.open(), 'client.open after the restart');
    await again.close();
    const [connectedAgain] = await eventually(() => {
      const s = later.of('DeviceConnectionStateEvents', 'shutdown-1');
      return s.length >= 2 ? s : undefined;
    });
    assert.ok(bodyOf(connectedAgain!).sequenceNumber > bodyOf(states[1]!).sequenceNumber, 'a later start, a larger number');
  });

  test('a failing or stalled ingest neither fails nor slows the operation it observes', async () => {
    let calls = 0;
    t.hub.routingEvents.attach({
      async submit() {
        calls++;
        throw new Error('routing is down');
      },
    });
    await registry.create({ deviceId: 'robust-1' } as any);
    const res = await registry.updateTwin('robust-1', { tags: { ok: true } }, '*');
    assert.deepEqual((res.responseBody as any).tags, { ok: true });
    await settled();
    assert.equal(calls, 2, 'both events were offered');

    // An ingest that never answers: the service calls still complete, and later events wait behind it.
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    const seen: RoutableMessage[] = [];
    t.hub.routingEvents.attach({
      async submit(m) {
        seen.push(m);
        await stalled;
      },
    });
    await within(5000, registry.updateTwin('robust-1', { tags: { n: 1 } }, '*'), 'updateTwin with a stalled ingest');
    await within(5000, registry.updateTwin('robust-1', { tags: { n: 2 } }, '*'), 'updateTwin with a stalled ingest');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen.length, 1, 'the second event of the device waits for the first to be committed');
    release();
    await settled();
    assert.deepEqual(seen.map((m) => bodyOf(m).tags), [{ n: 1 }, { n: 2 }]);
  });
});
