import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import common from 'azure-iot-common';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice } from './support/devices.js';
import { sdkError, within } from './support/sdk.js';

const { Client } = iothub;
const { Message } = common;

interface FeedbackRecord {
  originalMessageId: string;
  statusCode: string;
  description: string;
  deviceId: string;
  enqueuedTimeUtc: string;
  deviceGenerationId: string;
}

/** Collects feedback records until `count` arrived for `deviceId`, completing each batch. */
async function feedbackFor(serviceConnectionString: string, deviceId: string, count: number): Promise<{ records: FeedbackRecord[]; contentType?: string }> {
  // Its own client, closed at the end: a feedback link left attached keeps the batches it was sent.
  const service = Client.fromConnectionString(serviceConnectionString);
  const receiver = (await service.getFeedbackReceiver()).result as any;
  const records: FeedbackRecord[] = [];
  let contentType: string | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`feedback: got ${records.length} of ${count}`)), 10_000);
      receiver.on('message', (msg: any) => {
        contentType = msg.contentType;
        const batch = JSON.parse(msg.getData().toString()) as FeedbackRecord[];
        records.push(...batch.filter((r) => r.deviceId === deviceId));
        receiver.complete(msg, () => undefined);
        if (records.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    await service.close();
  }
  return { records, contentType };
}

describe('cloud-to-device over AMQP with the unmodified azure-iothub Client', () => {
  let t: TestHub;
  let service: iothub.Client;
  before(async () => {
    t = await startTestHub();
    service = Client.fromConnectionString(await t.connectionString('service'));
    await service.open();
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  test('send delivers to the device with message id, correlation id and properties; positive feedback arrives', async () => {
    const { connectionString } = await createDevice(t, 'c2d-amqp-1');
    const d = device.Client.fromConnectionString(connectionString, deviceMqtt.Mqtt as any);
    const received = new Promise<any>((resolve) => d.on('message', resolve));
    await d.open();
    try {
      const m = new Message(JSON.stringify({ command: 'reboot' }));
      m.messageId = 'cmd-1';
      m.correlationId = 'corr-1';
      m.ack = 'positive';
      m.properties.add('priority', 'high');
      await service.send('c2d-amqp-1', m);
      const got = await received;
      assert.equal(got.messageId, 'cmd-1');
      assert.equal(got.correlationId, 'corr-1');
      assert.deepEqual(JSON.parse(got.getData().toString()), { command: 'reboot' });
      assert.equal(got.properties.getValue('priority'), 'high');
      const { records, contentType } = await feedbackFor(await t.connectionString('service'), 'c2d-amqp-1', 1);
      assert.equal(contentType, 'application/vnd.microsoft.iothub.feedback.json');
      assert.equal(records[0]!.originalMessageId, 'cmd-1');
      assert.equal(records[0]!.statusCode, 'Success');
      assert.equal(records[0]!.description, 'Success');
      assert.ok(records[0]!.deviceGenerationId);
      assert.ok(Date.parse(records[0]!.enqueuedTimeUtc) > Date.now() - 60_000);
    } finally {
      await d.close();
    }
  });

  test('a message expiring while the device is offline gives Expired feedback then', async () => {
    await createDevice(t, 'c2d-amqp-offline');
    const m = new Message('nobody home');
    m.messageId = 'offline-1';
    m.ack = 'negative';
    m.expiryTimeUtc = Date.now() + 1000;
    await service.send('c2d-amqp-offline', m);
    const { records } = await feedbackFor(await t.connectionString('service'), 'c2d-amqp-offline', 1);
    assert.equal(records[0]!.statusCode, 'Expired');
    assert.equal(records[0]!.description, 'Message Expired');
    assert.equal(await t.hub.cloudToDevice.queueDepth('c2d-amqp-offline'), 0);
  });

  test('an expired message gives Expired feedback and is not delivered', async () => {
    const { connectionString } = await createDevice(t, 'c2d-amqp-expiring');
    const m = new Message('too late');
    m.messageId = 'late-1';
    m.ack = 'full';
    m.expiryTimeUtc = Date.now() + 1000;
    await service.send('c2d-amqp-expiring', m);
    await new Promise((r) => setTimeout(r, 1500));
    const d = device.Client.fromConnectionString(connectionString, deviceMqtt.Mqtt as any);
    let delivered = 0;
    d.on('message', () => delivered++);
    await d.open();
    try {
      const { records } = await feedbackFor(await t.connectionString('service'), 'c2d-amqp-expiring', 1);
      assert.equal(records[0]!.statusCode, 'Expired');
      assert.equal(records[0]!.originalMessageId, 'late-1');
      assert.equal(delivered, 0);
    } finally {
      await d.close();
    }
  });

  test('unknown device raises DeviceNotFoundError; a full queue raises DeviceMaximumQueueDepthExceededError and queues nothing', async () => {
    await assert.rejects(service.send('no-such-device', new Message('x')), sdkError('DeviceNotFoundError'));
    await createDevice(t, 'c2d-amqp-full');
    for (let i = 0; i < 50; i++) await service.send('c2d-amqp-full', new Message(`m${i}`));
    await assert.rejects(service.send('c2d-amqp-full', new Message('one too many')), sdkError('DeviceMaximumQueueDepthExceededError'));
    assert.equal(await t.hub.cloudToDevice.queueDepth('c2d-amqp-full'), 50);
  });

  test('AmqpWs: the service client sends over AMQP on WebSocket (port 443)', async () => {
    const { connectionString } = await createDevice(t, 'c2d-amqp-ws');
    const ws = Client.fromConnectionString(await t.connectionString('service'), iothub.AmqpWs as any);
    try {
      const m = new Message('over websocket');
      m.messageId = 'ws-1';
      await ws.send('c2d-amqp-ws', m);
      assert.equal(await t.hub.cloudToDevice.queueDepth('c2d-amqp-ws'), 1);
      const d = device.Client.fromConnectionString(connectionString, deviceMqtt.Mqtt as any);
      const received = new Promise<any>((resolve) => d.on('message', resolve));
      await d.open();
      try {
        assert.equal((await received).messageId, 'ws-1');
      } finally {
        await d.close();
      }
    } finally {
      await ws.close();
    }
  });

  test('a registryRead policy cannot send (UnauthorizedError) and the file notification receiver attaches', async () => {
    const reader = Client.fromConnectionString(await t.connectionString('registryRead'));
    // Promptly, as IoT Hub answers: the link is refused before it is given any credit.
    await assert.rejects(within(10_000, reader.send('c2d-amqp-full', new Message('x')), 'the refused send'), sdkError('UnauthorizedError'));
    await reader.close().catch(() => undefined);
    const receiver = await service.getFileNotificationReceiver();
    assert.ok(receiver.result);
  });
});
