import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import avro from 'avsc';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { ServiceBusClient } from '@azure/service-bus';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startTestHub, type TestHub } from './support/hub.js';
import { receiveAll } from './support/serviceBus.js';
import { decodeAvro } from './support/avro.js';
import { caPaths } from '../src/protocols/tls/ca.js';
import { AzureBlobStorage } from '../src/egress/blobStorage.js';
import { amqpClientOptions, amqpTarget } from '../src/egress/routing/amqpTarget.js';
import { createEndpointSinkFactory, fileNameFormatError, MESSAGE_SCHEMA, scrubSecrets } from '../src/egress/routing/index.js';
import { SinkError, type EndpointSettings, type EndpointSinkFactory, type RoutedMessage, type SinkContext } from '../src/hub/routing/types.js';
import type { EgressCredential } from '../src/identity/types.js';
import { findRole } from '../src/identity/roles.js';
import type { PropertyValue } from '../src/store/eventLog.js';

const EH_NS = 'routes-eh';
const SB_NS = 'routes-sb';

let seq = 0;
/** A routed telemetry message of `deviceId`, with IoT Hub's system properties. */
function routed(deviceId: string, body: string | Buffer, extra: { properties?: Record<string, PropertyValue>; system?: Record<string, PropertyValue>; partition?: number; enqueuedTime?: number } = {}): RoutedMessage {
  const enqueuedTime = extra.enqueuedTime ?? Date.parse('2026-03-04T05:06:07.089Z') + seq;
  seq++;
  return {
    sequenceNumber: seq,
    partition: extra.partition ?? 0,
    enqueuedTime,
    body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'),
    systemProperties: {
      'message-id': `msg-${seq}`,
      'correlation-id': `corr-${seq}`,
      'content-type': 'application/json',
      'content-encoding': 'utf-8',
      'iothub-connection-device-id': deviceId,
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
      'iothub-connection-auth-generation-id': '638000000000000000',
      'iothub-enqueuedtime': new Date(enqueuedTime).toISOString(),
      'iothub-message-source': 'Telemetry',
      ...extra.system,
    },
    properties: extra.properties ?? {},
  };
}

/** Everything in every partition of an event hub, through the unmodified consumer. */
async function readEventHub(cs: string, eventHub: string, atLeast: number): Promise<(ReceivedEventData & { partitionId: string })[]> {
  const consumer = new EventHubConsumerClient('$Default', cs, eventHub);
  const out: (ReceivedEventData & { partitionId: string })[] = [];
  try {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const sub = consumer.subscribe(
      {
        processEvents: async (events, ctx) => {
          out.push(...events.map((e) => Object.assign(e, { partitionId: ctx.partitionId })));
          if (out.length >= atLeast) done();
        },
        processError: async () => undefined,
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1, maxBatchSize: 500 },
    );
    const timer = setTimeout(done, 15_000);
    await finished;
    clearTimeout(timer);
    await sub.close();
  } finally {
    await consumer.close();
  }
  return out;
}

/** The bytes of a data-section body as a received message's raw AMQP view holds it. */
function bytesOf(body: unknown): Buffer {
  const b = Buffer.isBuffer(body) ? body : (body as { content?: unknown })?.content;
  assert.ok(Buffer.isBuffer(b), 'a data section');
  return b;
}

