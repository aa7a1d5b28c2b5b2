import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';

const { Client } = device;
const { Mqtt } = deviceMqtt;

/** An SDK rejection carrying this HTTP status and IoT Hub error code. */
const hubError = (status: number, code: string) => (e: any): true => {
  assert.equal(e?.response?.statusCode, status, `expected ${status} ${code}, got ${e?.response?.statusCode}: ${e?.message}`);
  assert.equal(e.response.headers['iothub-errorcode'], code);
  return true;
};

const plain = (v: unknown) => JSON.parse(JSON.stringify(v));
const desiredOf = async (registry: iothub.Registry, deviceId: string) => {
  const { $metadata: _m, $version: _v, ...values } = plain((await registry.getTwin(deviceId)).responseBody.properties.desired);
  return values;
};

describe('configurations (automatic device management) with azure-iothub Registry', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  before(async () => {
    t = await startTestHub({ configurations: { evaluationIntervalSeconds: 0.5 } });
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
  });
  after(() => t.close());

  test('create, get, list, update with etags and force, content fixed, remove', async () => {
    const created = (
      await registry.addConfiguration({
        id: 'crud-1',
        content: { deviceContent: { 'properties.desired.crud': { a: 1 } } },
        targetCondition: "tags.crud = 'yes'",
        priority: 5,
        labels: { owner: 'ops' },
        metrics: { queries: { reporting: 'SELECT deviceId FROM devices WHERE properties.reported.ok = true' } },
      } as any)
    ).responseBody as any;
    assert.equal(created.id, 'crud-1');
    assert.equal(created.schemaVersion, '1.0');
    assert.equal(created.priority, 5);
    assert.deepEqual(created.labels, { owner: 'ops' });
    assert.ok(created.etag && created.createdTimeUtc && created.lastUpdatedTimeUtc);
    assert.deepEqual(created.systemMetrics.queries, {
      targetedCount: "select deviceId from devices where tags.crud = 'yes'",
      appliedCount: "select deviceId from devices where configurations.[[crud-1]].status = 'Applied'",
    });
    assert.deepEqual(created.metrics.queries, { reporting: 'SELECT deviceId FROM devices WHERE properties.reported.ok = true' });

    await assert.rejects(registry.addConfiguration({ id: 'crud-1', content: {} } as any), hubError(409, 'ConfigurationAlreadyExists'));

    const got = (await registry.getConfiguration('crud-1')).responseBody as any;
    assert.equal(got.etag, created.etag);
    assert.deepEqual(got.content, { deviceContent: { 'properties.desired.crud': { a: 1 } } });
    const list = (await registry.getConfigurations()).responseBody as any[];
    assert.deepEqual(list.map((c) => c.id), ['crud-1']);

    // Update with the current etag: a new etag; a stale etag: 412 and nothing changes.
    const updated = (await registry.updateConfiguration({ ...got, priority: 7, targetCondition: "tags.crud = 'no'" })).responseBody as any;
    assert.equal(updated.priority, 7);
    assert.notEqual(updated.etag, got.etag);
    assert.equal(updated.createdTimeUtc, got.createdTimeUtc);
    await assert.rejects(registry.updateConfiguration({ ...got, priority: 9 }), hubError(412, 'PreconditionFailed'));
    assert.equal(((await registry.getConfiguration('crud-1')).responseBody as any).priority, 7);

    // Force (If-Match: *) ignores the stale etag.
    const forced = (await registry.updateConfiguration({ ...got, priority: 9 }, true)).responseBody as any;
    assert.equal(forced.priority, 9);
    assert.notEqual(forced.etag, updated.etag);

    // Content is fixed once created.
    await assert.rejects(
      registry.updateConfiguration({ ...forced, content: { deviceContent: { 'properties.desired.crud': { a: 2 } } } }),
      hubError(400, 'ArgumentInvalid'),
    );
    assert.deepEqual(((await registry.getConfiguration('crud-1')).responseBody as any).content.deviceContent, { 'properties.desired.crud': { a: 1 } });

    await assert.rejects(registry.updateConfiguration({ ...forced, id: 'never-made' }), hubError(404, 'ConfigurationNotFound'));
    await registry.removeConfiguration('crud-1');
    await assert.rejects(registry.getConfiguration('crud-1'), hubError(404, 'ConfigurationNotFound'));
    await assert.rejects(registry.removeConfiguration('crud-1'), hubError(404, 'ConfigurationNotFound'));
  });

  test('bad ids, bodies and oversize content: 400 ArgumentInvalid, nothing stored', async () => {
    const before = ((await registry.getConfigurations()).responseBody as any[]).length;
    const good = { content: { deviceContent: { 'properties.desired.x': 1 } }, targetCondition: '*' };
    const bad: [string, object][] = [
      ['Upper', good],
      ['a'.repeat(129), good],
      ['has space', good],
      ['bad-priority', { ...good, priority: -1 }],
      ['bad-condition', { ...good, targetCondition: "tags.x = = 'y'" }],
      ['bad-path', { content: { deviceContent: { 'tags.x': 1 } } }],
      ['bad-key', { content: { deviceContent: { 'properties.desired.a$b': 1 } } }],
      ['module-no-from', { content: { moduleContent: { 'properties.desired.x': 1 } }, targetCondition: "tags.x = 'y'" }],
      ['device-from-modules', { ...good, targetCondition: "FROM devices.modules WHERE tags.x = 'y'" }],
      ['two-kinds', { content: { deviceContent: { 'properties.desired.x': 1 }, modulesContent: { m: { 'properties.desired': {} } } } }],
      ['bad-metric', { ...good, metrics: { queries: { m: 'SELECT FROM' } } }],
      ['six-metrics', { ...good, metrics: { queries: Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`m${i}`, 'SELECT * FROM devices'])) } }],
      ['oversize', { content: { deviceContent: Object.fromEntries([...Array(12)].map((_, i) => [`properties.desired.p${i}`, 'x'.repeat(3000)])) } }],
      ['bad-labels', { ...good, labels: { k: 5 } }],
    ];
    for (const [id, body] of bad) {
      await assert.rejects(registry.addConfiguration({ id, ...body } as any), hubError(400, 'ArgumentInvalid'), id);
    }
    assert.equal(((await registry.getConfigurations()).responseBody as any[]).length, before);
  });

  test('overlapping configurations: the higher priority wins the path; a connected device receives the patch; removal hands the path back', async () => {
    const deviceId = 'prio-device';
    const { connectionString } = await createDevice(t, deviceId);
    await registry.updateTwin(deviceId, { tags: { building: '43' }, properties: { desired: { own: 'kept' } } }, '*');
    const client = Client.fromConnectionString(connectionString, Mqtt);
    await client.open();
    try {
      const twin = await client.getTwin();
      const seen: any[] = [];
      twin.on('properties.desired', (delta: any) => seen.push(plain(delta)));

      await registry.addConfiguration({
        id: 'prio-low',
        content: { deviceContent: { 'properties.desired.settings': { mode: 'low', fan: 1 }, 'properties.desired.lowOnly': 1 } },
        targetCondition: "tags.building = '43'",
        priority: 1,
      } as any);
      await registry.addConfiguration({
        id: 'prio-high',
        content: { deviceContent: { 'properties.desired.settings': { mode: 'high' } } },
        targetCondition: "tags.building = '43' AND deviceId = 'prio-device'",
        priority: 10,
      } as any);
      await eventually(async () => (await desiredOf(registry, deviceId)).settings?.mode === 'high');
      await eventually(async () => plain((await registry.getTwin(deviceId)).responseBody).configurations?.['prio-high']);
      const service = plain((await registry.getTwin(deviceId)).responseBody);
      assert.deepEqual(service.properties.desired.settings, { mode: 'high' }, 'the higher priority content, whole');
      assert.equal(service.properties.desired.lowOnly, 1, 'the lower priority configuration still writes the paths it alone has');
      assert.equal(service.properties.desired.own, 'kept', 'desired properties set by the service stay');
      assert.deepEqual(service.configurations, { 'prio-high': { status: 'Applied' }, 'prio-low': { status: 'Applied' } });
      await eventually(() => (twin.properties.desired as any).settings?.mode === 'high', 5000);
      assert.ok(seen.some((d) => d.settings?.mode === 'high'), 'the device was sent the desired patch');

      // Removing the winner: the lower-priority content takes the path over, and the device hears of it.
      await registry.removeConfiguration('prio-high');
      await eventually(async () => (await desiredOf(registry, deviceId)).settings?.mode === 'low');
      assert.deepEqual((await desiredOf(registry, deviceId)).settings, { mode: 'low', fan: 1 });
      await eventually(() => seen.some((d) => d.settings?.mode === 'low' && d.settings?.fan === 1));
      await eventually(async () => !plain((await registry.getTwin(deviceId)).responseBody).configurations?.['prio-high']);

      // Removing the last one takes its content out, and only its content.
      await registry.removeConfiguration('prio-low');
      await eventually(async () => (await desiredOf(registry, deviceId)).settings === undefined);
      const last = plain((await registry.getTwin(deviceId)).responseBody);
      assert.deepEqual(await desiredOf(registry, deviceId), { own: 'kept' });
      assert.equal(last.configurations, undefined);
    } finally {
      await client.close();
    }
  });

  test('equal priority: the newest configuration wins', async () => {
    const deviceId = 'tie-device';
    await createDevice(t, deviceId);
    await registry.updateTwin(deviceId, { tags: { tie: true } }, '*');
    await registry.addConfiguration({ id: 'tie-old', content: { deviceContent: { 'properties.desired.tie': 'old' } }, targetCondition: 'tags.tie = true', priority: 3 } as any);
    await new Promise((r) => setTimeout(r, 20));
    await registry.addConfiguration({ id: 'tie-new', content: { deviceContent: { 'properties.desired.tie': 'new' } }, targetCondition: 'tags.tie = true', priority: 3 } as any);
    await eventually(async () => plain((await registry.getTwin(deviceId)).responseBody).configurations?.['tie-new']);
    assert.equal((await desiredOf(registry, deviceId)).tie, 'new');
    assert.deepEqual(plain((await registry.getTwin(deviceId)).responseBody).configurations, { 'tie-new': { status: 'Applied' }, 'tie-old': { status: 'Targeted' } });
    await registry.removeConfiguration('tie-old');
    await registry.removeConfiguration('tie-new');
  });

  test('a device that comes to match the target condition later receives the content; one that stops matching loses it', async () => {
    const deviceId = 'late-device';
    await createDevice(t, deviceId);
    await registry.addConfiguration({
      id: 'late-cfg',
      content: { deviceContent: { 'properties.desired.ring.level': 2 } },
      targetCondition: "tags.ring = 'two' AND properties.reported.missing = 1 OR tags.ring = 'two'",
    } as any);
    await new Promise((r) => setTimeout(r, 1500)); // three evaluations
    assert.deepEqual(await desiredOf(registry, deviceId), {}, 'not targeted yet');

    await registry.updateTwin(deviceId, { tags: { ring: 'two' } }, '*');
    await eventually(async () => (await desiredOf(registry, deviceId)).ring?.level === 2);
    assert.deepEqual(plain((await registry.getTwin(deviceId)).responseBody).configurations, { 'late-cfg': { status: 'Applied' } });

    await registry.updateTwin(deviceId, { tags: { ring: 'three' } }, '*');
    await eventually(async () => (await desiredOf(registry, deviceId)).ring?.level === undefined);
    assert.equal(plain((await registry.getTwin(deviceId)).responseBody).configurations, undefined);
    await registry.removeConfiguration('late-cfg');
  });

  test('metrics: targeted and applied counts, custom metric results, the appliedCount query', async () => {
    for (const id of ['m-1', 'm-2', 'm-3']) {
      await createDevice(t, id);
      await registry.updateTwin(id, { tags: { metric: 'm', extra: id === 'm-1' ? 1 : 0 } }, '*');
    }
    await registry.addConfiguration({
      id: 'metrics-cfg',
      content: { deviceContent: { 'properties.desired.metric': 'base' } },
      targetCondition: "tags.metric = 'm'",
      priority: 1,
      metrics: { queries: { extra: "SELECT deviceId FROM devices WHERE tags.metric = 'm' AND tags.extra = 1", none: "SELECT deviceId FROM devices WHERE tags.metric = 'none'" } },
    } as any);
    // m-3 gets the same path from a higher-priority configuration: targeted, not applied.
    await registry.addConfiguration({
      id: 'metrics-top',
      content: { deviceContent: { 'properties.desired.metric': 'top' } },
      targetCondition: "deviceId = 'm-3'",
      priority: 2,
    } as any);
    const done = await eventually(async () => {
      const c = (await registry.getConfiguration('metrics-cfg')).responseBody as any;
      return c.systemMetrics.results.targetedCount === 3 && c.systemMetrics.results.appliedCount === 2 ? c : undefined;
    });
    assert.deepEqual(done.metrics.results, { extra: 1, none: 0 });
    const top = (await registry.getConfiguration('metrics-top')).responseBody as any;
    assert.deepEqual(top.systemMetrics.results, { targetedCount: 1, appliedCount: 1 });
    assert.equal((await desiredOf(registry, 'm-3')).metric, 'top');

    const applied = await registry.createQuery(done.systemMetrics.queries.appliedCount).nextAsTwin();
    assert.deepEqual((applied.result as any[]).map((r) => r.deviceId).sort(), ['m-1', 'm-2']);
    const targeted = await registry.createQuery("SELECT deviceId FROM devices WHERE configurations.[[metrics-cfg]].status = 'Targeted'").nextAsTwin();
    assert.deepEqual((targeted.result as any[]).map((r) => r.deviceId), ['m-3']);
    await registry.removeConfiguration('metrics-top');
    await registry.removeConfiguration('metrics-cfg');
  });

  test('module configurations target module twins FROM devices.modules', async () => {
    await createDevice(t, 'mod-host');
    await registry.addModule({ deviceId: 'mod-host', moduleId: 'sensor' } as any);
    await registry.addModule({ deviceId: 'mod-host', moduleId: 'other' } as any);
    await registry.updateModuleTwin('mod-host', 'sensor', { tags: { role: 'sensor' } }, '*');
    await registry.addConfiguration({
      id: 'module-cfg',
      content: { moduleContent: { 'properties.desired.sampling': { rate: 5 } } },
      targetCondition: "FROM devices.modules WHERE tags.role = 'sensor'",
    } as any);
    await eventually(async () => plain((await registry.getModuleTwin('mod-host', 'sensor')).responseBody).properties.desired.sampling?.rate === 5);
    const sensor = plain((await registry.getModuleTwin('mod-host', 'sensor')).responseBody);
    assert.deepEqual(sensor.configurations, { 'module-cfg': { status: 'Applied' } });
    assert.equal(plain((await registry.getModuleTwin('mod-host', 'other')).responseBody).properties.desired.sampling, undefined);
    assert.equal((await desiredOf(registry, 'mod-host')).sampling, undefined, 'the device twin is not a module twin');
    const c = await eventually(async () => {
      const r = (await registry.getConfiguration('module-cfg')).responseBody as any;
      return r.systemMetrics.results.appliedCount === 1 ? r : undefined;
    });
    assert.equal(c.systemMetrics.queries.appliedCount, "select deviceId, moduleId from devices.modules where configurations.[[module-cfg]].status = 'Applied'");
    await registry.removeConfiguration('module-cfg');
    await eventually(async () => plain((await registry.getModuleTwin('mod-host', 'sensor')).responseBody).properties.desired.sampling === undefined);
  });

  test('edge deployments: modulesContent stored and served; applyConfigurationContentOnDevice writes existing modules\' twins', async () => {
    const modulesContent = {
      $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: {} } },
      worker: { 'properties.desired': { batch: 10 } },
    };
    await registry.addConfiguration({ id: 'edge-deploy', content: { modulesContent }, targetCondition: "tags.edge = 'yes'", priority: 1 } as any);
    assert.deepEqual(((await registry.getConfiguration('edge-deploy')).responseBody as any).content.modulesContent, modulesContent);

    await registry.create({ deviceId: 'edge-1', capabilities: { iotEdge: true } } as any);
    await registry.addModule({ deviceId: 'edge-1', moduleId: 'worker' } as any);
    await registry.updateModuleTwin('edge-1', 'worker', { properties: { desired: { stale: true } } }, '*');
    await registry.applyConfigurationContentOnDevice('edge-1', { modulesContent } as any);
    const worker = plain((await registry.getModuleTwin('edge-1', 'worker')).responseBody).properties.desired;
    assert.equal(worker.batch, 10);
    assert.equal(worker.stale, undefined, '"properties.desired" replaces the module\'s desired properties');

    await createDevice(t, 'not-edge');
    await assert.rejects(registry.applyConfigurationContentOnDevice('not-edge', { modulesContent } as any), hubError(400, 'ArgumentInvalid'));
    await assert.rejects(registry.applyConfigurationContentOnDevice('edge-1', { deviceContent: {} } as any), hubError(400, 'ArgumentInvalid'));
    await assert.rejects(registry.applyConfigurationContentOnDevice('nobody', { modulesContent } as any), hubError(404, 'DeviceNotFound'));
    await registry.removeConfiguration('edge-deploy');
  });

  test('at most 100 configurations per hub', async () => {
    const existing = ((await registry.getConfigurations()).responseBody as any[]).length;
    for (let i = existing; i < 100; i++) await registry.addConfiguration({ id: `many-${i}`, content: {}, targetCondition: "tags.never = 'set'" } as any);
    await assert.rejects(registry.addConfiguration({ id: 'one-too-many', content: {} } as any), hubError(403, 'IotHubQuotaExceeded'));
    await assert.rejects(registry.getConfiguration('one-too-many'), hubError(404, 'ConfigurationNotFound'));
    for (let i = existing; i < 100; i++) await registry.removeConfiguration(`many-${i}`);
  });

  test('configurations survive a restart and their evaluation resumes', async () => {
    await registry.addConfiguration({ id: 'durable', content: { deviceContent: { 'properties.desired.durable': true } }, targetCondition: "tags.durable = 'yes'" } as any);
    await t.restart();
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    assert.equal(((await registry.getConfiguration('durable')).responseBody as any).id, 'durable');
    await createDevice(t, 'after-restart');
    await registry.updateTwin('after-restart', { tags: { durable: 'yes' } }, '*');
    await eventually(async () => (await desiredOf(registry, 'after-restart')).durable === true);
  });
});
