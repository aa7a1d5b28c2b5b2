import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData, type EventPosition } from '@azure/event-hubs';
import { IotHubClient, type RoutingProperties } from '@azure/arm-iothub';
import iothub from 'azure-iothub';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { SqliteRoutingCheckpoints } from '../src/store/sqlite/routing.js';
import { backlogEntity } from '../src/store/routing.js';
import { EndpointDrainer } from '../src/hub/routing/delivery.js';
import { createEndpointSinkFactory } from '../src/egress/routing/index.js';
import { SinkError, type EndpointHealth, type EndpointSettings, type EndpointSink, type EndpointSinkFactory, type RoutedMessage, type SinkContext, type SinkFailureKind } from '../src/hub/routing/types.js';

const { Client, Message } = device;

/**
 * A custom endpoint's sink inside the test (real delivery to Event Hubs, Service Bus and storage is
 * the egress sinks' and their tests'): what was delivered, and a behaviour the test switches.
 */
class TestSinks implements EndpointSinkFactory {
  readonly delivered = new Map<string, RoutedMessage[]>();
  readonly behaviour = new Map<string, 'ok' | SinkFailureKind | 'hang'>();
  readonly created: { name: string; connectionString?: string }[] = [];
  readonly attempts = new Map<string, number>();
  /** Health seen by the sink at each attempt (before it answers). */
  readonly healthAtAttempt = new Map<string, string[]>();
  readonly contexts = new Map<string, SinkContext>();
  /** Batches as handed over, per endpoint. */
  readonly batches = new Map<string, { at: number; size: number }[]>();
  readonly batching = new Map<string, { frequencyMs: number; maxBytes: number }>();
  constructor(private readonly t: () => TestHub) {}

  /** Endpoints named `real-…` get the hub's own egress sinks (end to end through the Azure SDKs). */
  real: EndpointSinkFactory | undefined;

  create(endpoint: EndpointSettings, context: SinkContext): EndpointSink {
    const name = endpoint.name;
    if (name.startsWith('real-') && this.real) return this.real.create(endpoint, context);
    this.created.push({ name, connectionString: endpoint.connectionString });
    this.contexts.set(name, context);
    const batching = this.batching.get(name);
    return {
      ...(batching ? { batching } : {}),
      deliver: async (messages) => {
        this.attempts.set(name, (this.attempts.get(name) ?? 0) + 1);
        const h = this.t().hub.routing.status.health().find((x) => x.endpointId === name)!;
        this.healthAtAttempt.set(name, [...(this.healthAtAttempt.get(name) ?? []), h.healthStatus]);
        const b = this.behaviour.get(name) ?? 'ok';
        if (b === 'hang') return new Promise<void>(() => undefined);
        if (b !== 'ok') throw new SinkError(b, `test sink ${name}: ${b}`);
        this.delivered.set(name, [...(this.delivered.get(name) ?? []), ...messages]);
        this.batches.set(name, [...(this.batches.get(name) ?? []), { at: Date.now(), size: messages.length }]);
      },
      close: async () => undefined,
    };
  }
  bodies(name: string): string[] {
    return (this.delivered.get(name) ?? []).map((m) => m.body.toString());
  }
}

const ehConnection = (entity: string) => `Endpoint=sb://example.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0;EntityPath=${entity}`;