async function rejectsWith(p: Promise<unknown>, kind: SinkError['kind'], message?: RegExp): Promise<SinkError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof SinkError, `a SinkError, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('routing endpoint sinks through the unmodified Event Hubs, Service Bus and Blob SDKs', () => {
  let t: TestHub;
  let caPem: string;
  let factory: EndpointSinkFactory;
  let ehRoot: string;
  let sbRoot: string;
  let storageCs: string;
  let blobs: BlobServiceClient;
  let hubId: string;
  let clock = new Date('2026-03-04T05:06:30Z');

  const key = (connectionString: string): EgressCredential => ({ kind: 'key', connectionString });
  const context = (credential: EgressCredential): SinkContext => ({ hubName: t.hub.config.hubName, credential, minBatchFrequencySeconds: 1 });
  const container = (name: string): ContainerClient => blobs.getContainerClient(name);
  const namespaceId = (provider: 'EventHub' | 'ServiceBus', name: string) => {
    const m = t.hub.identity.tenancy;
    return `/subscriptions/${m.subscriptionId}/resourceGroups/${m.defaultResourceGroup}/providers/Microsoft.${provider}/namespaces/${name}`;
  };
  /** A data role for `principalId` at `scope`, straight into the store ARM writes (ARM's own path is test/namespaces.aad.sdk.test.ts's). */
  const assignRole = async (role: string, scope: string, principalId: string): Promise<string> => {
    const roleDefinitionId = `/subscriptions/${t.hub.identity.tenancy.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${findRole(role)!.id}`;
    return (await t.hub.identity.roleAssignments.create({ name: randomUUID(), scope, roleDefinitionId, principalId, principalType: 'ServicePrincipal' })).id;
  };
  async function blobNames(c: string): Promise<string[]> {
    const names: string[] = [];
    for await (const b of container(c).listBlobsFlat()) names.push(b.name);
    return names.sort();
  }

  before(async () => {
    t = await startTestHub({
      ports: { storage: 10000 } as any,
      serviceBusTimerMs: 50,
      eventHubsNamespaces: [{ name: EH_NS, eventHubs: [{ name: 'telemetry', partitionCount: 4 }, { name: 'bulk', partitionCount: 2 }, { name: 'fleet', partitionCount: 4 }, { name: 'fleet-ref', partitionCount: 4 }, { name: 'by-identity', partitionCount: 1 }] }],
      serviceBusNamespaces: [{ name: SB_NS, queues: [{ name: 'alerts' }], topics: [{ name: 'events', subscriptions: [{ name: 'all' }] }] }],
    } as any);
    caPem = readFileSync(caPaths(process.env.FLEETHUB_TEST_CA_DIR!).cert, 'utf8');
    factory = createEndpointSinkFactory({ caPem, blobStorage: t.hub.blobStorage, now: () => clock });
    ehRoot = (await t.hub.info()).eventHubsNamespaces!.find((n) => n.name === EH_NS)!.connectionString;
    sbRoot = t.hub.serviceBus!.connectionStrings(t.host).find((s) => s.namespace === SB_NS)!.connectionString;
    storageCs = (await t.hub.info()).storageConnectionString;
    blobs = BlobServiceClient.fromConnectionString(storageCs);
    for (const c of ['routed', 'routed-json', 'routed-deflate', 'routed-identity']) await container(c).createIfNotExists();
    hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
  });
  after(async () => {
    await t?.close();
  });

  test('Event Hubs: body as is, typed application properties, IoT Hub system properties as annotations, AMQP properties, device id as partition key', async () => {
    const endpoint: EndpointSettings = { kind: 'eventHubs', name: 'eh', connectionString: `${ehRoot};EntityPath=telemetry` };
    const sink = factory.create(endpoint, context(key(endpoint.connectionString!)));
    assert.equal(sink.batching, undefined, 'Event Hubs sinks do not batch by time');
    const when = new Date('2026-01-02T03:04:05.678Z');
    const messages = [
      routed('dev-a', '{"t":1}', { properties: { colour: 'red', count: 7, ratio: 0.5, ok: true, when, raw: Buffer.from([1, 2]), big: { type: 'long', value: 1234567890123 } } }),
      routed('dev-b', 'b-1'),
      routed('dev-a', '{"t":2}'),
      routed('dev-b', 'b-2'),
      routed('dev-a', Buffer.from([0, 255, 1])),
    ];
    await sink.deliver(messages);
    await sink.close();
    const got = await readEventHub(ehRoot, 'telemetry', 5);
    assert.equal(got.length, 5);
    const first = got.find((e) => e.messageId === messages[0]!.systemProperties['message-id'])!;
    assert.ok(first, 'found by message id');
    assert.deepEqual(bytesOf(first.getRawAmqpMessage().body), Buffer.from('{"t":1}'), 'the body is the bytes sent, one data section');
    assert.deepEqual(first.body, { t: 1 }, 'the SDK reads JSON bodies as JSON');
    assert.equal(first.getRawAmqpMessage().bodyType, 'data');
    assert.equal(first.correlationId, messages[0]!.systemProperties['correlation-id']);
    assert.equal(first.contentType, 'application/json');
    assert.equal(first.getRawAmqpMessage().properties!.contentEncoding, 'utf-8');
    const app = first.getRawAmqpMessage().applicationProperties!;
    assert.equal(app.colour, 'red');
    assert.equal(app.count, 7);
    assert.equal(app.ratio, 0.5);
    assert.equal(app.ok, true);
    assert.ok(Buffer.isBuffer(app.raw) && (app.raw as Buffer).equals(Buffer.from([1, 2])), 'binary stays binary');
    assert.equal(Number(app.big), 1234567890123);
    assert.equal(new Date(app.when as any).getTime(), when.getTime(), 'a timestamp stays a timestamp');
    const annotations = first.getRawAmqpMessage().messageAnnotations!;
    assert.equal(annotations['iothub-connection-device-id'], 'dev-a');
    assert.equal(annotations['iothub-message-source'], 'Telemetry');
    assert.equal(annotations['iothub-connection-auth-generation-id'], '638000000000000000');
    assert.match(String(annotations['iothub-connection-auth-method']), /"type":"sas"/);
    assert.equal(new Date(annotations['iothub-enqueuedtime'] as any).getTime(), messages[0]!.enqueuedTime, 'iothub-enqueuedtime is an AMQP timestamp');
    assert.equal(first.systemProperties!['iothub-connection-device-id'], 'dev-a', "the SDK's systemProperties show IoT Hub's annotations");
    assert.equal(first.properties!['iothub-connection-device-id'], undefined, 'system properties are not application properties');
    // Each device's messages: one partition, keyed by the device id, in order.
    for (const device of ['dev-a', 'dev-b']) {
      const mine = got.filter((e) => e.systemProperties!['iothub-connection-device-id'] === device);
      assert.equal(new Set(mine.map((e) => e.partitionId)).size, 1, `${device}: one partition`);
      assert.ok(mine.every((e) => e.partitionKey === device), `${device}: partition key is the device id`);
      const expected = messages.filter((m) => m.systemProperties['iothub-connection-device-id'] === device).map((m) => m.systemProperties['message-id']);
      const inPartitionOrder = mine.sort((x, y) => x.sequenceNumber - y.sequenceNumber).map((e) => e.messageId);
      assert.deepEqual(inPartitionOrder, expected, `${device}: in order`);
    }
  });

  test('Event Hubs: many devices in one delivery: each message where a send keyed by its device id lands, with that partitionKey, each device in order', async () => {
    const endpoint: EndpointSettings = { kind: 'eventHubs', name: 'fleet', connectionString: `${ehRoot};EntityPath=fleet` };
    const sink = factory.create(endpoint, context(key(endpoint.connectionString!)));
    const devices = Array.from({ length: 40 }, (_, i) => `fleet-dev-${i}`);
    const messages = [0, 1, 2].flatMap((round) => devices.map((d) => routed(d, `${d}:${round}`)));
    messages.push({ ...routed('x', 'no device'), systemProperties: { 'message-id': 'no-device' } });
    await sink.deliver(messages);
    await sink.close();
    // Where the unmodified producer's keyed sends put each device: the reference.
    const producer = new EventHubProducerClient(ehRoot, 'fleet-ref');
    for (const d of devices) await producer.sendBatch([{ body: d }], { partitionKey: d });
    await producer.close();
    const reference = new Map((await readEventHub(ehRoot, 'fleet-ref', devices.length)).map((e) => [e.body as string, e.partitionId]));
    const got = await readEventHub(ehRoot, 'fleet', messages.length);
    assert.equal(got.length, messages.length);
    assert.ok(got.some((e) => e.messageId === 'no-device' && e.partitionKey === undefined), 'a message without a device goes without a partition key');
    for (const d of devices) {
      const mine = got.filter((e) => e.systemProperties!['iothub-connection-device-id'] === d);
      assert.equal(mine.length, 3);
      assert.deepEqual(new Set(mine.map((e) => e.partitionId)), new Set([reference.get(d)]), `${d}: the partition its id hashes to`);
      assert.ok(mine.every((e) => e.partitionKey === d), `${d}: partition key is the device id`);
      assert.deepEqual(mine.sort((x, y) => x.sequenceNumber - y.sequenceNumber).map((e) => bytesOf(e.getRawAmqpMessage().body).toString()), [0, 1, 2].map((r) => `${d}:${r}`), `${d}: in order`);
    }
  });

  test('Event Hubs: many messages split into as many batches as the event hub takes, all delivered in order; too large a message is invalid and sends nothing', async () => {
    const endpoint: EndpointSettings = { kind: 'eventHubs', name: 'bulk', connectionString: `${ehRoot};EntityPath=bulk` };
    const sink = factory.create(endpoint, context(key(endpoint.connectionString!)));
    const body = Buffer.alloc(8 * 1024, 0x61);
    const messages = Array.from({ length: 160 }, (_, i) => routed('bulk-dev', Buffer.concat([Buffer.from(`${i}:`), body])));
    await sink.deliver(messages);
    const huge = [routed('bulk-dev', 'fits'), routed('bulk-dev', Buffer.alloc(1024 * 1024 + 10))];
    await rejectsWith(sink.deliver(huge), 'invalid', /larger than the event hub accepts/);
    await sink.close();
    const got = await readEventHub(ehRoot, 'bulk', 160);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, 160, '1.3 MB in batches of at most 1 MB, nothing of the refused delivery');
    assert.deepEqual(got.sort((a, b) => a.sequenceNumber - b.sequenceNumber).map((e) => e.messageId), messages.map((m) => m.systemProperties['message-id']));
  });

  test('Event Hubs failures: a wrong key is unauthorized, a missing event hub notFound; the error names the target, never the key', async () => {
    const wrong = ehRoot.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`) + ';EntityPath=telemetry';
    const badKey = factory.create({ kind: 'eventHubs', name: 'eh-bad' }, context(key(wrong)));
    const e = await rejectsWith(badKey.deliver([routed('d', 'x')]), 'unauthorized', /event hub 'telemetry'/);
    assert.ok(!e.message.includes(Buffer.alloc(32, 7).toString('base64')), 'no key in the message');
    await badKey.close();
    const missing = factory.create({ kind: 'eventHubs', name: 'eh-missing' }, context(key(`${ehRoot};EntityPath=nosuchhub`)));
    await rejectsWith(missing.deliver([routed('d', 'x')]), 'notFound');
    await missing.close();
  });

  test("a connection string with the AMQP port (as listKeys gives it when ports.amqp is not 5671) still reaches the namespace: the WebSocket goes to the HTTPS port the factory is given", async () => {
    const withPort = `${ehRoot.replace(/Endpoint=sb:\/\/([^/;:]+)\/?/, 'Endpoint=sb://$1:5671/')};EntityPath=bulk`;
    assert.match(withPort, /:5671\//);
    const sink = factory.create({ kind: 'eventHubs', name: 'eh-port' }, context(key(withPort)));
    await sink.deliver([routed('port-dev', 'via the https port')]);
    await sink.close();
    const wrongPort = createEndpointSinkFactory({ caPem, blobStorage: t.hub.blobStorage, webSocketPort: () => 5671 });
    const refused = wrongPort.create({ kind: 'eventHubs', name: 'eh-port2' }, context(key(withPort)));
    await rejectsWith(refused.deliver([routed('port-dev', 'x')]), 'transient');
    await refused.close();
  });

  test("TLS: the sink trusts the CA it is given (Fleethub's): with another CA it cannot reach the local namespace", async () => {
    const foreign = createEndpointSinkFactory({ caPem: rootCertificates[0]!, blobStorage: t.hub.blobStorage });
    const sink = foreign.create({ kind: 'eventHubs', name: 'eh-tls' }, context(key(`${ehRoot};EntityPath=telemetry`)));
    const e = await rejectsWith(sink.deliver([routed('d', 'x')]), 'transient');
    assert.match(e.message, /certificate|self.signed|verify/i);
    await sink.close();
  });

  test('Event Hubs identityBased: endpointUri sb://{ns}.servicebus.{hubDomain} + entityPath with the hub identity token; unauthorized without a data role', async () => {
    const system = (await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [] })).systemAssigned!;
    const credential = await t.hub.identity.egress.forConnection(hubId, { authenticationType: 'identityBased' });
    const endpoint: EndpointSettings = { kind: 'eventHubs', name: 'eh-id', authenticationType: 'identityBased', endpointUri: `sb://${EH_NS}.servicebus.${t.hub.config.hubDomain}`, entityPath: 'by-identity' };
    const refused = factory.create(endpoint, context(credential));
    const err = await rejectsWith(refused.deliver([routed('id-dev', 'no role')]), 'unauthorized', /event hub 'by-identity'/);
    assert.ok(err.message.includes(system.principalId), `names the principal: ${err.message}`);
    await refused.close();
    const role = await assignRole('Azure Event Hubs Data Sender', `${namespaceId('EventHub', EH_NS)}/eventhubs/by-identity`, system.principalId);
    const sink = factory.create(endpoint, context(credential));
    try {
      await sink.deliver([routed('id-dev', 'by identity')]);
    } finally {
      await sink.close();
      await t.hub.identity.roleAssignments.delete(role);
    }
    const [e] = await readEventHub(ehRoot, 'by-identity', 1);
    assert.equal(e?.systemProperties!['iothub-connection-device-id'], 'id-dev');
  });

  test('Service Bus queue and topic: body, message id, correlation id, content type; application and IoT Hub system properties as application properties', async () => {
    const client = new ServiceBusClient(sbRoot);
    try {
      for (const entity of ['alerts', 'events'] as const) {
        const kind = entity === 'alerts' ? 'serviceBusQueues' : 'serviceBusTopics';
        const endpoint: EndpointSettings = { kind, name: `sb-${entity}`, connectionString: `${sbRoot};EntityPath=${entity}` };
        const sink = factory.create(endpoint, context(key(endpoint.connectionString!)));
        const messages = [routed('dev-q', '{"n":1}', { properties: { level: 'high', n: 3 } }), routed('dev-q', '{"n":2}'), routed('dev-r', Buffer.from([9, 8, 7]))];
        await sink.deliver(messages);
        await sink.close();
        const receiver = entity === 'alerts' ? client.createReceiver('alerts', { receiveMode: 'receiveAndDelete' }) : client.createReceiver('events', 'all', { receiveMode: 'receiveAndDelete' });
        const got = await receiveAll(receiver, 3);
        await receiver.close();
        assert.equal(got.length, 3, entity);
        assert.deepEqual(got.map((m) => m.messageId), messages.map((m) => m.systemProperties['message-id']), `${entity}: in order`);
        const [m] = got;
        assert.deepEqual(bytesOf((m as any)._rawAmqpMessage.body), Buffer.from('{"n":1}'), 'the body is the bytes sent');
        assert.deepEqual(m!.body, { n: 1 });
        assert.equal(m!.correlationId, messages[0]!.systemProperties['correlation-id']);
        assert.equal(m!.contentType, 'application/json');
        assert.equal(m!.applicationProperties!.level, 'high');
        assert.equal(m!.applicationProperties!.n, 3);
        assert.equal(m!.applicationProperties!['iothub-connection-device-id'], 'dev-q');
        assert.equal(m!.applicationProperties!['iothub-message-source'], 'Telemetry');
        assert.equal(new Date(m!.applicationProperties!['iothub-enqueuedtime'] as any).getTime(), messages[0]!.enqueuedTime);
        assert.deepEqual(bytesOf(got[2]!.body), Buffer.from([9, 8, 7]), 'binary body as is');
      }
    } finally {
      await client.close();
    }
  });

  test('Service Bus failures: wrong key unauthorized, missing queue notFound, a message over 256 KB invalid', async () => {
    const wrong = sbRoot.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`) + ';EntityPath=alerts';
    const bad = factory.create({ kind: 'serviceBusQueues', name: 'sb-bad' }, context(key(wrong)));
    const e = await rejectsWith(bad.deliver([routed('d', 'x')]), 'unauthorized', /queue 'alerts'/);
    assert.ok(!e.message.includes(Buffer.alloc(32, 9).toString('base64')));
    await bad.close();
    const missing = factory.create({ kind: 'serviceBusQueues', name: 'sb-missing' }, context(key(`${sbRoot};EntityPath=nosuchqueue`)));
    await rejectsWith(missing.deliver([routed('d', 'x')]), 'notFound');
    await missing.close();
    const ok = factory.create({ kind: 'serviceBusTopics', name: 'sb-big' }, context(key(`${sbRoot};EntityPath=events`)));
    await rejectsWith(ok.deliver([routed('d', 'small'), routed('d', Buffer.alloc(300 * 1024))]), 'invalid');
    await ok.close();
    const client = new ServiceBusClient(sbRoot);
    const receiver = client.createReceiver('events', 'all', { receiveMode: 'receiveAndDelete' });
    assert.equal((await receiveAll(receiver, 1, 800)).length, 0, 'nothing of a refused delivery was sent');
    await receiver.close();
    await client.close();
  });

  test('Storage (Avro, the default): one blob per hub partition named by the default format; Avro container files in IoT Hub schema; a second batch in the same minute gets a new blob', async () => {
    const endpoint: EndpointSettings = { kind: 'storageContainers', name: 'st', connectionString: storageCs, containerName: 'routed', batchFrequencyInSeconds: 60, maxChunkSizeInBytes: 10 * 1024 * 1024 };
    const sink = factory.create(endpoint, { ...context(key(storageCs)), minBatchFrequencySeconds: 1 });
    assert.deepEqual(sink.batching, { frequencyMs: 60_000, maxBytes: 10 * 1024 * 1024 });
    assert.deepEqual(factory.create({ ...endpoint, batchFrequencyInSeconds: 5 }, { ...context(key(storageCs)), minBatchFrequencySeconds: 30 }).batching!.frequencyMs, 30_000, 'never below the minimum');
    clock = new Date('2026-03-04T05:06:30Z');
    const first = [routed('d0', '{"a":1}', { partition: 0, properties: { k: 'v', n: 2 } }), routed('d1', 'p1', { partition: 1 }), routed('d0', Buffer.from([0, 1, 2]), { partition: 0 })];
    await sink.deliver(first);
    const hub = t.hub.config.hubName;
    assert.deepEqual(await blobNames('routed'), [`${hub}/00/2026/03/04/05/06`, `${hub}/01/2026/03/04/05/06`]);
    const p0 = await decodeAvro(await container('routed').getBlobClient(`${hub}/00/2026/03/04/05/06`).downloadToBuffer());
    assert.equal(p0.codec, 'null');
    assert.deepEqual(p0.schema, avro.Type.forSchema(MESSAGE_SCHEMA as any).schema(), "IoT Hub's schema");
    assert.equal(p0.records.length, 2);
    const [r] = p0.records;
    assert.equal(r.EnqueuedTimeUtc, '2026-03-04T05:06:07.0890000Z'.replace('089', String(first[0]!.enqueuedTime % 1000).padStart(3, '0')));
    assert.deepEqual(r.Properties, { k: 'v', n: '2' });
    assert.equal(r.SystemProperties.connectionDeviceId, 'd0');
    assert.equal(r.SystemProperties.messageId, first[0]!.systemProperties['message-id']);
    assert.equal(r.SystemProperties.contentType, 'application/json');
    assert.equal(r.SystemProperties.contentEncoding, 'utf-8');
    assert.ok(r.SystemProperties.enqueuedTime.startsWith('2026-03-04T05:06:07'));
    assert.deepEqual(r.Body, Buffer.from('{"a":1}'));
    assert.deepEqual(p0.records[1].Body, Buffer.from([0, 1, 2]));
    // The same minute again: earlier data stays, the new batch gets its own blob.
    clock = new Date('2026-03-04T05:06:50Z');
    await sink.deliver([routed('d0', 'later', { partition: 0 })]);
    assert.deepEqual(await blobNames('routed'), [`${hub}/00/2026/03/04/05/06`, `${hub}/00/2026/03/04/05/06_1`, `${hub}/01/2026/03/04/05/06`]);
    assert.equal((await decodeAvro(await container('routed').getBlobClient(`${hub}/00/2026/03/04/05/06`).downloadToBuffer())).records.length, 2, 'not overwritten');
    const later = await decodeAvro(await container('routed').getBlobClient(`${hub}/00/2026/03/04/05/06_1`).downloadToBuffer());
    assert.deepEqual(later.records.map((x) => x.Body.toString()), ['later']);
    await sink.close();
  });

  test('Storage: avroDeflate and json encodings, a custom file name format', async () => {
    clock = new Date('2026-12-31T23:59:01Z');
    const deflate = factory.create({ kind: 'storageContainers', name: 'st-d', containerName: 'routed-deflate', encoding: 'avroDeflate', fileNameFormat: '{YYYY}-{MM}-{DD}/{HH}{mm}/{iothub}-{partition}.avro' }, context(key(storageCs)));
    const big = 'x'.repeat(5000);
    await deflate.deliver([routed('d', big, { partition: 3 })]);
    const name = `2026-12-31/2359/${t.hub.config.hubName}-03.avro`;
    assert.deepEqual(await blobNames('routed-deflate'), [name]);
    const data = await container('routed-deflate').getBlobClient(name).downloadToBuffer();
    assert.ok(data.length < 2000, 'compressed');
    const decoded = await decodeAvro(data);
    assert.equal(decoded.codec, 'deflate');
    assert.equal(decoded.records[0].Body.toString(), big);
    await deflate.deliver([routed('d', 'again', { partition: 3 })]);
    assert.deepEqual(await blobNames('routed-deflate'), [`2026-12-31/2359/${t.hub.config.hubName}-03.avro`, `2026-12-31/2359/${t.hub.config.hubName}-03_1.avro`], 'the suffix goes before the extension');

    const json = factory.create({ kind: 'storageContainers', name: 'st-j', containerName: 'routed-json', encoding: 'JSON' }, context(key(storageCs)));
    await json.deliver([routed('d', '{"temp":21.5}', { properties: { p: 'q' } }), routed('d', 'not json'), routed('d', 'plain', { system: { 'content-type': 'text/plain' } })]);
    const [blob] = await blobNames('routed-json');
    const lines = (await container('routed-json').getBlobClient(blob!).downloadToBuffer()).toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.deepEqual(lines[0].Body, { temp: 21.5 }, 'JSON body as JSON');
    assert.deepEqual(lines[0].Properties, { p: 'q' });
    assert.equal(lines[0].SystemProperties.connectionDeviceId, 'd');
    assert.equal(Buffer.from(lines[1].Body, 'base64').toString(), 'not json', 'unparsable: base64');
    assert.equal(Buffer.from(lines[2].Body, 'base64').toString(), 'plain', 'not application/json: base64');
    await json.close();
    await deflate.close();
  });

  test("Storage identityBased: the hub's identity writes through endpointUri", async () => {
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [] });
    const credential = await t.hub.identity.egress.forConnection(hubId, { authenticationType: 'identityBased' });
    const endpointUri = /BlobEndpoint=([^;]+)/.exec(storageCs)![1]!;
    clock = new Date('2026-03-04T08:00:00Z');
    const sink = factory.create({ kind: 'storageContainers', name: 'st-id', authenticationType: 'identityBased', endpointUri, containerName: 'routed-identity' }, context(credential));
    await sink.deliver([routed('d', 'by identity')]);
    const names = await blobNames('routed-identity');
    assert.equal(names.length, 1);
    const { records } = await decodeAvro(await container('routed-identity').getBlobClient(names[0]!).downloadToBuffer());
    assert.equal(records[0].Body.toString(), 'by identity');
    // The identity turned off: its credential gets no token, the endpoint is unauthorized.
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: [] });
    clock = new Date('2026-03-04T08:01:00Z');
    await rejectsWith(factory.create({ kind: 'storageContainers', name: 'st-id2', authenticationType: 'identityBased', endpointUri, containerName: 'routed-identity' }, context(credential)).deliver([routed('d', 'no')]), 'unauthorized', /endpoint 'st-id2'/);
    assert.equal((await blobNames('routed-identity')).length, 1);
    await sink.close();
  });

  test('Service Bus identityBased: endpointUri sb://{ns}.servicebus.{hubDomain} + entityPath with the hub identity token; unauthorized without a data role', async () => {
    const system = (await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [] })).systemAssigned!;
    const credential = await t.hub.identity.egress.forConnection(hubId, { authenticationType: 'identityBased' });
    const endpoint: EndpointSettings = { kind: 'serviceBusQueues', name: 'sb-id', authenticationType: 'identityBased', endpointUri: `sb://${SB_NS}.servicebus.${t.hub.config.hubDomain}/`, entityPath: 'alerts' };
    const refused = factory.create(endpoint, context(credential));
    const e = await rejectsWith(refused.deliver([routed('id-dev', 'no role')]), 'unauthorized', /queue 'alerts'/);
    assert.ok(e.message.includes(system.principalId), `names the principal: ${e.message}`);
    await refused.close();
    const role = await assignRole('Azure Service Bus Data Sender', `${namespaceId('ServiceBus', SB_NS)}/queues/alerts`, system.principalId);
    const sink = factory.create(endpoint, context(credential));
    try {
      await sink.deliver([routed('id-dev', 'by identity')]);
    } finally {
      await sink.close();
      await t.hub.identity.roleAssignments.delete(role);
    }
    const client = new ServiceBusClient(sbRoot);
    const receiver = client.createReceiver('alerts', { receiveMode: 'receiveAndDelete' });
    const [m] = await receiveAll(receiver, 1);
    await receiver.close();
    await client.close();
    assert.equal(m?.applicationProperties!['iothub-connection-device-id'], 'id-dev');
  });

  test('Storage failures: wrong key unauthorized, missing container notFound, bad settings invalid; nothing written', async () => {
    const wrongCs = storageCs.replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.alloc(64, 3).toString('base64')}`);
    const bad = factory.create({ kind: 'storageContainers', name: 'st-bad', containerName: 'routed' }, context(key(wrongCs)));
    const before = await blobNames('routed');
    const e = await rejectsWith(bad.deliver([routed('d', 'x')]), 'unauthorized', /container 'routed'/);
    assert.ok(!e.message.includes(Buffer.alloc(64, 3).toString('base64')));
    const missing = factory.create({ kind: 'storageContainers', name: 'st-missing', containerName: 'nosuchcontainer' }, context(key(storageCs)));
    await rejectsWith(missing.deliver([routed('d', 'x')]), 'notFound');
    const badFormat = factory.create({ kind: 'storageContainers', name: 'st-f', containerName: 'routed', fileNameFormat: '{iothub}/{YYYY}' }, context(key(storageCs)));
    await rejectsWith(badFormat.deliver([routed('d', 'x')]), 'invalid', /\{partition\}/);
    const badEncoding = factory.create({ kind: 'storageContainers', name: 'st-e', containerName: 'routed', encoding: 'csv' }, context(key(storageCs)));
    await rejectsWith(badEncoding.deliver([routed('d', 'x')]), 'invalid', /encoding/);
    assert.deepEqual(await blobNames('routed'), before);
    // Storage's TLS trusts the CA its blob clients were made with (Fleethub's, in the hub).
    const foreign = createEndpointSinkFactory({ caPem: rootCertificates[0]!, blobStorage: new AzureBlobStorage(rootCertificates[0]!) });
    const tls = await rejectsWith(foreign.create({ kind: 'storageContainers', name: 'st-tls', containerName: 'routed' }, context(key(storageCs))).deliver([routed('d', 'x')]), 'transient');
    assert.match(tls.message, /certificate|self.signed|verify/i);
  });

  test("transport: Azure's namespaces over AMQP/TLS (system CAs), other hosts over WebSocket trusting Fleethub's CA, emulator strings as they are", () => {
    const opts = (cs: string) => amqpClientOptions(amqpTarget({ kind: 'eventHubs', name: 'x' }, context(key(cs))), caPem);
    assert.equal(opts('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=h').webSocketOptions, undefined);
    assert.equal(opts('Endpoint=sb://localhost;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=h;UseDevelopmentEmulator=true').webSocketOptions, undefined);
    const local = opts(`Endpoint=sb://${t.host}/;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=h`).webSocketOptions as { webSocketConstructorOptions: { ca: string[] } };
    assert.ok(local.webSocketConstructorOptions.ca.includes(caPem));
    assert.throws(() => amqpTarget({ kind: 'eventHubs', name: 'x' }, context(key('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v'))), /EntityPath/);
  });

  test('error messages lose keys, signatures and tokens', () => {
    const text = scrubSecrets('Endpoint=sb://x/;SharedAccessKeyName=a;SharedAccessKey=c2VjcmV0; https://acct/c/b?sv=1&sig=abc%2Bdef&se=2 Bearer eyJhbGciOi.eyJzdWIiOi.c2ln AccountKey=a2V5;');
    assert.doesNotMatch(text, /c2VjcmV0|abc%2Bdef|eyJhbGciOi|a2V5/);
    assert.match(text, /SharedAccessKeyName=a/);
  });

  test('fileNameFormat validation: every token once, no unknown tokens', () => {
    assert.equal(fileNameFormatError('{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}'), undefined);
    assert.equal(fileNameFormatError('x/{mm}{HH}{DD}{MM}{YYYY}-{partition}_{iothub}.json'), undefined, 'any order, any literals');
    assert.match(fileNameFormatError('{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}')!, /\{mm\}/);
    assert.match(fileNameFormatError('{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}/{mm}')!, /exactly once/);
    assert.match(fileNameFormatError('{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}/{ss}')!, /unknown token '\{ss\}'/);
    assert.match(fileNameFormatError('')!, /empty/);
  });
});
