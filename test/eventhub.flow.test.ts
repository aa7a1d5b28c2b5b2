import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { EventHubConsumerClient, earliestEventPosition } from '@azure/event-hubs';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice } from './support/devices.js';
import { receive } from './support/eventHubs.js';
import { createSasToken } from '../src/core/sas.js';
import { partitionFor } from '../src/hub/messaging/eventLogWriter.js';

/**
 * Flow control of the built-in endpoint's receiver links under a big prefetch: the SDK grants
 * credit by its prefetch count on each receive call, so one link can hold more credit than rhea's
 * session can keep unsettled deliveries (2,048). The hub must stop at the session's room and go on
 * when settlements free it, not overflow it (which silently stalled the partition for good).
 */
describe('Event Hub-compatible endpoint: credit beyond what one session can keep unsettled', () => {
  let t: TestHub;
  const deviceId = 'eh-flow';
  const COUNT = 2600;

  before(async () => {
    t = await startTestHub();
    const { key } = await createDevice(t, deviceId);
    const client = await mqtt.connectAsync(`mqtts://${t.host}:${t.hub.ports.mqtt}`, {
      clientId: deviceId,
      username: `${t.host}/${deviceId}/?api-version=2021-04-12`,
      password: createSasToken(`${t.host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 3600),
      protocolVersion: 4,
      reconnectPeriod: 0,
      ca: t.hub.tls.caCertificatePem,
    });
    // QoS 1, 100 in flight: every PUBACK is a committed event of the device's one partition.
    for (let i = 0; i < COUNT; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, COUNT - i) }, (_, k) => client.publishAsync(`devices/${deviceId}/messages/events/$.mid=f-${i + k}`, `{"n":${i + k}}`, { qos: 1 })));
    }
    await client.endAsync();
  });
  after(() => t.close());

  test(`a consumer with prefetch 3000 receives all ${COUNT} events of a partition, in order`, async () => {
    const client = new EventHubConsumerClient('$Default', (await t.hub.info()).eventHubCompatibleEmulatorConnectionString.replace('127.0.0.1', t.host));
    const partitionId = String(partitionFor(deviceId, t.hub.config.eventLog.partitions));
    try {
      // One receive call grants 3,000 credits at once.
      const events = await receive(client, partitionId, earliestEventPosition, (got) => got.length >= COUNT, { subscribe: { maxBatchSize: 100, prefetchCount: 3000 }, timeoutMs: 30_000 });
      const ids = events.map((e) => String(e.messageId));
      assert.deepEqual(ids, Array.from({ length: COUNT }, (_, i) => `f-${i}`));
    } finally {
      await client.close();
    }
  });
});
