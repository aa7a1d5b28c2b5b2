import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import tls from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { createSasToken } from '../src/core/sas.js';

const { Client } = device;
const { Mqtt, MqttWs } = deviceMqtt;

describe('cloud-to-device messages delivered over MQTT to the unmodified azure-iot-device SDK', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let send: (deviceId: string, body: unknown) => Promise<void>;
  before(async () => {
    t = await startTestHub();
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    send = async (deviceId, body) => {
      const res = await rawRequest(t.host, 'POST', `/fleethub/devices/${deviceId}/messages/devicebound?api-version=2021-04-12`, {
        headers: { authorization: await serviceToken(t), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201, res.text);
    };
  });
  after(() => t.close());

  for (const [name, transport] of [['Mqtt', Mqtt], ['MqttWs', MqttWs]] as const) {
    test(`${name}: queued and live messages arrive in order with their properties, then leave the queue`, async () => {
      const deviceId = `c2d-${name}`;
      const { connectionString } = await createDevice(t, deviceId);
      await send(deviceId, {
        body: 'first',
        messageId: 'mid-1',
        correlationId: 'cid-1',
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        ack: 'full',
        properties: { 'colour & shade': 'blue/green?', plain: 'v' },
      });
      await send(deviceId, { body: 'second' });
      const client = Client.fromConnectionString(connectionString, transport as any);
      const received: device.Message[] = [];
      client.on('message', (m: device.Message) => {
        received.push(m);
        client.complete(m, () => undefined);
      });
      await client.open();
      try {
        await eventually(() => received.length >= 2);
        await send(deviceId, { body: 'third', ttlSeconds: 60 });
        await eventually(() => received.length >= 3);
        assert.deepEqual(received.map((m) => m.getBytes().toString()), ['first', 'second', 'third']);
        const [m] = received;
        assert.equal(m!.messageId, 'mid-1');
        assert.equal(m!.correlationId, 'cid-1');
        assert.equal(m!.contentType, 'application/json');
        assert.equal(m!.contentEncoding, 'utf-8');
        assert.equal(m!.to, `/devices/${deviceId}/messages/devicebound`);
        assert.ok(Date.parse(m!.expiryTimeUtc as string) > Date.now());
        assert.equal(m!.properties.getValue('colour & shade'), 'blue/green?');
        assert.equal(m!.properties.getValue('plain'), 'v');
        assert.equal(m!.properties.getValue('iothub-ack'), 'full');
        await eventually(async () => (await t.hub.cloudToDevice.queueDepth(deviceId)) === 0);
        assert.equal((await registry.get(deviceId)).responseBody.cloudToDeviceMessageCount, 0);
        const outcomes = t.hub.store.db.prepare('SELECT original_message_id AS id, outcome FROM c2d_outcomes WHERE device_id = ?').all(deviceId);
        assert.deepEqual(outcomes, [{ id: 'mid-1', outcome: 'Success' }], 'feedback is recorded for ack=full only');
      } finally {
        await client.close();
      }
    });
  }

  test('a message that was not acknowledged (no PUBACK) is delivered again on the next connection', async () => {
    const { key, connectionString } = await createDevice(t, 'c2d-redeliver');
    await send('c2d-redeliver', { body: 'important', messageId: 'again' });
    const delivered = await receiveWithoutPuback(t, 'c2d-redeliver', key);
    assert.equal(delivered.qos, 1);
    assert.match(delivered.topic, /^devices\/c2d-redeliver\/messages\/devicebound\/%24\.mid=again&%24\.to=/);
    assert.equal(await t.hub.cloudToDevice.queueDepth('c2d-redeliver'), 1, 'still queued without a PUBACK');

    const client = Client.fromConnectionString(connectionString, Mqtt);
    const received: string[] = [];
    client.on('message', (m: device.Message) => received.push(m.messageId as string));
    await client.open();
    try {
      await eventually(() => received.length >= 1);
      assert.deepEqual(received, ['again']);
      await eventually(async () => (await t.hub.cloudToDevice.queueDepth('c2d-redeliver')) === 0);
    } finally {
      await client.close();
    }
  });

  test('expired messages are dropped, not delivered', async () => {
    const { connectionString } = await createDevice(t, 'c2d-expiry');
    await send('c2d-expiry', { body: 'stale', ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1200));
    await send('c2d-expiry', { body: 'fresh' });
    const client = Client.fromConnectionString(connectionString, Mqtt);
    const received: string[] = [];
    client.on('message', (m: device.Message) => received.push(m.getBytes().toString()));
    await client.open();
    try {
      await eventually(() => received.length >= 1);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(received, ['fresh']);
    } finally {
      await client.close();
    }
  });

  test('a message delivered 10 times without acknowledgement is dead-lettered, with feedback recorded', async () => {
    const { key } = await createDevice(t, 'c2d-poison');
    await send('c2d-poison', { body: 'poison', messageId: 'p-1', ack: 'negative' });
    for (let i = 0; i < 10; i++) {
      const p = await receiveWithoutPuback(t, 'c2d-poison', key);
      assert.equal(p.payload.toString(), 'poison');
    }
    assert.equal(await receiveWithoutPuback(t, 'c2d-poison', key, 300), undefined, 'not delivered an 11th time');
    assert.equal(await t.hub.cloudToDevice.queueDepth('c2d-poison'), 0);
    const outcomes = t.hub.store.db.prepare('SELECT original_message_id AS id, outcome FROM c2d_outcomes WHERE device_id = ?').all('c2d-poison');
    assert.deepEqual(outcomes, [{ id: 'p-1', outcome: 'DeliveryCountExceeded' }]);
  });
});

/**
 * A bare MQTT client over TLS: connects as the device, subscribes to its cloud-to-device topic,
 * takes the first message and drops the connection without PUBACK. undefined when none came.
 */
async function receiveWithoutPuback(t: TestHub, deviceId: string, key: string, waitMs = 5000): Promise<any> {
  const socket = tls.connect({ host: t.host, port: 8883, servername: t.host });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: any[] = [];
  parser.on('packet', (p: any) => packets.push(p));
  socket.on('data', (d: Buffer) => parser.parse(d));
  socket.on('error', () => undefined);
  const write = (p: object) => socket.write(mqttPacket.generate(p as any));
  try {
    write({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: false,
      keepalive: 60,
      clientId: deviceId,
      username: `${t.host}/${deviceId}/?api-version=2021-04-12`,
      password: Buffer.from(createSasToken(`${t.host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 600)),
    });
    await eventually(() => packets.find((p) => p.cmd === 'connack'));
    write({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${deviceId}/messages/devicebound/#`, qos: 1 }] });
    await eventually(() => packets.find((p) => p.cmd === 'suback'));
    return await eventually(() => packets.find((p) => p.cmd === 'publish'), waitMs).catch(() => undefined);
  } finally {
    socket.destroy();
    // Let the hub see the connection go before the next one arrives.
    await new Promise((r) => setTimeout(r, 50));
  }
}
