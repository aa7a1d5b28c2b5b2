import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import common from 'azure-iot-common';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule, eventsOf, eventually } from './support/devices.js';
import { sdkError } from './support/sdk.js';

const { Client, ModuleClient, Message } = device;
const { Mqtt, MqttWs } = deviceMqtt;

describe('telemetry over MQTT with the unmodified azure-iot-device SDK', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  for (const [name, transport] of [['Mqtt', Mqtt], ['MqttWs', MqttWs]] as const) {
    test(`${name}: sendEvent is acknowledged and the message is in the event log with IoT Hub's properties`, async () => {
      const deviceId = `telemetry-${name}`;
      const { connectionString } = await createDevice(t, deviceId);
      const before = await t.hub.registry.getDevice(deviceId);
      const client = Client.fromConnectionString(connectionString, transport as any);
      await client.open();
      try {
        const connected = await t.hub.registry.getDevice(deviceId);
        assert.equal(connected.connectionState, 'Connected');
        assert.equal(connected.etag, before.etag, 'connection state does not change the etag');
        assert.ok(connected.connectionStateUpdatedTime > before.connectionStateUpdatedTime);
        assert.ok(connected.lastActivityTime > before.lastActivityTime, 'lastActivityTime is recorded');

        const m = new Message(JSON.stringify({ temperature: 21.5 }));
        m.messageId = 'msg-1';
        m.correlationId = 'corr-1';
        m.contentType = 'application/json';
        m.contentEncoding = 'utf-8';
        m.properties.add('alert', 'high temp');
        m.properties.add('ünïcode&=', 'a/b?c');
        await client.sendEvent(m);
        await client.sendEvent(new Message('second'));

        const events = await eventsOf(t, deviceId);
        assert.equal(events.length, 2);
        const [e] = events;
        assert.deepEqual(JSON.parse(e!.body.toString()), { temperature: 21.5 });
        assert.deepEqual(e!.properties, { alert: 'high temp', 'ünïcode&=': 'a/b?c' });
        const sys = e!.systemProperties;
        assert.equal(sys['message-id'], 'msg-1');
        assert.equal(sys['correlation-id'], 'corr-1');
        assert.equal(sys['content-type'], 'application/json');
        assert.equal(sys['content-encoding'], 'utf-8');
        assert.equal(sys['iothub-connection-device-id'], deviceId);
        assert.equal(sys['iothub-connection-module-id'], undefined);
        assert.equal(sys['iothub-connection-auth-generation-id'], before.generationId);
        assert.deepEqual(JSON.parse(String(sys['iothub-connection-auth-method'])), {
          scope: 'device',
          type: 'sas',
          issuer: 'iothub',
          acceptingIpFilterRule: null,
        });
        assert.ok(Math.abs(Date.parse(String(sys['iothub-enqueuedtime'])) - Date.now()) < 10_000);
        assert.equal(sys['iothub-enqueuedtime'], new Date(e!.enqueuedTime).toISOString());
        // A message without an id gets one.
        assert.match(String(events[1]!.systemProperties['message-id']), /^[0-9a-f-]{36}$/);
        assert.equal(events[1]!.sequenceNumber, e!.sequenceNumber + 1);
        assert.ok(Number(events[1]!.offset) > Number(e!.offset));
      } finally {
        await client.close();
      }
      const after = await eventually(async () => {
        const d = await t.hub.registry.getDevice(deviceId);
        return d.connectionState === 'Disconnected' && d;
      });
      assert.equal(after.etag, before.etag);
    });
  }

  test('a module sends telemetry stamped with its module id', async () => {
    await createDevice(t, 'edge-host');
    const { connectionString } = await createModule(t, 'edge-host', 'sensor');
    const client = ModuleClient.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      const module = await t.hub.registry.getModule('edge-host', 'sensor');
      assert.equal(module.connectionState, 'Connected');
      await client.sendEvent(new Message('from a module'));
    } finally {
      await client.close();
    }
    const [e] = await eventsOf(t, 'edge-host', 'sensor');
    assert.equal(e!.body.toString(), 'from a module');
    assert.equal(e!.systemProperties['iothub-connection-module-id'], 'sensor');
    assert.equal(JSON.parse(String(e!.systemProperties['iothub-connection-auth-method'])).scope, 'module');
    assert.equal((await t.hub.registry.getDevice('edge-host')).connectionState, 'Disconnected', 'the module connection is not the device');
  });

  test('a second connection with the same identity closes the first', async () => {
    const { connectionString } = await createDevice(t, 'twice-connected');
    const first = Client.fromConnectionString(connectionString, Mqtt);
    const second = Client.fromConnectionString(connectionString, Mqtt);
    first.setRetryPolicy(new common.NoRetry());
    await first.open();
    const kicked = new Promise((resolve) => first.once('disconnect', resolve));
    await second.open();
    try {
      await kicked;
      await second.sendEvent(new Message('still here'));
      assert.equal((await t.hub.registry.getDevice('twice-connected')).connectionState, 'Connected');
      assert.equal((await eventsOf(t, 'twice-connected')).length, 1);
    } finally {
      await second.close();
      await first.close().catch(() => undefined);
    }
  });

  test('a disabled device is refused', async () => {
    const { connectionString } = await createDevice(t, 'disabled-one', { status: 'disabled' });
    const client = Client.fromConnectionString(connectionString, Mqtt);
    client.setRetryPolicy(new common.NoRetry());
    await assert.rejects(client.open(), sdkError('ServiceUnavailableError'));
    assert.equal((await t.hub.registry.getDevice('disabled-one')).connectionState, 'Disconnected');
  });

  test('a wrong key or an unknown device is refused as not authorized', async () => {
    const { connectionString } = await createDevice(t, 'wrong-key');
    const wrong = connectionString.replace(/SharedAccessKey=.*$/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
    const client = Client.fromConnectionString(wrong, Mqtt);
    client.setRetryPolicy(new common.NoRetry());
    await assert.rejects(client.open(), sdkError('UnauthorizedError'));
    const unknown = Client.fromConnectionString(wrong.replace('DeviceId=wrong-key', 'DeviceId=nobody'), Mqtt);
    unknown.setRetryPolicy(new common.NoRetry());
    await assert.rejects(unknown.open(), sdkError('UnauthorizedError'));
    assert.equal((await t.hub.registry.getDevice('wrong-key')).connectionState, 'Disconnected');
  });

  test('a device connects with the hub-level device policy token', async () => {
    await createDevice(t, 'via-policy');
    const policy = await t.hub.store.policies.get('device');
    const { createSasToken } = await import('../src/core/sas.js');
    const token = createSasToken(`${t.host}/devices/via-policy`, policy!.primaryKey, Math.floor(Date.now() / 1000) + 600, 'device');
    const client = Client.fromSharedAccessSignature(token, Mqtt);
    await client.open();
    try {
      await client.sendEvent(new Message('policy'));
    } finally {
      await client.close();
    }
    const [e] = await eventsOf(t, 'via-policy');
    assert.equal(JSON.parse(String(e!.systemProperties['iothub-connection-auth-method'])).scope, 'hub');
  });
});

