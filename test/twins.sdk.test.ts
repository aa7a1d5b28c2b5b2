import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { sdkError } from './support/sdk.js';

const { Registry } = iothub;

describe('device and module twins through the unmodified azure-iothub Registry and Twin', () => {
  let t: TestHub;
  let registry: iothub.Registry;

  before(async () => {
    t = await startTestHub();
    registry = Registry.fromConnectionString(await t.connectionString());
  });
  after(() => t.close());

  test('a new device has a twin with IoT Hub’s shape', async () => {
    await registry.create({ deviceId: 'fresh' });
    const { responseBody: twin } = await registry.getTwin('fresh');
    const doc = JSON.parse(JSON.stringify(twin));
    assert.equal(doc.deviceId, 'fresh');
    assert.equal(doc.etag, 'AAAAAAAAAAE=');
    assert.equal(doc.version, 1);
    assert.equal(doc.status, 'enabled');
    assert.equal(doc.connectionState, 'Disconnected');
    assert.equal(doc.authenticationType, 'sas');
    assert.deepEqual(doc.x509Thumbprint, { primaryThumbprint: null, secondaryThumbprint: null });
    assert.deepEqual(doc.capabilities, { iotEdge: false });
    for (const section of ['desired', 'reported']) {
      assert.equal(doc.properties[section].$version, 1);
      assert.match(doc.properties[section].$metadata.$lastUpdated, /^\d{4}-\d\d-\d\dT/);
    }
    await assert.rejects(registry.getTwin('nobody'), sdkError('DeviceNotFoundError'));
  });

  test('Twin.update merges tags and desired properties, stamps $metadata and bumps versions and etag', async () => {
    await registry.create({ deviceId: 'thermo' });
    const { responseBody: twin } = await registry.getTwin('thermo');
    await twin.update({ tags: { location: { building: 43, floor: 1 } }, properties: { desired: { telemetry: { interval: 5 } } } });
    assert.equal(twin.etag, 'AAAAAAAAAAI=');
    await twin.update({ tags: { location: { floor: 2 } }, properties: { desired: { mode: 'eco' } } });

    const { responseBody: got } = await registry.getTwin('thermo');
    const doc = JSON.parse(JSON.stringify(got));
    assert.deepEqual(doc.tags, { location: { building: 43, floor: 2 } });
    assert.equal(doc.version, 3);
    assert.equal(doc.etag, got.etag);
    const desired = doc.properties.desired;
    assert.equal(desired.$version, 3);
    assert.deepEqual(desired.telemetry, { interval: 5 });
    assert.equal(desired.mode, 'eco');
    assert.equal(desired.$metadata.telemetry.interval.$lastUpdatedVersion, 2);
    assert.equal(desired.$metadata.mode.$lastUpdatedVersion, 3);
    assert.ok(desired.$metadata.mode.$lastUpdated >= desired.$metadata.telemetry.$lastUpdated);
    assert.equal(doc.properties.reported.$version, 1, 'the service does not touch reported properties');
  });

  test('null removes a property (and its metadata)', async () => {
    await registry.create({ deviceId: 'nuller' });
    const { responseBody: twin } = await registry.getTwin('nuller');
    await twin.update({ tags: { a: 1, b: { c: 2 } }, properties: { desired: { x: 1, y: { z: 2, w: 3 } } } });
    await twin.update({ tags: { a: null }, properties: { desired: { x: null, y: { z: null } } } });
    const doc = JSON.parse(JSON.stringify((await registry.getTwin('nuller')).responseBody));
    assert.deepEqual(doc.tags, { b: { c: 2 } });
    assert.equal(doc.properties.desired.x, undefined);
    assert.deepEqual(doc.properties.desired.y, { w: 3 });
    assert.equal(doc.properties.desired.$metadata.x, undefined);
    assert.equal(doc.properties.desired.$metadata.y.z, undefined);
    assert.ok(doc.properties.desired.$metadata.y.w);
  });

  test('a stale etag raises InvalidEtagError and changes nothing; * and no If-Match update unconditionally', async () => {
    await registry.create({ deviceId: 'etags' });
    const { responseBody: first } = await registry.getTwin('etags');
    const { responseBody: second } = await registry.getTwin('etags');
    await first.update({ tags: { owner: 'alice' } });
    await assert.rejects(second.update({ tags: { owner: 'bob' } }), sdkError('InvalidEtagError'));
    assert.deepEqual((await registry.getTwin('etags')).responseBody.tags, { owner: 'alice' });

    await registry.updateTwin('etags', { tags: { owner: 'carol' } }, '*');
    assert.deepEqual((await registry.getTwin('etags')).responseBody.tags, { owner: 'carol' });
    const token = await serviceToken(t);
    const res = await rawRequest(t.host, 'PATCH', '/twins/etags?api-version=2021-04-12', {
      headers: { authorization: token, 'content-type': 'application/json' },
      body: JSON.stringify({ tags: { owner: 'dave' } }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.etag, `"${res.json.etag}"`);
    assert.deepEqual(res.json.tags, { owner: 'dave' });
  });

  test('invalid patches are refused with ArgumentError and leave the twin unchanged', async () => {
    await registry.create({ deviceId: 'strict' });
    const { responseBody: twin } = await registry.getTwin('strict');
    await twin.update({ tags: { keep: 'me' }, properties: { desired: { keep: 1 } } });
    const before = JSON.stringify((await registry.getTwin('strict')).responseBody.toJSON());
    let deep: any = { leaf: 1 };
    for (let i = 0; i < 11; i++) deep = { level: deep };
    const bad: any[] = [
      { tags: { 'has.dot': 1 } },
      { tags: { 'has space': 1 } },
      { properties: { desired: { $reserved: 1 } } },
      { properties: { desired: { keep: 2, 'bad\u0001key': 1 } } },
      { properties: { desired: { deep } } },
      { properties: { desired: { long: 'x'.repeat(4097) } } },
      { tags: Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`k${i}`, 'v'.repeat(3000)])) },
      { properties: { desired: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v'.repeat(4000)])) } },
      { properties: { reported: { sneaky: true } } },
      { tags: 'not an object' },
    ];
    for (const patch of bad) {
      await assert.rejects(registry.updateTwin('strict', patch, '*'), sdkError('ArgumentError'), JSON.stringify(patch).slice(0, 80));
    }
    assert.equal(JSON.stringify((await registry.getTwin('strict')).responseBody.toJSON()), before);
    // Ten levels are allowed.
    let ten: any = { leaf: 1 };
    for (let i = 0; i < 9; i++) ten = { level: ten };
    await registry.updateTwin('strict', { properties: { desired: { ten } } }, '*');
  });

  test('PUT replaces tags and desired properties', async () => {
    await registry.create({ deviceId: 'replaced' });
    await registry.updateTwin('replaced', { tags: { old: 1 }, properties: { desired: { a: 1, b: 2 } } }, '*');
    const token = await serviceToken(t);
    const etag = (await registry.getTwin('replaced')).responseBody.etag;
    const res = await rawRequest(t.host, 'PUT', '/twins/replaced?api-version=2021-04-12', {
      headers: { authorization: token, 'content-type': 'application/json', 'if-match': `"${etag}"` },
      body: JSON.stringify({ deviceId: 'replaced', etag, tags: { fresh: true }, properties: { desired: { b: 3, $version: 99 } } }),
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.tags, { fresh: true });
    assert.equal(res.json.properties.desired.a, undefined);
    assert.equal(res.json.properties.desired.b, 3);
    assert.equal(res.json.properties.desired.$version, 3);
    // A whole twin as GET returned it can be sent back: read-only parts and reported properties are ignored.
    const whole = await rawRequest(t.host, 'GET', '/twins/replaced?api-version=2021-04-12', { headers: { authorization: token } });
    const back = await rawRequest(t.host, 'PUT', '/twins/replaced?api-version=2021-04-12', {
      headers: { authorization: token, 'content-type': 'application/json' },
      body: JSON.stringify({ ...whole.json, properties: { ...whole.json.properties, reported: { x: 1 } } }),
    });
    assert.equal(back.status, 200, back.text);
    assert.deepEqual(back.json.tags, { fresh: true });
    assert.equal(back.json.properties.reported.x, undefined);
    const stale = await rawRequest(t.host, 'PUT', '/twins/replaced?api-version=2021-04-12', {
      headers: { authorization: token, 'content-type': 'application/json', 'if-match': `"${etag}"` },
      body: JSON.stringify({ tags: {} }),
    });
    assert.equal(stale.status, 412, stale.text);
    assert.equal(stale.headers['iothub-errorcode'], 'PreconditionFailed');
  });

  test('module twins: get, update with etags, deleted with the module and the device', async () => {
    await registry.create({ deviceId: 'gateway' });
    await registry.addModule({ deviceId: 'gateway', moduleId: 'sensor' });
    const { responseBody: twin } = await registry.getModuleTwin('gateway', 'sensor');
    assert.equal(twin.moduleId, 'sensor');
    assert.equal((twin as any).version, 1);
    await twin.update({ tags: { kind: 'temp' }, properties: { desired: { rate: 10 } } });
    const { responseBody: got } = await registry.getModuleTwin('gateway', 'sensor');
    assert.deepEqual(got.tags, { kind: 'temp' });
    assert.equal((got.properties.desired as any).rate, 10);
    await assert.rejects(registry.updateModuleTwin('gateway', 'sensor', { tags: { kind: 'x' } }, 'AAAAAAAAAAE='), sdkError('InvalidEtagError'));
    const deviceTwin = JSON.parse(JSON.stringify((await registry.getTwin('gateway')).responseBody));
    assert.deepEqual(deviceTwin.tags ?? {}, {}, 'module and device twins are separate');

    await registry.removeModule('gateway', 'sensor');
    await assert.rejects(registry.getModuleTwin('gateway', 'sensor'), (e: any) => e.response?.statusCode === 404);
    await registry.addModule({ deviceId: 'gateway', moduleId: 'sensor' });
    assert.equal(((await registry.getModuleTwin('gateway', 'sensor')).responseBody as any).version, 1, 'a re-created module starts a new twin');

    await registry.delete('gateway');
    await assert.rejects(registry.getTwin('gateway'), sdkError('DeviceNotFoundError'));
    await registry.create({ deviceId: 'gateway' });
    const reborn = JSON.parse(JSON.stringify((await registry.getTwin('gateway')).responseBody));
    assert.equal(reborn.version, 1);
    assert.equal((t.hub.store.db.prepare("SELECT COUNT(*) AS n FROM twins WHERE device_id = 'gateway'").get() as { n: number }).n, 1);
  });

  test('concurrent unconditional updates are all applied (no lost update)', async () => {
    await registry.create({ deviceId: 'busy' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => registry.updateTwin('busy', { tags: { [`k${i}`]: i }, properties: { desired: { [`d${i}`]: i } } }, '*')));
    const doc = JSON.parse(JSON.stringify((await registry.getTwin('busy')).responseBody));
    assert.equal(Object.keys(doc.tags).length, 20);
    assert.equal(doc.version, 21);
    assert.equal(doc.properties.desired.$version, 21);
    for (let i = 0; i < 20; i++) assert.equal(doc.properties.desired[`d${i}`], i);
  });

  test('twins survive a restart', async () => {
    await registry.create({ deviceId: 'durable' });
    await registry.updateTwin('durable', { tags: { k: 'v' } }, '*');
    await t.restart();
    // A new client: the old one's kept-alive socket went with the old process.
    registry = Registry.fromConnectionString(await t.connectionString());
    assert.deepEqual((await registry.getTwin('durable')).responseBody.tags, { k: 'v' });
  });

  test('a registryRead policy reads twins but cannot update them', async () => {
    await registry.create({ deviceId: 'readonly' });
    const reader = Registry.fromConnectionString(await t.connectionString('registryRead'));
    await reader.getTwin('readonly');
    await assert.rejects(reader.updateTwin('readonly', { tags: { a: 1 } }, '*'), sdkError('UnauthorizedError'));
  });
});