describe('message routing (routes, fallback, enrichments, backlogs, health) with the unmodified device, ARM and Event Hubs SDKs', () => {
  let t: TestHub;
  let arm: IotHubClient;
  let rg: string;
  let hubName: string;
  let cs: string;
  let mqttDevice: InstanceType<typeof Client>;
  let amqpDevice: InstanceType<typeof Client>;
  const sinks = new TestSinks(() => t);

  async function setRouting(routing: RoutingProperties): Promise<void> {
    const hub = await arm.iotHubResource.get(rg, hubName);
    hub.properties!.routing = routing;
    await arm.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
  }

  const fallback = (isEnabled = true) => ({ name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled });
  const noEndpoints = { eventHubs: [], serviceBusQueues: [], serviceBusTopics: [], storageContainers: [] };

  /** The last sequence number of partition 0 now (to read only what comes next). */
  async function mark(): Promise<EventPosition> {
    const client = new EventHubConsumerClient('$Default', cs);
    try {
      const p = await client.getPartitionProperties('0');
      return p.isEmpty ? earliestEventPosition : { sequenceNumber: p.lastEnqueuedSequenceNumber, isInclusive: false };
    } finally {
      await client.close();
    }
  }

  /** Reads the built-in endpoint from `from` until the message with body `last` came. */
  async function readUntil(from: EventPosition, last: string): Promise<ReceivedEventData[]> {
    const client = new EventHubConsumerClient('$Default', cs);
    const events: ReceivedEventData[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`'${last}' did not arrive; got ${events.map((e) => String(e.body)).join(', ')}`)), 10_000);
        const sub = client.subscribe(
          '0',
          {
            processEvents: async (batch) => {
              events.push(...batch);
              if (events.some((e) => bodyOf(e) === last)) {
                clearTimeout(timer);
                void sub.close().then(() => resolve());
              }
            },
            processError: async () => undefined,
          },
          { startPosition: from, maxWaitTimeInSeconds: 1 },
        );
      });
    } finally {
      await client.close();
    }
    return events;
  }

  const bodyOf = (e: ReceivedEventData) => (Buffer.isBuffer(e.body) ? e.body.toString() : typeof e.body === 'string' ? e.body : JSON.stringify(e.body));

  async function send(client: InstanceType<typeof Client>, body: string, props: Record<string, string> = {}): Promise<void> {
    const m = new Message(body);
    for (const [k, v] of Object.entries(props)) m.properties.add(k, v);
    await client.sendEvent(m);
  }

  const health = (name: string): EndpointHealth => t.hub.routing.status.health().find((h) => h.endpointId === name)!;
  const endpointCounters = (name: string) => t.hub.routing.status.counters().endpoints.find((e) => e.endpoint === name)!;

  before(async () => {
    t = await startTestHub({
      eventLog: { partitions: 1, retentionHours: 24 },
      routing: { deadAfterMs: 1500, retryMinMs: 20, retryMaxMs: 100, deadProbeMs: 60_000, minBatchFrequencySeconds: 1, statusLogSeconds: 0 },
      eventHubsNamespaces: [{ name: 'routing-core', eventHubs: [{ name: 'routed', partitionCount: 2 }] }],
    });
    sinks.real = createEndpointSinkFactory({ caPem: t.hub.tls.caCertificatePem, blobStorage: t.hub.blobStorage });
    await t.hub.routing.useSinks(sinks);
    arm = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
    hubName = t.hub.config.hubName;
    cs = (await t.hub.info()).eventHubCompatibleConnectionString;
    const m = await createDevice(t, 'route-mqtt');
    const a = await createDevice(t, 'route-amqp');
    mqttDevice = Client.fromConnectionString(m.connectionString, deviceMqtt.Mqtt as any);
    amqpDevice = Client.fromConnectionString(a.connectionString, deviceAmqp.Amqp as any);
    await mqttDevice.open();
    await amqpDevice.open();
  });
  after(async () => {
    await mqttDevice?.close();
    await amqpDevice?.close();
    await t.close();
  });

  test('without routes every device message, over MQTT and AMQP, goes to the built-in endpoint', async () => {
    const from = await mark();
    await send(mqttDevice, 'plain-mqtt', { level: 'info' });
    await send(amqpDevice, 'plain-amqp');
    await send(mqttDevice, 'plain-last');
    const got = (await readUntil(from, 'plain-last')).map(bodyOf);
    assert.deepEqual(got, ['plain-mqtt', 'plain-amqp', 'plain-last']);
  });

  test('end to end: a route with a condition to a local event hub, read with the unmodified Event Hubs consumer, enrichments included', async () => {
    const root = (await t.hub.info()).eventHubsNamespaces!.find((n) => n.name === 'routing-core')!.connectionString;
    await setRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'real-eh', connectionString: `${root};EntityPath=routed` }] },
      routes: [{ name: 'critical-to-eh', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['real-eh'], isEnabled: true }],
      fallbackRoute: fallback(true),
      enrichments: [{ key: 'site', value: 'plant-9', endpointNames: ['real-eh'] }],
    });
    const from = await mark();
    await send(mqttDevice, 'e2e-critical', { level: 'critical' });
    await send(amqpDevice, 'e2e-info', { level: 'info' });
    // The fallback: only the unmatched message on events.
    assert.deepEqual((await readUntil(from, 'e2e-info')).map(bodyOf), ['e2e-info']);
    const consumer = new EventHubConsumerClient('$Default', root, 'routed');
    const got: ReceivedEventData[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the routed message did not reach the event hub')), 15_000);
        const sub = consumer.subscribe(
          {
            processEvents: async (events) => {
              got.push(...events);
              if (got.length > 0) {
                clearTimeout(timer);
                void sub.close().then(() => resolve());
              }
            },
            processError: async () => undefined,
          },
          { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
        );
      });
    } finally {
      await consumer.close();
    }
    assert.deepEqual(got.map(bodyOf), ['e2e-critical']);
    assert.equal(got[0]!.properties!.level, 'critical');
    assert.equal(got[0]!.properties!.site, 'plant-9');
    assert.equal(got[0]!.systemProperties!['iothub-connection-device-id'], 'route-mqtt');
    await eventually(() => health('real-eh').healthStatus === 'healthy');
    assert.equal(endpointCounters('real-eh').delivered, 1);
  });

  test('a route to events with a condition: only matching messages reach events; others are orphaned', async () => {
    await setRouting({
      endpoints: noEndpoints,
      routes: [{ name: 'critical', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['events'], isEnabled: true }],
      fallbackRoute: fallback(false),
      enrichments: [],
    });
    const orphanedBefore = t.hub.routing.status.counters().orphaned;
    const from = await mark();
    await send(mqttDevice, 'c1', { level: 'critical' });
    // Acknowledged although it goes nowhere (IoT Hub acks orphaned messages too).
    await send(amqpDevice, 'i1', { level: 'info' });
    await send(mqttDevice, 'n1');
    await send(amqpDevice, 'c2', { level: 'critical' });
    const got = (await readUntil(from, 'c2')).map(bodyOf);
    assert.deepEqual(got, ['c1', 'c2']);
    const c = t.hub.routing.status.counters();
    assert.equal(c.orphaned - orphanedBefore, 2);
    assert.ok(c.routes.find((r) => r.route === 'critical')!.matched >= 2);
  });

  test('the fallback route sends device messages that matched no route to events, and only those', async () => {
    await setRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'alerts', connectionString: ehConnection('alerts') }] },
      routes: [{ name: 'to-alerts', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['alerts'], isEnabled: true }],
      fallbackRoute: fallback(true),
      enrichments: [],
    });
    const from = await mark();
    await send(mqttDevice, 'fb-critical', { level: 'critical' });
    await send(amqpDevice, 'fb-info', { level: 'info' });
    await send(mqttDevice, 'fb-last');
    const got = (await readUntil(from, 'fb-last')).map(bodyOf);
    assert.deepEqual(got, ['fb-info', 'fb-last']);
    await eventually(() => sinks.bodies('alerts').includes('fb-critical'));
    assert.deepEqual(sinks.bodies('alerts'), ['fb-critical']);
    const routed = sinks.delivered.get('alerts')![0]!;
    assert.equal(routed.systemProperties['iothub-connection-device-id'], 'route-mqtt');
    assert.equal(routed.properties.level, 'critical');
    assert.equal(routed.partition, 0);
    assert.equal(health('alerts').healthStatus, 'healthy');
    assert.equal(endpointCounters('alerts').backlog, 0);
  });

  test('a message goes once to each endpoint whose route matches, and enrichments are stamped per endpoint', async () => {
    const registry = iothub.Registry.fromConnectionString(await t.connectionString());
    await registry.updateTwin('route-mqtt', { tags: { room: 'boiler-1' } }, '*');
    await setRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'alerts', connectionString: ehConnection('alerts') }] },
      routes: [
        { name: 'all-events', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
        { name: 'also-events', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['events'], isEnabled: true },
        { name: 'to-alerts', source: 'DeviceMessages', condition: "level = 'critical'", endpointNames: ['alerts'], isEnabled: true },
      ],
      fallbackRoute: fallback(true),
      enrichments: [
        { key: 'site', value: 'plant-7', endpointNames: ['events'] },
        { key: 'hub', value: '$iothubname', endpointNames: ['events', 'alerts'] },
        { key: 'room', value: '$twin.tags.room', endpointNames: ['events'] },
        { key: 'floor', value: '$twin.tags.floor', endpointNames: ['events'] },
      ],
    });
    const before = sinks.bodies('alerts').length;
    const from = await mark();
    await send(mqttDevice, 'en-1', { level: 'critical' });
    await send(amqpDevice, 'en-2');
    const events = await readUntil(from, 'en-2');
    assert.deepEqual(events.map(bodyOf), ['en-1', 'en-2']);
    const [one, two] = events;
    assert.equal(one!.properties!.site, 'plant-7');
    assert.equal(one!.properties!.hub, hubName);
    assert.equal(one!.properties!.room, 'boiler-1');
    // A twin path the device's twin does not have stamps the enrichment's own text.
    assert.equal(one!.properties!.floor, '$twin.tags.floor');
    assert.equal(one!.properties!.level, 'critical');
    assert.equal(two!.properties!.room, '$twin.tags.room');
    await eventually(() => sinks.bodies('alerts').length > before);
    const alert = sinks.delivered.get('alerts')!.at(-1)!;
    assert.equal(alert.body.toString(), 'en-1');
    assert.equal(alert.properties.hub, hubName);
    assert.equal(alert.properties.site, undefined, 'an enrichment applies only to the endpoints it names');
  });

  test('a failing endpoint does not hold up the device or the built-in endpoint, and its health goes degraded, unhealthy, dead', async () => {
    sinks.behaviour.set('broken', 'transient');
    sinks.behaviour.set('stuck', 'hang');
    await setRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'broken', connectionString: ehConnection('broken') }], serviceBusQueues: [{ name: 'stuck', connectionString: ehConnection('stuck') }] },
      routes: [
        { name: 'to-broken', source: 'DeviceMessages', condition: 'true', endpointNames: ['broken'], isEnabled: true },
        { name: 'to-stuck', source: 'DeviceMessages', condition: 'true', endpointNames: ['stuck'], isEnabled: true },
        { name: 'to-events', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
      ],
      fallbackRoute: fallback(true),
      enrichments: [],
    });
    assert.equal(health('broken').healthStatus, 'unknown');
    const from = await mark();
    const started = Date.now();
    for (let i = 0; i < 5; i++) await send(i % 2 ? amqpDevice : mqttDevice, `f-${i}`);
    const got = await readUntil(from, 'f-4');
    assert.deepEqual(got.map(bodyOf), ['f-0', 'f-1', 'f-2', 'f-3', 'f-4']);
    assert.ok(Date.now() - started < 5000, 'devices and the built-in endpoint were not slowed by the failing endpoints');

    await eventually(() => (sinks.attempts.get('broken') ?? 0) >= 4, 5000);
    const seen = sinks.healthAtAttempt.get('broken')!;
    assert.equal(seen[0], 'unknown');
    assert.equal(seen[1], 'degraded');
    assert.equal(seen[3], 'unhealthy');
    const h = health('broken');
    assert.match(h.lastKnownError!, /test sink broken: transient/);
    assert.ok(h.lastKnownErrorTime && h.lastSendAttemptTime);
    assert.equal(endpointCounters('broken').backlog, 5);

    // deadAfterMs (1.5 s here) of continuous failure: dead, and the backlog is dropped and counted.
    await eventually(() => health('broken').healthStatus === 'dead', 5000);
    const c = endpointCounters('broken');
    assert.equal(c.dropped, 5);
    assert.equal(c.backlog, 0);
    assert.equal(health('stuck').healthStatus, 'unknown');
    assert.equal(endpointCounters('stuck').backlog, 5);

    // A dead endpoint is tried again when its settings change (here: its connection string).
    sinks.behaviour.set('broken', 'ok');
    await setRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'broken', connectionString: ehConnection('broken-fixed') }] },
      routes: [{ name: 'to-broken', source: 'DeviceMessages', condition: 'true', endpointNames: ['broken'], isEnabled: true }],
      fallbackRoute: fallback(true),
      enrichments: [],
    });
    assert.equal(sinks.created.filter((x) => x.name === 'broken').at(-1)!.connectionString, ehConnection('broken-fixed'));
    await send(mqttDevice, 'after-fix');
    await eventually(() => sinks.bodies('broken').includes('after-fix'));
    assert.equal(health('broken').healthStatus, 'healthy');
    // The removed endpoint is gone from health.
    assert.equal(health('stuck'), undefined);
  });

  test('unauthorized makes an endpoint unhealthy at once; delivery is in order after retries', async () => {
    sinks.behaviour.set('ordered', 'unauthorized');
    await setRouting({
      endpoints: { ...noEndpoints, serviceBusTopics: [{ name: 'ordered', connectionString: ehConnection('ordered') }] },
      routes: [{ name: 'to-ordered', source: 'DeviceMessages', condition: 'true', endpointNames: ['ordered'], isEnabled: true }],
      fallbackRoute: fallback(false),
      enrichments: [],
    });
    await send(mqttDevice, 'o-0');
    await eventually(() => (sinks.attempts.get('ordered') ?? 0) >= 2);
    assert.equal(sinks.healthAtAttempt.get('ordered')![1], 'unhealthy');
    for (let i = 1; i < 20; i++) await send(i % 2 ? amqpDevice : mqttDevice, `o-${i}`);
    sinks.behaviour.set('ordered', 'ok');
    await eventually(() => sinks.bodies('ordered').length >= 20);
    assert.deepEqual(sinks.bodies('ordered'), Array.from({ length: 20 }, (_, i) => `o-${i}`));
    const seqs = sinks.delivered.get('ordered')!.map((m) => m.sequenceNumber);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(health('ordered').healthStatus, 'healthy');
  });

  test('non-telemetry events go only where their routes say', async () => {
    await setRouting({
      endpoints: { ...noEndpoints, eventHubs: [{ name: 'twin-changes', connectionString: ehConnection('twins') }] },
      routes: [{ name: 'twins', source: 'TwinChangeEvents', condition: 'true', endpointNames: ['twin-changes'], isEnabled: true }],
      fallbackRoute: fallback(true),
      enrichments: [],
    });
    const event = (opType: string) => ({
      deviceId: 'route-mqtt',
      body: Buffer.from('{"version":2}'),
      systemProperties: { 'iothub-message-source': 'twinChangeEvents', 'content-type': 'application/json' },
      properties: { opType, deviceId: 'route-mqtt', hubName },
    });
    await t.hub.routing.ingest.submit({ source: 'TwinChangeEvents', ...event('updateTwin') });
    // No route for lifecycle events: nowhere (not the fallback, which is for device messages).
    await t.hub.routing.ingest.submit({ source: 'DeviceLifecycleEvents', ...event('createDeviceIdentity') });
    await eventually(() => sinks.bodies('twin-changes').length === 1);
    const m = sinks.delivered.get('twin-changes')![0]!;
    assert.equal(m.properties.opType, 'updateTwin');
    assert.ok(typeof m.systemProperties['iothub-enqueuedtime'] === 'string');
    const from = await mark();
    await send(mqttDevice, 'ne-last');
    assert.deepEqual((await readUntil(from, 'ne-last')).map(bodyOf), ['ne-last']);
  });

  test('a batching sink gets one batch when the oldest message waited its frequency; credentials come from the egress seam', async () => {
    sinks.batching.set('archive', { frequencyMs: 700, maxBytes: 1_000_000 });
    const hub = await arm.iotHubResource.get(rg, hubName);
    hub.identity = { type: 'SystemAssigned' };
    hub.properties!.routing = {
      endpoints: {
        ...noEndpoints,
        storageContainers: [{ name: 'archive', connectionString: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net', containerName: 'c', batchFrequencyInSeconds: 60, encoding: 'json' }],
        eventHubs: [{ name: 'by-identity', authenticationType: 'identityBased', endpointUri: 'sb://ns.servicebus.windows.net', entityPath: 'routed' }],
      },
      routes: [
        { name: 'to-archive', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive'], isEnabled: true },
        { name: 'by-twin', source: 'DeviceMessages', condition: "$twin.tags.room = 'boiler-1'", endpointNames: ['by-identity'], isEnabled: true },
      ],
      fallbackRoute: fallback(false),
      enrichments: [],
    };
    await arm.iotHubResource.beginCreateOrUpdateAndWait(rg, hubName, hub);
    const m = await createDevice(t, 'route-batch');
    const d = Client.fromConnectionString(m.connectionString, deviceMqtt.Mqtt as any);
    await d.open();
    try {
      const first = Date.now();
      for (let i = 0; i < 5; i++) await send(d, `b-${i}`);
      await eventually(() => sinks.bodies('archive').length === 5, 5000);
      const batches = sinks.batches.get('archive')!;
      assert.equal(batches.length, 1, 'the backlog held the messages until the window closed, then handed them over at once');
      assert.equal(batches[0]!.size, 5);
      assert.ok(batches[0]!.at - first >= 650, `handed over after ${batches[0]!.at - first} ms`);
      assert.equal(sinks.contexts.get('archive')!.credential.kind, 'key');
      assert.equal(sinks.contexts.get('archive')!.minBatchFrequencySeconds, 1);
      // identityBased without a user-assigned id: the hub's system-assigned identity.
      const cred = sinks.contexts.get('by-identity')!.credential;
      assert.equal(cred.kind, 'identity');
      assert.equal(cred.kind === 'identity' && cred.identity, 'systemAssigned');
      // $twin conditions: only the device whose twin has the tag.
      await send(mqttDevice, 'twin-match');
      await eventually(() => sinks.bodies('by-identity').includes('twin-match'));
      assert.deepEqual(sinks.bodies('by-identity'), ['twin-match']);
    } finally {
      await d.close();
    }
  });

  test('a batching sink gets its batch before the window closes once maxBytes of bodies wait', async () => {
    sinks.batching.set('archive-full', { frequencyMs: 60_000, maxBytes: 40 });
    await setRouting({
      endpoints: { ...noEndpoints, storageContainers: [{ name: 'archive-full', connectionString: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net', containerName: 'c' }] },
      routes: [{ name: 'to-full', source: 'DeviceMessages', condition: 'true', endpointNames: ['archive-full'], isEnabled: true }],
      fallbackRoute: fallback(true),
      enrichments: [],
    });
    // 12 bytes each: three wait (36 bytes) until the window closes, the fourth fills the batch.
    for (let i = 0; i < 3; i++) await send(mqttDevice, `full-body-${i}_`);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sinks.batches.get('archive-full'), undefined, 'under maxBytes: held for the window');
    const fourth = Date.now();
    await send(mqttDevice, 'full-body-3_');
    await eventually(() => sinks.bodies('archive-full').length === 4, 5000);
    assert.deepEqual(sinks.batches.get('archive-full')!.map((b) => b.size), [4], 'one batch, handed over once full');
    assert.ok(sinks.batches.get('archive-full')![0]!.at - fourth < 5000);
  });

  test('a restart resumes each endpoint from its checkpoint: nothing delivered twice, nothing lost', async () => {
    await setRouting({
      endpoints: { ...noEndpoints, storageContainers: [], eventHubs: [{ name: 'durable', connectionString: ehConnection('durable') }] },
      routes: [{ name: 'to-durable', source: 'DeviceMessages', condition: 'true', endpointNames: ['durable'], isEnabled: true }],
      fallbackRoute: fallback(true),
      enrichments: [],
    });
    await send(mqttDevice, 'd-0');
    await send(mqttDevice, 'd-1');
    await eventually(() => sinks.bodies('durable').length === 2);
    sinks.behaviour.set('durable', 'transient');
    await send(mqttDevice, 'd-2');
    await send(amqpDevice, 'd-3');
    await eventually(() => endpointCounters('durable').backlog === 2);
    await mqttDevice.close();
    await amqpDevice.close();

    await t.restart();
    sinks.behaviour.set('durable', 'ok');
    await t.hub.routing.useSinks(sinks);
    await eventually(() => sinks.bodies('durable').length === 4);
    assert.deepEqual(sinks.bodies('durable'), ['d-0', 'd-1', 'd-2', 'd-3']);
    assert.equal(endpointCounters('durable').backlog, 0);
    // Delivered messages were trimmed from the backlog.
    const backlog = await t.hub.store.eventLogs.entity('$endpoint/durable').read(0, { sequenceNumber: 0, inclusive: true }, 100);
    assert.equal(backlog.length, 0);
  });

  test('appending across entities is one transaction: when one entity cannot take its event, none is written', async () => {
    const builtIn = await t.hub.store.eventLog.partitionInfo(0);
    const event = { partition: 0, enqueuedTime: Date.now(), body: Buffer.from('x'), systemProperties: {}, properties: {} };
    await assert.rejects(t.hub.store.eventLogs.appendAcross([
      { entity: '$builtin', event },
      { entity: '$endpoint/no-such-endpoint', event },
    ]));
    const afterwards = await t.hub.store.eventLog.partitionInfo(0);
    assert.equal(afterwards.lastSequenceNumber, builtIn.lastSequenceNumber);
  });

});

describe('a dead endpoint (the drainer alone, over a real SQLite store)', () => {
  test('is probed every deadProbeMs: a failed probe drops what arrived meanwhile, a successful one makes it healthy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-drainer-'));
    const store = openSqliteStore(join(dir, 'hub.db'));
    let behaviour: 'ok' | 'transient' = 'transient';
    const delivered: string[] = [];
    const backlog = store.eventLogs.entity(backlogEntity('probe'));
    const drainer = new EndpointDrainer('probe', { kind: 'eventHubs', name: 'probe' }, {
      backlog,
      checkpoints: new SqliteRoutingCheckpoints(store.db),
      createSink: async () => ({
        deliver: async (messages) => {
          if (behaviour !== 'ok') throw new SinkError('transient', 'down');
          delivered.push(...messages.map((m) => m.body.toString()));
        },
        close: async () => undefined,
      }),
      options: { deadAfterMs: 150, retryMinMs: 10, retryMaxMs: 20, deadProbeMs: 400 },
      logger: pino({ level: 'silent' }),
    });
    const append = async (body: string) => {
      const [e] = await backlog.append([{ partition: 0, enqueuedTime: Date.now(), body: Buffer.from(body), systemProperties: {}, properties: {} }]);
      drainer.appended(e!.sequenceNumber);
    };
    try {
      await drainer.start();
      await append('a');
      await eventually(() => drainer.health().healthStatus === 'dead', 3000);
      assert.equal(drainer.counters().dropped, 1);
      const deadAt = Date.now();
      // Arrives while dead; the next probe still fails: dropped too.
      await append('b');
      await eventually(() => drainer.counters().dropped === 2, 3000);
      assert.ok(Date.now() - deadAt >= 300, 'not tried again before the probe interval');
      behaviour = 'ok';
      await append('c');
      await eventually(() => delivered.includes('c'), 3000);
      assert.deepEqual(delivered, ['c']);
      assert.equal(drainer.health().healthStatus, 'healthy');
    } finally {
      await drainer.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
