import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import mqtt from 'mqtt';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule, eventually } from './support/devices.js';

const { Client, ModuleClient } = device;
const { Mqtt, MqttWs } = deviceMqtt;

const updateReported = (twin: device.Twin, patch: object) =>
  new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())));

describe('twins over MQTT with the unmodified azure-iot-device SDK', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  before(async () => {
    t = await startTestHub();
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
  });
  after(() => t.close());

  for (const [name, transport] of [['Mqtt', Mqtt], ['MqttWs', MqttWs]] as const) {
    test(`${name}: get twin, patch reported properties, receive desired-property notifications`, async () => {
      const deviceId = `twin-${name}`;
      const { connectionString } = await createDevice(t, deviceId);
      await registry.updateTwin(deviceId, { properties: { desired: { interval: 10 } } }, '*');
      const client = Client.fromConnectionString(connectionString, transport as any);
      await client.open();
      try {
        const twin = await client.getTwin();
        assert.equal((twin.properties.desired as any).interval, 10);
        assert.equal(twin.properties.desired.$version, 2);

        await updateReported(twin, { firmware: { version: '1.0.1' }, battery: 97 });
        await updateReported(twin, { battery: null, online: true });
        const { responseBody: service } = await registry.getTwin(deviceId);
        const reported = JSON.parse(JSON.stringify(service.properties.reported));
        assert.deepEqual(reported.firmware, { version: '1.0.1' });
        assert.equal(reported.battery, undefined);
        assert.equal(reported.online, true);
        assert.equal(reported.$version, 3);
        assert.ok(reported.$metadata.firmware.version.$lastUpdated);

        const seen: any[] = [];
        twin.on('properties.desired', (delta: any) => seen.push(delta));
        await eventually(() => seen.length >= 1); // the SDK emits the current desired state first
        await registry.updateTwin(deviceId, { properties: { desired: { interval: 30, mode: 'eco' } } }, '*');
        const delta = await eventually(() => seen.find((d) => d.mode === 'eco'));
        assert.equal(delta.interval, 30);
        assert.equal(delta.$version, 3);
        assert.equal((twin.properties.desired as any).interval, 30, 'the SDK merged the patch into its twin');

        // Tags are the back end's: they never reach the device.
        await registry.updateTwin(deviceId, { tags: { secret: 'x' } }, '*');
        const again = await client.getTwin();
        assert.equal(JSON.stringify(again.properties).includes('secret'), false);
      } finally {
        await client.close();
      }
    });
  }

  test('an invalid reported patch is answered with an error status and changes nothing', async () => {
    const { connectionString } = await createDevice(t, 'twin-bad-patch');
    const client = Client.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      const twin = await client.getTwin();
      await updateReported(twin, { good: 1 });
      await assert.rejects(updateReported(twin, { 'bad.key': 1 }), /not allowed/);
      await assert.rejects(updateReported(twin, { big: 'x'.repeat(5000) }), /4096/);
      const { responseBody } = await registry.getTwin('twin-bad-patch');
      const reported = JSON.parse(JSON.stringify(responseBody.properties.reported));
      assert.equal(reported.$version, 2);
      assert.deepEqual(Object.keys(reported).filter((k) => !k.startsWith('$')), ['good']);
      // The connection is still usable.
      await updateReported(twin, { good: 2 });
    } finally {
      await client.close();
    }
  });

  test('status topics carry 400 with an error body for malformed JSON (raw MQTT)', async () => {
    const { key } = await createDevice(t, 'twin-raw');
    const { createSasToken } = await import('../src/core/sas.js');
    const password = createSasToken(`${t.host}/devices/twin-raw`, key, Math.floor(Date.now() / 1000) + 600);
    const raw = await mqtt.connectAsync(`mqtts://${t.host}:8883`, {
      clientId: 'twin-raw',
      username: `${t.host}/twin-raw/?api-version=2021-04-12`,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      const responses: { topic: string; body: string }[] = [];
      raw.on('message', (topic, payload) => responses.push({ topic, body: payload.toString() }));
      await raw.subscribeAsync('$iothub/twin/res/#');
      await raw.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=7', '{not json');
      const res = await eventually(() => responses.find((r) => r.topic.includes('$rid=7')));
      assert.match(res.topic, /^\$iothub\/twin\/res\/400\/\?\$rid=7$/);
      assert.equal(JSON.parse(res.body).errorCode, 400004);
      await raw.publishAsync('$iothub/twin/GET/?$rid=8', '');
      const got = await eventually(() => responses.find((r) => r.topic.includes('$rid=8')));
      assert.match(got.topic, /^\$iothub\/twin\/res\/200\/\?\$rid=8$/);
      assert.deepEqual(Object.keys(JSON.parse(got.body)).sort(), ['desired', 'reported']);
    } finally {
      await raw.endAsync();
    }
  });

  test('module twins over MQTT: get, reported patch, desired notification', async () => {
    await createDevice(t, 'twin-edge');
    const { connectionString } = await createModule(t, 'twin-edge', 'filter');
    const client = ModuleClient.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      const twin = await client.getTwin();
      await updateReported(twin, { state: 'running' });
      const { responseBody } = await registry.getModuleTwin('twin-edge', 'filter');
      assert.equal((responseBody.properties.reported as any).state, 'running');
      const deviceTwin = await registry.getTwin('twin-edge');
      assert.equal((deviceTwin.responseBody.properties as any).reported.state, undefined, 'the device twin is separate');

      const seen: any[] = [];
      twin.on('properties.desired', (delta: any) => seen.push(delta));
      await registry.updateModuleTwin('twin-edge', 'filter', { properties: { desired: { threshold: 5 } } }, '*');
      const delta = await eventually(() => seen.find((d) => d.threshold === 5));
      assert.equal(delta.$version, 2);
      // A patch to the device twin does not reach the module.
      await registry.updateTwin('twin-edge', { properties: { desired: { threshold: 99 } } }, '*');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.some((d) => d.threshold === 99), false);
    } finally {
      await client.close();
    }
  });
});