describe('registry updates while a device is connected', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  test('disabling or deleting a connected device (or deleting a module) closes its connection', async () => {
    const registry = (await import('azure-iothub')).default.Registry.fromConnectionString(await t.connectionString());
    const { connectionString } = await createDevice(t, 'to-disable');
    const client = Client.fromConnectionString(connectionString, Mqtt);
    client.setRetryPolicy(new common.NoRetry());
    await client.open();
    const dropped = new Promise((resolve) => client.once('disconnect', resolve));
    const { responseBody } = await registry.get('to-disable');
    await registry.update({ ...responseBody, status: 'disabled' } as any);
    await dropped;
    await eventually(async () => (await t.hub.registry.getDevice('to-disable')).connectionState === 'Disconnected');

    const toDelete = await createDevice(t, 'to-delete');
    const moduleClient = ModuleClient.fromConnectionString((await createModule(t, 'to-delete', 'm')).connectionString, Mqtt);
    moduleClient.setRetryPolicy(new common.NoRetry());
    await moduleClient.open();
    const moduleDropped = new Promise((resolve) => moduleClient.once('disconnect', resolve));
    await registry.removeModule('to-delete', 'm');
    await moduleDropped;

    const deviceClient = Client.fromConnectionString(toDelete.connectionString, Mqtt);
    deviceClient.setRetryPolicy(new common.NoRetry());
    await deviceClient.open();
    const deviceDropped = new Promise((resolve) => deviceClient.once('disconnect', resolve));
    await registry.delete('to-delete');
    await deviceDropped;
  });

  test('replacing a connected device keeps its connection state (a stale copy cannot mark it Disconnected)', async () => {
    const { connectionString } = await createDevice(t, 'updated-while-connected');
    const stale = await t.hub.registry.getDevice('updated-while-connected');
    const client = Client.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      await t.hub.store.devices.replace({ ...stale, statusReason: 'edited' }, stale.etag);
      const d = await t.hub.registry.getDevice('updated-while-connected');
      assert.equal(d.statusReason, 'edited');
      assert.equal(d.connectionState, 'Connected');
    } finally {
      await client.close();
    }
  });
});
