import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule } from './support/devices.js';
import { sdkError } from './support/sdk.js';

const { Client, ModuleClient } = device;
const { Mqtt, MqttWs } = deviceMqtt;

describe('direct methods end to end: azure-iothub Client → hub → azure-iot-device over MQTT', () => {
  let t: TestHub;
  let service: iothub.Client;
  before(async () => {
    t = await startTestHub();
    service = iothub.Client.fromConnectionString(await t.connectionString());
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  for (const [name, transport] of [['Mqtt', Mqtt], ['MqttWs', MqttWs]] as const) {
    test(`${name}: the device answers and the service gets {status, payload}`, async () => {
      const deviceId = `methods-${name}`;
      const { connectionString } = await createDevice(t, deviceId);
      const client = Client.fromConnectionString(connectionString, transport as any);
      await client.open();
      try {
        const requests: any[] = [];
        client.onDeviceMethod('setLight', (request, response) => {
          requests.push(request.payload);
          response.send(201, { applied: request.payload.color, echo: request.payload }, () => undefined);
        });
        // onDeviceMethod subscribes asynchronously; wait until the hub sees the device listening.
        await waitFor(() => t.hub.methods.isOnline(deviceId));
        const { result } = await service.invokeDeviceMethod(deviceId, { methodName: 'setLight', payload: { color: 'green', n: [1, 2] } });
        assert.deepEqual(result, { status: 201, payload: { applied: 'green', echo: { color: 'green', n: [1, 2] } } });
        assert.deepEqual(requests, [{ color: 'green', n: [1, 2] }]);
      } finally {
        await client.close();
      }
      await waitFor(() => !t.hub.methods.isOnline(deviceId));
      await assert.rejects(service.invokeDeviceMethod(deviceId, { methodName: 'setLight' }), (e: any) => e.response?.headers['iothub-errorcode'] === 'DeviceNotOnline');
    });
  }

  test('a device that does not answer in time gives 504 GatewayTimeout', async () => {
    const { connectionString } = await createDevice(t, 'methods-silent');
    const client = Client.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      let asked = 0;
      client.onDeviceMethod('slow', () => void asked++); // never responds
      await waitFor(() => t.hub.methods.isOnline('methods-silent'));
      const started = Date.now();
      await assert.rejects(service.invokeDeviceMethod('methods-silent', { methodName: 'slow', responseTimeoutInSeconds: 5 }), sdkError('GatewayTimeoutError'));
      assert.ok(Date.now() - started >= 4900);
      assert.equal(asked, 1);
    } finally {
      await client.close();
    }
  });

  test('connectTimeoutInSeconds lets a device that connects late still answer', async () => {
    const { connectionString } = await createDevice(t, 'methods-late');
    const call = service.invokeDeviceMethod('methods-late', { methodName: 'ping', connectTimeoutInSeconds: 10, responseTimeoutInSeconds: 10 });
    await new Promise((r) => setTimeout(r, 300));
    const client = Client.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      client.onDeviceMethod('ping', (_req, res) => res.send(200, 'pong', () => undefined));
      const { result } = await call;
      assert.deepEqual(result, { status: 200, payload: 'pong' });
    } finally {
      await client.close();
    }
  });

  test('module methods reach the module, not the device', async () => {
    const { connectionString: deviceCs } = await createDevice(t, 'methods-gw');
    const { connectionString } = await createModule(t, 'methods-gw', 'camera');
    const moduleClient = ModuleClient.fromConnectionString(connectionString, Mqtt);
    const deviceClient = Client.fromConnectionString(deviceCs, Mqtt);
    await moduleClient.open();
    await deviceClient.open();
    try {
      moduleClient.onMethod('snap', (req, res) => res!.send(200, { by: 'module', q: req!.payload.q }, () => undefined));
      deviceClient.onDeviceMethod('snap', (_req, res) => res.send(200, { by: 'device' }, () => undefined));
      await waitFor(() => t.hub.methods.isOnline('methods-gw', 'camera') && t.hub.methods.isOnline('methods-gw'));
      assert.deepEqual((await service.invokeDeviceMethod('methods-gw', 'camera', { methodName: 'snap', payload: { q: 9 } })).result, {
        status: 200,
        payload: { by: 'module', q: 9 },
      });
      assert.deepEqual((await service.invokeDeviceMethod('methods-gw', { methodName: 'snap' })).result, { status: 200, payload: { by: 'device' } });
    } finally {
      await moduleClient.close();
      await deviceClient.close();
    }
  });
});

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
