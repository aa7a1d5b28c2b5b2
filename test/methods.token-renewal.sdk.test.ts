/**
 * A device that renews its SAS token (`Client.updateSharedAccessSignature`, on a client made with
 * `Client.fromSharedAccessSignature`) keeps its method handler and its desired-properties
 * listener, as on IoT Hub. Over MQTT the SDK reconnects with CleanSession 0 and does not
 * subscribe again: the hub keeps the session's subscriptions. A call made while the device is
 * away waits for it within connectTimeoutInSeconds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { within } from './support/sdk.js';

const { Client, SharedAccessSignature } = device;
const token = (host: string, deviceId: string, key: string) =>
  SharedAccessSignature.create(host, deviceId, key, Math.floor(Date.now() / 1000) + 3600).toString();

describe('direct methods and desired properties after the device renews its SAS token', () => {
  let t: TestHub;
  let service: iothub.Client;
  let registry: iothub.Registry;
  before(async () => {
    t = await startTestHub();
    const cs = await t.connectionString();
    service = iothub.Client.fromConnectionString(cs);
    registry = iothub.Registry.fromConnectionString(cs);
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  const renew = (client: device.Client, sas: string) =>
    within(10000, new Promise<void>((resolve, reject) => client.updateSharedAccessSignature(sas, (err?: Error) => (err ? reject(err) : resolve()))), 'updateSharedAccessSignature');

  for (const [name, transport] of [['Mqtt', deviceMqtt.Mqtt], ['MqttWs', deviceMqtt.MqttWs], ['Amqp', deviceAmqp.Amqp]] as const) {
    test(`${name}: the method handler still answers after each renewal`, async () => {
      const deviceId = `renew-${name}`;
      const { key } = await createDevice(t, deviceId);
      const client = Client.fromSharedAccessSignature(token(t.host, deviceId, key), transport as any);
      await client.open();
      try {
        let calls = 0;
        client.onDeviceMethod('ping', (_request, response) => {
          calls++;
          response.send(200, { pong: calls }, () => undefined);
        });
        await eventually(() => t.hub.methods.isOnline(deviceId));
        assert.deepEqual((await service.invokeDeviceMethod(deviceId, { methodName: 'ping', responseTimeoutInSeconds: 5 } as any)).result, { status: 200, payload: { pong: 1 } });

        for (let round = 2; round <= 3; round++) {
          await renew(client, token(t.host, deviceId, key));
          const { result } = await service.invokeDeviceMethod(deviceId, { methodName: 'ping', responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 5 } as any);
          assert.deepEqual(result, { status: 200, payload: { pong: round } });
        }
        // A call made while the device is away waits for it to come back (connectTimeoutInSeconds).
        // (The Amqp transport does not attach its method links again when reopened, on IoT Hub either.)
        if (name === 'Amqp') return;
        await client.close();
        await eventually(() => !t.hub.methods.isOnline(deviceId));
        const waiting = service.invokeDeviceMethod(deviceId, { methodName: 'ping', responseTimeoutInSeconds: 5, connectTimeoutInSeconds: 10 } as any);
        await new Promise((r) => setTimeout(r, 300));
        await client.open();
        assert.deepEqual((await waiting).result, { status: 200, payload: { pong: 4 } });
      } finally {
        await client.close();
      }
    });
  }

  for (const [name, transport] of [['Mqtt', deviceMqtt.Mqtt], ['MqttWs', deviceMqtt.MqttWs]] as const) {
    test(`${name}: desired-property patches still arrive after a renewal`, async () => {
      const deviceId = `renew-twin-${name}`;
      const { key } = await createDevice(t, deviceId);
      const client = Client.fromSharedAccessSignature(token(t.host, deviceId, key), transport as any);
      await client.open();
      try {
        const twin = await client.getTwin();
        const seen: any[] = [];
        twin.on('properties.desired', (patch: any) => seen.push(patch));
        await eventually(() => seen.length >= 1);
        await eventually(async () => (await registry.updateTwin(deviceId, { properties: { desired: { probe: seen.length } } } as any, '*'), seen.some((p) => p.probe !== undefined)));
        await renew(client, token(t.host, deviceId, key));
        await registry.updateTwin(deviceId, { properties: { desired: { after: 'renewal' } } } as any, '*');
        await eventually(() => seen.some((p) => p.after === 'renewal'));
      } finally {
        await client.close();
      }
    });
  }
});
