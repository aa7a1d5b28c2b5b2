import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceAmqp from 'azure-iot-device-amqp';
import iothub from 'azure-iothub';
import common from 'azure-iot-common';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule, eventsOf, eventually } from './support/devices.js';
import { selfSigned, thumbprint } from './support/x509.js';
import { connectAmqp } from './support/amqp.js';

const { Client, ModuleClient, Message } = device;
const { Amqp, AmqpWs } = deviceAmqp;

describe('device plane over AMQP with the unmodified azure-iot-device-amqp', () => {
  let t: TestHub;
  let service: iothub.Client;
  before(async () => {
    t = await startTestHub();
    service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    await service.open();
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  for (const [name, transport] of [['Amqp', Amqp], ['AmqpWs', AmqpWs]] as const) {
  test(`${name}: telemetry is committed to the event log with IoT Hub properties; the device shows Connected`, async () => {
    const deviceId = `amqp-telemetry-${name}`;
    const { connectionString } = await createDevice(t, deviceId);
    const client = Client.fromConnectionString(connectionString, transport as any);
    await client.open();
    try {
      const m = new Message(JSON.stringify({ t: 1 }));
      m.messageId = 'amqp-msg-1';
      m.contentType = 'application/json';
      m.properties.add('kind', 'reading');
      await client.sendEvent(m);
      // azure-iot-device-amqp has no sendEventBatch; several messages in a row keep their order.
      await client.sendEvent(new Message('b1'));
      await client.sendEvent(new Message('b2'));
      // Over AMQP the device's links (attached on first use) make it Connected.
      assert.equal((await t.hub.registry.getDevice(deviceId)).connectionState, 'Connected');
      const events = await eventsOf(t, deviceId);
      assert.equal(events[0]!.systemProperties['message-id'], 'amqp-msg-1');
      assert.equal(events[0]!.systemProperties['content-type'], 'application/json');
      assert.equal(events[0]!.systemProperties['iothub-connection-device-id'], deviceId);
      assert.deepEqual(events[0]!.properties, { kind: 'reading' });
      assert.deepEqual(JSON.parse(events[0]!.body.toString()), { t: 1 });
      assert.deepEqual(events.slice(1).map((e) => e.body.toString()), ['b1', 'b2']);
    } finally {
      await client.close();
    }
    await eventually(async () => (await t.hub.registry.getDevice(deviceId)).connectionState === 'Disconnected');
  });
  }

  test('module telemetry carries the module id', async () => {
    await createDevice(t, 'amqp-edge');
    const { connectionString } = await createModule(t, 'amqp-edge', 'filter');
    const client = ModuleClient.fromConnectionString(connectionString, Amqp as any);
    await client.open();
    try {
      await client.sendEvent(new Message('from module'));
      const events = await eventsOf(t, 'amqp-edge', 'filter');
      assert.equal(events.length, 1);
      assert.equal(events[0]!.systemProperties['iothub-connection-module-id'], 'filter');
    } finally {
      await client.close();
    }
  });

  for (const [name, transport] of [['Amqp', Amqp], ['AmqpWs', AmqpWs]] as const) {
  test(`${name}: C2D: complete removes, reject dead-letters with Rejected feedback, abandon redelivers`, async () => {
    const deviceId = `amqp-c2d-${name}`;
    const { connectionString } = await createDevice(t, deviceId);
    const client = Client.fromConnectionString(connectionString, transport as any);
    const seen: string[] = [];
    client.on('message', (msg: any) => {
      seen.push(`${msg.messageId}:${msg.getData().toString()}`);
      const body = msg.getData().toString();
      if (body === 'reject-me') client.reject(msg, () => undefined);
      else if (body === 'abandon-me' && seen.filter((s) => s.endsWith('abandon-me')).length === 1) client.abandon(msg, () => undefined);
      else client.complete(msg, () => undefined);
    });
    await client.open();
    try {
      const send = async (id: string, body: string) => {
        const m = new common.Message(body);
        m.messageId = id;
        m.ack = 'full';
        m.properties.add('p', id);
        await service.send(deviceId, m);
      };
      await send('a', 'complete-me');
      await send('b', 'reject-me');
      await send('c', 'abandon-me');
      await eventually(() => seen.length >= 4, 8000).catch((e) => {
        throw new Error(`${e.message}: saw ${seen.join(', ')}`);
      });
      assert.deepEqual(seen, ['a:complete-me', 'b:reject-me', 'c:abandon-me', 'c:abandon-me']);
      // The device saw the redelivery before its complete of it reached the hub: wait for that.
      await eventually(async () => (await t.hub.cloudToDevice.queueDepth(deviceId)) === 0, 5000);
      const feedbackClient = iothub.Client.fromConnectionString(await t.connectionString('service'));
      const receiver = (await feedbackClient.getFeedbackReceiver()).result as any;
      const records: any[] = [];
      receiver.on('message', (msg: any) => {
        records.push(...JSON.parse(msg.getData().toString()));
        receiver.complete(msg, () => undefined);
      });
      await eventually(() => records.filter((r) => r.deviceId === deviceId).length >= 3, 8000);
      await feedbackClient.close();
      const byId = Object.fromEntries(records.filter((r) => r.deviceId === deviceId).map((r) => [r.originalMessageId, r.statusCode]));
      assert.deepEqual(byId, { a: 'Success', b: 'Rejected', c: 'Success' });
    } finally {
      await client.close();
    }
  });
  }

  for (const [name, transport] of [['Amqp', Amqp], ['AmqpWs', AmqpWs]] as const) {
  test(`${name}: twin over AMQP: get, reported patch, desired notifications`, async () => {
    const deviceId = `amqp-twin-${name}`;
    const { connectionString } = await createDevice(t, deviceId);
    const registry = iothub.Registry.fromConnectionString(await t.connectionString());
    const client = Client.fromConnectionString(connectionString, transport as any);
    await client.open();
    try {
      const twin = await client.getTwin();
      assert.deepEqual(twin.properties.desired, { $version: 1 });
      const desired = new Promise<any>((resolve) => twin.on('properties.desired', (d: any) => d.$version > 1 && resolve(d)));
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ firmware: '1.2.3' }, (e: any) => (e ? reject(e) : resolve())));
      const { responseBody: svcTwin } = await registry.getTwin(deviceId);
      assert.equal((svcTwin.properties.reported as any).firmware, '1.2.3');
      await new Promise((r) => setTimeout(r, 300));
      await svcTwin.update({ properties: { desired: { interval: 30 } } });
      const d = await desired;
      assert.equal(d.interval, 30);
      assert.equal(d.$version, 2);
    } finally {
      await client.close();
    }
  });
  }

  test('module twin over AMQP: reported properties reach the module twin', async () => {
    await createDevice(t, 'amqp-twin-edge');
    const { connectionString } = await createModule(t, 'amqp-twin-edge', 'sensor');
    const client = ModuleClient.fromConnectionString(connectionString, Amqp as any);
    await client.open();
    try {
      const twin = await client.getTwin();
      await new Promise<void>((resolve, reject) => twin.properties.reported.update({ sampling: 5 }, (e: any) => (e ? reject(e) : resolve())));
      const registry = iothub.Registry.fromConnectionString(await t.connectionString());
      const { responseBody } = await registry.getModuleTwin('amqp-twin-edge', 'sensor');
      assert.equal((responseBody.properties.reported as any).sampling, 5);
      const { responseBody: deviceTwin } = await registry.getTwin('amqp-twin-edge');
      assert.equal((deviceTwin.properties.reported as any).sampling, undefined);
    } finally {
      await client.close();
    }
  });

  test('C2D abandoned ten times is dead-lettered with DeliveryCountExceeded feedback', async () => {
    const { connectionString } = await createDevice(t, 'amqp-c2d-abandon');
    const client = Client.fromConnectionString(connectionString, Amqp as any);
    let deliveries = 0;
    client.on('message', (msg: any) => {
      deliveries++;
      client.abandon(msg, () => undefined);
    });
    await client.open();
    try {
      const m = new common.Message('never done');
      m.messageId = 'hot-potato';
      m.ack = 'negative';
      await service.send('amqp-c2d-abandon', m);
      await eventually(async () => deliveries >= 10 && (await t.hub.cloudToDevice.queueDepth('amqp-c2d-abandon')) === 0, 8000).catch(async (e) => {
        throw new Error(`${e.message}: ${deliveries} deliveries, depth ${await t.hub.cloudToDevice.queueDepth('amqp-c2d-abandon')}`);
      });
      const feedbackClient = iothub.Client.fromConnectionString(await t.connectionString('service'));
      const receiver = (await feedbackClient.getFeedbackReceiver()).result as any;
      const records: any[] = [];
      receiver.on('message', (msg: any) => {
        records.push(...JSON.parse(msg.getData().toString()));
        receiver.complete(msg, () => undefined);
      });
      await eventually(() => records.some((r) => r.deviceId === 'amqp-c2d-abandon'), 8000);
      await feedbackClient.close();
      const record = records.find((r) => r.deviceId === 'amqp-c2d-abandon');
      assert.equal(record.statusCode, 'DeliveryCountExceeded');
      assert.equal(record.originalMessageId, 'hot-potato');
      assert.equal(deliveries, 10);
    } finally {
      await client.close();
    }
  });

  for (const [name, transport] of [['Amqp', Amqp], ['AmqpWs', AmqpWs]] as const) {
  test(`${name}: direct methods over AMQP reach the device and return its answer`, async () => {
    const deviceId = `amqp-methods-${name}`;
    const { connectionString } = await createDevice(t, deviceId);
    const client = Client.fromConnectionString(connectionString, transport as any);
    await client.open();
    try {
      client.onDeviceMethod('reboot', (request: any, response: any) => {
        response.send(200, { rebooting: true, delay: request.payload.delay }, () => undefined);
      });
      await eventually(() => t.hub.methods.isOnline(deviceId), 5000);
      const { result } = await service.invokeDeviceMethod(deviceId, { methodName: 'reboot', payload: { delay: 5 }, responseTimeoutInSeconds: 10 });
      assert.equal(result.status, 200);
      assert.deepEqual(result.payload, { rebooting: true, delay: 5 });
    } finally {
      await client.close();
    }
  });
  }

  test('an X.509 (self-signed) device sends telemetry over AMQP without CBS; another certificate is refused', async () => {
    const cert = await selfSigned('amqp-x509');
    const stranger = await selfSigned('amqp-x509');
    const registry = iothub.Registry.fromConnectionString(await t.connectionString());
    await registry.create({ deviceId: 'amqp-x509', authentication: { x509Thumbprint: { primaryThumbprint: await thumbprint(cert) } } } as any);
    const connect = async (c: typeof cert) => {
      const client = Client.fromConnectionString(`HostName=${t.host};DeviceId=amqp-x509;x509=true`, Amqp as any);
      client.setRetryPolicy(new common.NoRetry());
      await client.setOptions({ cert: c.certPem, key: c.keyPem });
      return client;
    };
    const good = await connect(cert);
    await good.open();
    try {
      await good.sendEvent(new Message('over amqp with a certificate'));
    } finally {
      await good.close();
    }
    const events = await eventsOf(t, 'amqp-x509');
    assert.equal(events.length, 1);
    assert.equal(JSON.parse(String(events[0]!.systemProperties['iothub-connection-auth-method'])).type, 'x509Certificate');
    const bad = await connect(stranger);
    await bad.open().catch(() => undefined);
    await assert.rejects(bad.sendEvent(new Message('refused')), (e: any) => /Unauthorized/i.test(`${e.name} ${e.message}`));
    await bad.close().catch(() => undefined);
    assert.equal((await eventsOf(t, 'amqp-x509')).length, 1);
  });

  test('SASL EXTERNAL: a raw AMQP client with the device certificate sends telemetry', async () => {
    const cert = await selfSigned('amqp-external');
    const registry = iothub.Registry.fromConnectionString(await t.connectionString());
    await registry.create({ deviceId: 'amqp-external', authentication: { x509Thumbprint: { primaryThumbprint: await thumbprint(cert) } } } as any);
    const c = await connectAmqp(t.host, { enable_sasl_external: true, cert: cert.certPem, key: cert.keyPem } as any);
    try {
      const sender = await c.sender('/devices/amqp-external/messages/events');
      const outcome = await new Promise<string>((resolve) => {
        sender.once('accepted', () => resolve('accepted'));
        sender.once('rejected', () => resolve('rejected'));
        sender.send({ body: 'external', message_id: 'ext-1' });
      });
      assert.equal(outcome, 'accepted');
      await assert.rejects(c.sender('/devices/someone-else/messages/events'), (e: any) => e.condition === 'amqp:unauthorized-access');
    } finally {
      await c.close();
    }
    const events = await eventsOf(t, 'amqp-external');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.systemProperties['message-id'], 'ext-1');
  });

  test('a wrong key is refused with UnauthorizedError and the device stays Disconnected', async () => {
    await createDevice(t, 'amqp-badkey');
    const cs = `HostName=${t.host};DeviceId=amqp-badkey;SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`;
    const client = Client.fromConnectionString(cs, Amqp as any);
    await assert.rejects(client.open(), (e: any) => /Unauthorized/i.test(e.name) || /Unauthorized/i.test(e.message));
    await client.close().catch(() => undefined);
    assert.equal((await t.hub.registry.getDevice('amqp-badkey')).connectionState, 'Disconnected');
  });
});
