/**
 * End-to-end throughput of the device-to-cloud path: devices publish telemetry over MQTT (QoS 1)
 * to an in-process hub; an @azure/event-hubs consumer reads the built-in endpoint (plain AMQP,
 * UseDevelopmentEmulator=true, loopback). Reports messages/s from first publish to last receipt
 * and the PUBACK→receipt delay (p50/p99): how long after the device was told "committed" the
 * consumer had the event.
 *
 *   npm run bench:eventhub -- [devices=10] [messagesPerDevice=500] [inflight=20]
 *   (bench/d2c's load: npm run bench:eventhub -- 1000 20 1)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { EventHubConsumerClient, type Subscription } from '@azure/event-hubs';
import { defaults, type Config } from '../../src/config/index.js';
import { startFleethub } from '../../src/main.js';
import { createSasToken } from '../../src/core/sas.js';

const [devices = 10, perDevice = 500, inflight = 20] = process.argv.slice(2).map(Number);
const host = '127.0.0.1';
const dataDir = mkdtempSync(join(tmpdir(), 'fleethub-bench-'));
const emulatorPort = 20000 + Math.floor(Math.random() * 20000);
const config: Config = {
  ...defaults,
  hostName: host,
  bind: host,
  dataDir,
  logLevel: 'silent',
  ports: { https: 0, mqtt: 0, amqp: 0, amqpEmulator: emulatorPort, storage: 0 },
};
const hub = await startFleethub(config, pino({ level: 'silent' }));
const info = await hub.info();

const ackAt = new Map<string, number>();
const receivedAt = new Map<string, number>();
const total = devices * perDevice;

// Consumer: every partition, from what is there now.
const consumer = new EventHubConsumerClient('$Default', info.eventHubCompatibleEmulatorConnectionString);
const partitionIds = await consumer.getPartitionIds();
const starts: Record<string, { sequenceNumber: number }> = {};
for (const id of partitionIds) starts[id] = { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
let resolveAll!: () => void;
const allReceived = new Promise<void>((r) => (resolveAll = r));
const subscription: Subscription = consumer.subscribe(
  {
    processEvents: async (events) => {
      const now = Date.now();
      for (const e of events) receivedAt.set(String(e.messageId), now);
      if (receivedAt.size >= total) resolveAll();
    },
    processError: async (err) => console.error('consumer error', err.message),
  },
  { startPosition: starts, maxBatchSize: 500, maxWaitTimeInSeconds: 1 },
);
await new Promise((r) => setTimeout(r, 1000));

// Devices.
const registry = hub.registry;
const clients: mqtt.MqttClient[] = [];
for (let d = 0; d < devices; d++) {
  const deviceId = `bench-${d}`;
  const device = await registry.putDevice(deviceId, { deviceId }, undefined);
  const key = (device as { authentication: { symmetricKey: { primaryKey: string } } }).authentication.symmetricKey.primaryKey;
  const password = createSasToken(`${host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 3600);
  const client = mqtt.connect({
    host,
    port: hub.ports.mqtt,
    protocol: 'mqtts',
    ca: hub.tls.caCertificatePem,
    clientId: deviceId,
    username: `${host}/${deviceId}/?api-version=2021-04-12`,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  clients.push(client);
}

const started = Date.now();
await Promise.all(
  clients.map(async (client, d) => {
    let next = 0;
    const worker = async () => {
      while (next < perDevice) {
        const id = `${d}-${next++}`;
        // 256-byte bodies, as bench/d2c sends.
        const body = JSON.stringify({ d, id, t: Date.now() }).padEnd(256, ' ');
        await client.publishAsync(`devices/bench-${d}/messages/events/$.mid=${id}`, body, { qos: 1 });
        ackAt.set(id, Date.now());
      }
    };
    await Promise.all(Array.from({ length: inflight }, worker));
  }),
);
const published = Date.now();
await Promise.race([allReceived, new Promise((r) => setTimeout(r, 60_000))]);
const finished = Math.max(...receivedAt.values());

const delays = [...ackAt].filter(([id]) => receivedAt.has(id)).map(([id, t]) => receivedAt.get(id)! - t).sort((a, b) => a - b);
const pct = (p: number) => delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))];
console.log(
  JSON.stringify(
    {
      devices,
      messagesPerDevice: perDevice,
      inflightPerDevice: inflight,
      published: ackAt.size,
      received: receivedAt.size,
      publishSeconds: (published - started) / 1000,
      publishPerSecond: Math.round(ackAt.size / ((published - started) / 1000)),
      endToEndPerSecond: Math.round(receivedAt.size / ((finished - started) / 1000)),
      pubackToReceiptMs: { p50: pct(50), p99: pct(99), max: delays[delays.length - 1] },
    },
    null,
    2,
  ),
);

await subscription.close();
await consumer.close();
for (const c of clients) await c.endAsync();
await hub.close();
rmSync(dataDir, { recursive: true, force: true });
