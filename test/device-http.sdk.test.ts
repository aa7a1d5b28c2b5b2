import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceHttp from 'azure-iot-device-http';
import common from 'azure-iot-common';
import iothub from 'azure-iothub';
import { rawRequest, startTestHub, type TestHub } from './support/hub.js';
import { createDevice, createModule, eventsOf, eventually } from './support/devices.js';
import { sdkError } from './support/sdk.js';
import { issue, selfSigned, thumbprint, verifyHubCa, type Issued } from './support/x509.js';
import { createSasToken } from '../src/core/sas.js';

const { Client, ModuleClient, Message } = device;
const { Http } = deviceHttp;
const API = 'api-version=2021-04-12';

interface FeedbackRecord {
  originalMessageId: string;
  statusCode: string;
  deviceId: string;
}

/** Polls fast: the Http transport receives cloud-to-device messages on an interval (seconds). */
async function polling(client: device.Client | device.ModuleClient): Promise<void> {
  await client.setOptions({ http: { receivePolicy: { interval: 0.1 } } } as any);
}

describe('the device HTTPS API with the unmodified azure-iot-device Http transport', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let service: iothub.Client;
  before(async () => {
    t = await startTestHub({ cloudToDeviceLockSeconds: 1 });
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    await service.open();
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  const sas = (deviceId: string, key: string, ttlSeconds = 3600, moduleId?: string) =>
    createSasToken(`${t.host}/devices/${deviceId}` + (moduleId ? `/modules/${moduleId}` : ''), key, Math.floor(Date.now() / 1000) + ttlSeconds);

  async function c2d(deviceId: string, body: string, init: { messageId?: string; ack?: string; props?: Record<string, string> } = {}) {
    const m = new common.Message(body);
    if (init.messageId) m.messageId = init.messageId;
    if (init.ack) m.ack = init.ack;
    for (const [k, v] of Object.entries(init.props ?? {})) m.properties.add(k, v);
    await service.send(deviceId, m);
  }

  /** Feedback records for `deviceId`, from the service SDK's feedback receiver, until `count` arrived. */
  async function feedbackFor(deviceId: string, count: number): Promise<FeedbackRecord[]> {
    const client = iothub.Client.fromConnectionString(await t.connectionString('service'));
    const receiver = (await client.getFeedbackReceiver()).result as any;
    const records: FeedbackRecord[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`feedback: got ${records.length} of ${count}`)), 10_000);
        receiver.on('message', (msg: any) => {
          records.push(...(JSON.parse(msg.getData().toString()) as FeedbackRecord[]).filter((r) => r.deviceId === deviceId));
          receiver.complete(msg, () => undefined);
          if (records.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      await client.close();
    }
    return records;
  }

  for (const kind of ['symmetric key', 'SAS token'] as const) {
    test(`${kind}: telemetry with its properties, a zero-length message and a batch reach the built-in endpoint`, async () => {
      const deviceId = `http-d2c-${kind === 'SAS token' ? 'sas' : 'key'}`;
      const { key, connectionString } = await createDevice(t, deviceId);
      const client = kind === 'SAS token' ? Client.fromSharedAccessSignature(sas(deviceId, key), Http) : Client.fromConnectionString(connectionString, Http);
      const m = new Message(JSON.stringify({ temperature: 21.5 }));
      m.messageId = 'mid-1';
      m.correlationId = 'cid-1';
      m.userId = deviceId;
      m.contentType = 'application/json';
      m.contentEncoding = 'utf-8';
      m.properties.add('alert', 'high');
      m.properties.add('unit', 'celsius');
      await client.sendEvent(m);
      await client.sendEvent(new Message(''));
      const batch = [new Message('b1'), new Message(Buffer.from([0, 1, 2, 255]))];
      batch[0]!.properties.add('n', '1');
      await client.sendEventBatch(batch);
      await client.close();

      const events = await eventsOf(t, deviceId);
      assert.equal(events.length, 4);
      const [first, empty, b1, b2] = events;
      assert.deepEqual(JSON.parse(first!.body.toString()), { temperature: 21.5 });
      assert.equal(first!.systemProperties['message-id'], 'mid-1');
      assert.equal(first!.systemProperties['correlation-id'], 'cid-1');
      assert.equal(first!.systemProperties['user-id'], deviceId);
      assert.equal(first!.systemProperties['content-type'], 'application/json');
      assert.equal(first!.systemProperties['content-encoding'], 'utf-8');
      assert.equal(first!.systemProperties['to'], `/devices/${deviceId}/messages/events`);
      assert.equal(first!.systemProperties['iothub-connection-device-id'], deviceId);
      assert.deepEqual(JSON.parse(first!.systemProperties['iothub-connection-auth-method']!), {
        scope: 'device',
        type: 'sas',
        issuer: 'iothub',
        acceptingIpFilterRule: null,
      });
      assert.deepEqual(first!.properties, { alert: 'high', unit: 'celsius' });
      assert.equal(empty!.body.length, 0);
      assert.equal(b1!.body.toString(), 'b1');
      assert.deepEqual(b1!.properties, { n: '1' });
      assert.deepEqual([...b2!.body], [0, 1, 2, 255]);
    });
  }

  test('cloud-to-device messages are received, completed, rejected and abandoned, with feedback', async () => {
    const deviceId = 'http-c2d';
    const { connectionString } = await createDevice(t, deviceId);
    const big = 'x'.repeat(64 * 1024);
    await c2d(deviceId, 'complete me', { messageId: 'm-complete', ack: 'full', props: { colour: 'blue', 'two words': 'a b' } });
    await c2d(deviceId, 'reject me', { messageId: 'm-reject', ack: 'full' });
    await c2d(deviceId, 'abandon me', { messageId: 'm-abandon', ack: 'full' });
    await c2d(deviceId, big, { messageId: 'm-big' });
    await c2d(deviceId, '', { messageId: 'm-empty' });

    const client = Client.fromConnectionString(connectionString, Http);
    const seen: device.Message[] = [];
    let abandoned = 0;
    client.on('message', (m: device.Message) => {
      seen.push(m);
      if (m.messageId === 'm-reject') client.reject(m, () => undefined);
      else if (m.messageId === 'm-abandon' && abandoned++ === 0) client.abandon(m, () => undefined);
      else client.complete(m, () => undefined);
    });
    await polling(client);
    await client.open();
    try {
      await eventually(async () => (await t.hub.cloudToDevice.queueDepth(deviceId)) === 0, 10_000);
    } finally {
      await client.close();
    }
    const ids = seen.map((m) => m.messageId);
    assert.deepEqual(ids.filter((id) => id === 'm-abandon').length, 2, 'abandoned, then delivered again');
    assert.deepEqual([...new Set(ids)].sort(), ['m-abandon', 'm-big', 'm-complete', 'm-empty', 'm-reject']);
    const byId = (id: string) => seen.find((m) => m.messageId === id)!;
    assert.equal(byId('m-complete').getData().toString(), 'complete me');
    assert.equal(byId('m-complete').to, `/devices/${deviceId}/messages/deviceBound`);
    assert.ok(Date.parse(byId('m-complete').expiryTimeUtc as string) > Date.now());
    assert.equal(byId('m-complete').properties.getValue('iothub-app-colour'), 'blue');
    assert.equal(byId('m-complete').properties.getValue('iothub-app-two%20words'), 'a b');
    assert.equal(byId('m-big').getData().toString(), big);
    assert.equal(byId('m-empty').getData().toString(), '');

    const records = await feedbackFor(deviceId, 3);
    const outcome = Object.fromEntries(records.map((r) => [r.originalMessageId, r.statusCode]));
    assert.deepEqual(outcome, { 'm-complete': 'Success', 'm-reject': 'Rejected', 'm-abandon': 'Success' });
  });

  test('a renewed SAS token keeps sending and receiving; a wrong key and an expired token are UnauthorizedError', async () => {
    const deviceId = 'http-renew';
    const { key } = await createDevice(t, deviceId);
    const client = Client.fromSharedAccessSignature(sas(deviceId, key, 2), Http);
    client.setRetryPolicy(new common.NoRetry());
    await client.sendEvent(new Message('before'));
    await client.updateSharedAccessSignature(sas(deviceId, key, 3600));
    await new Promise((r) => setTimeout(r, 2100)); // the first token has expired
    await client.sendEvent(new Message('after'));
    const got = new Promise<device.Message>((resolve) => client.on('message', (m: device.Message) => client.complete(m, () => resolve(m))));
    await polling(client);
    await client.open();
    await c2d(deviceId, 'renewed', { messageId: 'r-1' });
    assert.equal((await got).messageId, 'r-1');
    await client.close();
    assert.deepEqual((await eventsOf(t, deviceId)).map((e) => e.body.toString()), ['before', 'after']);

    const wrongKey = Client.fromSharedAccessSignature(sas(deviceId, Buffer.alloc(32, 7).toString('base64')), Http);
    await assert.rejects(wrongKey.sendEvent(new Message('no')), sdkError('UnauthorizedError'));
    const expired = Client.fromSharedAccessSignature(sas(deviceId, key, -10), Http);
    await assert.rejects(expired.sendEvent(new Message('no')), sdkError('UnauthorizedError'));
    assert.equal((await eventsOf(t, deviceId)).length, 2);
  });

  async function x509Client(deviceId: string, cert: Issued, chainPem = cert.certPem) {
    const client = Client.fromConnectionString(`HostName=${t.host};DeviceId=${deviceId};x509=true`, Http);
    client.setRetryPolicy(new common.NoRetry());
    // Not awaited: the Http transport applies the certificate at once but never calls back for it.
    void client.setOptions({ cert: chainPem, key: cert.keyPem });
    return client;
  }

  test('X.509: a self-signed device sends and receives; a certificate that does not match the thumbprint is UnauthorizedError', async () => {
    const cert = await selfSigned('http-selfie');
    const stranger = await selfSigned('http-selfie');
    await registry.create({ deviceId: 'http-selfie', authentication: { x509Thumbprint: { primaryThumbprint: await thumbprint(cert) } } } as any);
    const client = await x509Client('http-selfie', cert);
    await client.sendEvent(new Message('signed'));
    const got = new Promise<device.Message>((resolve) => client.on('message', (m: device.Message) => client.complete(m, () => resolve(m))));
    await polling(client);
    await client.open();
    await c2d('http-selfie', 'to the cert', { messageId: 'x-1' });
    assert.equal((await got).getData().toString(), 'to the cert');
    await client.close();
    const events = await eventsOf(t, 'http-selfie');
    assert.equal(events.length, 1);
    assert.equal(JSON.parse(events[0]!.systemProperties['iothub-connection-auth-method']!).type, 'x509Certificate');
    await assert.rejects((await x509Client('http-selfie', stranger)).sendEvent(new Message('no')), sdkError('UnauthorizedError'));
    assert.equal((await eventsOf(t, 'http-selfie')).length, 1);
  });

  test('X.509: a CA-signed device sends once its CA is verified', async () => {
    const ca = await selfSigned('Http Root', true);
    const intermediate = await issue(ca, 'Http Intermediate', true);
    const leaf = await issue(intermediate, 'http-ca-device');
    await registry.create({ deviceId: 'http-ca-device', authentication: { type: 'certificateAuthority' } } as any);
    const chain = `${leaf.certPem}\n${intermediate.certPem}\n`;
    await assert.rejects((await x509Client('http-ca-device', leaf, chain)).sendEvent(new Message('early')), sdkError('UnauthorizedError'));
    await verifyHubCa(t, 'http-root', ca);
    await (await x509Client('http-ca-device', leaf, chain)).sendEvent(new Message('ca-signed'));
    assert.deepEqual((await eventsOf(t, 'http-ca-device')).map((e) => e.body.toString()), ['ca-signed']);
  });

  test('a module sends telemetry with ModuleClient over Http', async () => {
    await createDevice(t, 'http-edge');
    const { connectionString } = await createModule(t, 'http-edge', 'sensor');
    const client = ModuleClient.fromConnectionString(connectionString, Http);
    const m = new Message('from the module');
    m.properties.add('k', 'v');
    await client.sendEvent(m);
    await client.close();
    const events = await eventsOf(t, 'http-edge', 'sensor');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.body.toString(), 'from the module');
    assert.deepEqual(events[0]!.properties, { k: 'v' });
    assert.equal(JSON.parse(events[0]!.systemProperties['iothub-connection-auth-method']!).scope, 'module');
    assert.equal((await eventsOf(t, 'http-edge')).length, 0, 'not stamped as the device');
  });

  describe('bad input through raw HTTPS gets IoT Hub errors and changes nothing', () => {
    let key: string;
    let auth: Record<string, string>;
    const id = 'http-raw';
    const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      rawRequest(t.host, 'POST', `/devices/${id}${path}?${API}`, { body, headers: { ...auth, ...headers } });
    const assertError = (res: { status: number; headers: Record<string, unknown>; json: any; text: string }, status: number, code: string) => {
      assert.equal(res.status, status, res.text);
      assert.equal(res.headers['iothub-errorcode'], code);
      assert.match(res.json.Message, new RegExp(`^ErrorCode:${code};`));
    };
    before(async () => {
      ({ key } = await createDevice(t, id));
      auth = { authorization: sas(id, key) };
    });

    test('telemetry: a plain POST answers 204; malformed batches, headers and oversize messages are refused', async () => {
      const ok = await post('/messages/events', 'raw', { 'iothub-app-x': '1', 'iothub-creation-time-utc': '2024-01-01T00:00:00Z' });
      assert.equal(ok.status, 204, ok.text);
      const batchType = { 'content-type': 'application/vnd.microsoft.iothub.json' };
      assertError(await post('/messages/events', '[{"body":', batchType), 400, 'IotHubFormatError');
      assertError(await post('/messages/events', '[]', batchType), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', '{"body":"YQ=="}', batchType), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', '[{"body":"YQ=="},{"body":42}]', batchType), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', '[{"body":"not base64!"}]', batchType), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', '[{"body":"YQ==","properties":{"iothub-app-n":1}}]', batchType), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', 'x', { 'iothub-messageid': 'm'.repeat(129) }), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', 'x', { 'iothub-expiry': 'tomorrow' }), 400, 'ArgumentInvalid');
      assertError(await post('/messages/events', Buffer.alloc(256 * 1024 + 1)), 413, 'MessageTooLarge');
      assertError(await post('/messages/events', Buffer.alloc(600 * 1024)), 413, 'MessageTooLarge');
      const half = Buffer.alloc(130 * 1024).toString('base64');
      assertError(await post('/messages/events', JSON.stringify([{ body: half }, { body: half }]), batchType), 413, 'MessageTooLarge');
      // 240 KB of messages is over 256 KB as base64 JSON, and still a batch IoT Hub takes.
      const fits = Buffer.alloc(120 * 1024, 1).toString('base64');
      const big = await post('/messages/events', JSON.stringify([{ body: fits }, { body: fits, properties: { 'iothub-app-last': 'yes' } }]), batchType);
      assert.equal(big.status, 204, big.text);
      const missingVersion = await rawRequest(t.host, 'POST', `/devices/${id}/messages/events`, { body: 'x', headers: auth });
      assertError(missingVersion, 400, 'InvalidProtocolVersion');
      const events = await eventsOf(t, id);
      assert.deepEqual(events.map((e) => [e.body.length, e.properties]), [[3, { x: '1' }], [120 * 1024, {}], [120 * 1024, { last: 'yes' }]]);
    });

    test('authentication: missing, malformed, another device\'s token, unknown and disabled devices', async () => {
      const before = (await eventsOf(t, id)).length;
      assertError(await post('/messages/events', 'x', { authorization: '' }), 401, 'IotHubUnauthorizedAccess');
      const noAuth = await rawRequest(t.host, 'POST', `/devices/${id}/messages/events?${API}`, { body: 'x' });
      assertError(noAuth, 401, 'IotHubUnauthorizedAccess');
      assertError(await post('/messages/events', 'x', { authorization: 'SharedAccessSignature garbage' }), 401, 'IotHubUnauthorizedAccess');
      const { key: otherKey } = await createDevice(t, 'http-raw-other');
      // A valid token of another device, on this device's path.
      assertError(await post('/messages/events', 'x', { authorization: sas('http-raw-other', otherKey) }), 401, 'IotHubUnauthorizedAccess');
      const ghost = await rawRequest(t.host, 'POST', `/devices/http-ghost/messages/events?${API}`, {
        body: 'x',
        headers: { authorization: sas('http-ghost', otherKey) },
      });
      assertError(ghost, 404, 'DeviceNotFound');
      const { key: offKey } = await createDevice(t, 'http-off', { status: 'disabled' });
      const off = await rawRequest(t.host, 'POST', `/devices/http-off/messages/events?${API}`, { body: 'x', headers: { authorization: sas('http-off', offKey) } });
      assertError(off, 404, 'DeviceNotFound');
      assert.equal((await eventsOf(t, id)).length, before);
      assert.equal((await eventsOf(t, 'http-off')).length, 0);
    });

    test('cloud-to-device: 204 when empty; locks time out; unknown or stale lock tokens are 412 DeviceMessageLockLost', async () => {
      const get = () => rawRequest(t.host, 'GET', `/devices/${id}/messages/deviceBound?${API}`, { headers: auth });
      const empty = await get();
      assert.equal(empty.status, 204);
      await c2d(id, 'locked', { messageId: 'lk-1', ack: 'negative', props: { p: 'v' } });
      const first = await get();
      assert.equal(first.status, 200, first.text);
      assert.equal(first.text, 'locked');
      assert.equal(first.headers['iothub-messageid'], 'lk-1');
      assert.equal(first.headers['iothub-deliverycount'], '0');
      assert.equal(first.headers['iothub-ack'], 'negative');
      assert.equal(first.headers['iothub-app-p'], 'v');
      assert.ok(Number(first.headers['iothub-sequencenumber']) > 0);
      assert.ok(Date.parse(first.headers['iothub-enqueuedtime'] as string) <= Date.now());
      const etag = first.headers['etag'] as string;
      assert.match(etag, /^"[0-9a-f-]{36}"$/);
      assert.equal((await get()).status, 204, 'invisible while locked');

      const del = (lock: string, query = '') => rawRequest(t.host, 'DELETE', `/devices/${id}/messages/devicebound/${lock}?${API}${query}`, { headers: auth });
      assertError(await del('00000000-0000-0000-0000-000000000000'), 412, 'DeviceMessageLockLost');
      const abandonUnknown = await rawRequest(t.host, 'POST', `/devices/${id}/messages/devicebound/nope/abandon?${API}`, { headers: auth });
      assertError(abandonUnknown, 412, 'DeviceMessageLockLost');
      // Another device cannot settle this device's message, even with its own valid token.
      const { key: otherKey } = await createDevice(t, 'http-raw-thief');
      const thief = await rawRequest(t.host, 'DELETE', `/devices/http-raw-thief/messages/devicebound/${etag.slice(1, -1)}?${API}`, {
        headers: { authorization: sas('http-raw-thief', otherKey) },
      });
      assertError(thief, 412, 'DeviceMessageLockLost');
      assert.equal(await t.hub.cloudToDevice.queueDepth(id), 1);

      // The lock (1 s in this hub) times out: delivered again under a new lock; the old one is lost.
      await new Promise((r) => setTimeout(r, 1100));
      const again = await get();
      assert.equal(again.status, 200);
      assert.equal(again.headers['iothub-deliverycount'], '1');
      assert.notEqual(again.headers['etag'], etag);
      assertError(await del(etag.slice(1, -1), '&reject'), 412, 'DeviceMessageLockLost');
      const rejected = await del((again.headers['etag'] as string).slice(1, -1), '&reject');
      assert.equal(rejected.status, 204, rejected.text);
      assert.equal(await t.hub.cloudToDevice.queueDepth(id), 0);
      assert.deepEqual(
        (await feedbackFor(id, 1)).map((r) => [r.originalMessageId, r.statusCode]),
        [['lk-1', 'Rejected']],
      );
    });
  });
});
