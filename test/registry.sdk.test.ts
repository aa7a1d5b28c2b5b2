import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import { createSasToken } from '../src/core/sas.js';
import { startTestHub, type TestHub } from './support/hub.js';
import { sdkError } from './support/sdk.js';

const { Registry } = iothub;

describe('identity registry through the unmodified azure-iothub Registry', () => {
  let t: TestHub;
  let registry: iothub.Registry;

  before(async () => {
    t = await startTestHub();
    registry = Registry.fromConnectionString(await t.connectionString());
  });
  after(() => t.close());

  test('create generates SAS keys and returns the device as IoT Hub does', async () => {
    const { responseBody: d } = await registry.create({ deviceId: 'thermostat-1' });
    assert.equal(d.deviceId, 'thermostat-1');
    assert.equal(d.status, 'enabled');
    assert.equal(d.connectionState, 'Disconnected');
    assert.equal((d.authentication as any).type, 'sas');
    assert.equal(Buffer.from(d.authentication!.symmetricKey!.primaryKey!, 'base64').length, 32);
    assert.notEqual(d.authentication!.symmetricKey!.primaryKey, d.authentication!.symmetricKey!.secondaryKey);
    assert.match(d.generationId!, /^\d{18}$/);
    assert.ok(d.etag);
    assert.deepEqual(d.capabilities, { iotEdge: false });
  });

  test('create keeps given keys and self-signed thumbprints', async () => {
    const primaryKey = Buffer.alloc(32, 1).toString('base64');
    const secondaryKey = Buffer.alloc(16, 2).toString('base64');
    const { responseBody: s } = await registry.create({
      deviceId: 'given-keys',
      authentication: { symmetricKey: { primaryKey, secondaryKey } },
    });
    assert.deepEqual(s.authentication!.symmetricKey, { primaryKey, secondaryKey });
    const thumb = 'a'.repeat(40);
    const { responseBody: x } = await registry.create({
      deviceId: 'x509-device',
      authentication: { x509Thumbprint: { primaryThumbprint: thumb, secondaryThumbprint: 'b'.repeat(64) } },
    });
    assert.equal((x.authentication as any).type, 'selfSigned');
    assert.equal(x.authentication!.x509Thumbprint!.primaryThumbprint, thumb.toUpperCase());
  });

  test('get returns what create stored; unknown id raises DeviceNotFoundError', async () => {
    const { responseBody: created } = await registry.create({ deviceId: 'lookup-me', status: 'disabled' });
    const { responseBody: got } = await registry.get('lookup-me');
    assert.deepEqual(got, created);
    await assert.rejects(registry.get('no-such-device'), sdkError('DeviceNotFoundError'));
  });

  test('creating an existing id raises DeviceAlreadyExistsError and changes nothing', async () => {
    const { responseBody: first } = await registry.create({ deviceId: 'twice' });
    await assert.rejects(registry.create({ deviceId: 'twice', status: 'disabled' }), sdkError('DeviceAlreadyExistsError'));
    assert.deepEqual((await registry.get('twice')).responseBody, first);
  });

  test('update replaces the device, keeps generationId, changes the etag', async () => {
    const { responseBody: d } = await registry.create({ deviceId: 'updatable' });
    const { responseBody: u } = await registry.update({ ...d, status: 'disabled', statusReason: 'maintenance' } as any);
    assert.equal(u.status, 'disabled');
    assert.equal(u.statusReason, 'maintenance');
    assert.equal(u.generationId, d.generationId);
    assert.notEqual(u.etag, d.etag);
    assert.equal((await registry.get('updatable')).responseBody.status, 'disabled');
    await assert.rejects(registry.update({ deviceId: 'never-created' }), sdkError('DeviceNotFoundError'));
  });

  test('update with a stale etag raises the precondition error (bulk updateIfMatchETag and modules)', async () => {
    const { responseBody: d } = await registry.create({ deviceId: 'etagged' });
    await registry.update({ ...d, status: 'disabled' } as any);
    const stale = await registry.updateDevices([{ ...d, status: 'enabled' } as any], false);
    assert.equal(stale.responseBody.isSuccessful, false);
    assert.equal(stale.responseBody.errors[0]!.errorCode, 'PreconditionFailed');
    assert.equal((await registry.get('etagged')).responseBody.status, 'disabled');
    const fresh = (await registry.get('etagged')).responseBody;
    const ok = await registry.updateDevices([{ ...fresh, status: 'enabled' } as any], false);
    assert.equal(ok.responseBody.isSuccessful, true);
    assert.equal((await registry.get('etagged')).responseBody.status, 'enabled');

    const { responseBody: m } = await registry.addModule({ deviceId: 'etagged', moduleId: 'mod' });
    await registry.updateModule({ ...m, managedBy: 'me' } as any, true);
    await assert.rejects(registry.updateModule({ ...m, managedBy: 'stale' } as any), sdkError('InvalidEtagError'));
    const { responseBody: now } = await registry.getModule('etagged', 'mod');
    assert.equal(now.managedBy, 'me');
  });

  test('delete removes the device; deleting again raises DeviceNotFoundError', async () => {
    await registry.create({ deviceId: 'doomed' });
    await registry.delete('doomed');
    await assert.rejects(registry.get('doomed'), sdkError('DeviceNotFoundError'));
    await assert.rejects(registry.delete('doomed'), sdkError('DeviceNotFoundError'));
  });

  test('list returns every device', async () => {
    const ids = (await registry.list()).responseBody.map((d) => d.deviceId);
    for (const id of ['thermostat-1', 'given-keys', 'x509-device', 'lookup-me']) assert.ok(ids.includes(id), id);
  });

  test('bulk add, update and remove, with per-item errors', async () => {
    const added = await registry.addDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }, { deviceId: 'twice' }]);
    assert.equal(added.responseBody.isSuccessful, false);
    assert.deepEqual(
      added.responseBody.errors.map((e) => [e.deviceId, e.errorCode]),
      [['twice', 'DeviceAlreadyExists']],
    );
    assert.equal((await registry.get('bulk-1')).responseBody.status, 'enabled');

    const updated = await registry.updateDevices([{ deviceId: 'bulk-1', status: 'disabled' }, { deviceId: 'bulk-2', status: 'disabled' }], true);
    assert.equal(updated.responseBody.isSuccessful, true);
    assert.equal((await registry.get('bulk-2')).responseBody.status, 'disabled');

    const removed = await registry.removeDevices([{ deviceId: 'bulk-1' }, { deviceId: 'bulk-2' }, { deviceId: 'bulk-missing' }], true);
    assert.equal(removed.responseBody.isSuccessful, false);
    assert.deepEqual(removed.responseBody.errors.map((e) => e.errorCode), ['DeviceNotFound']);
    await assert.rejects(registry.get('bulk-1'), sdkError('DeviceNotFoundError'));
  });

  test('registry statistics count devices by status', async () => {
    const { responseBody: before } = await registry.getRegistryStatistics();
    await registry.create({ deviceId: 'stat-enabled' });
    await registry.create({ deviceId: 'stat-disabled', status: 'disabled' });
    const { responseBody: after } = await registry.getRegistryStatistics();
    assert.equal(after.totalDeviceCount, before.totalDeviceCount + 2);
    assert.equal(after.enabledDeviceCount, before.enabledDeviceCount + 1);
    assert.equal(after.disabledDeviceCount, before.disabledDeviceCount + 1);
  });

  test('modules: add, get, list, remove', async () => {
    await registry.create({ deviceId: 'gateway' });
    const { responseBody: m } = await registry.addModule({ deviceId: 'gateway', moduleId: 'filter' });
    assert.equal((m.authentication as any).type, 'sas');
    assert.equal((await registry.getModule('gateway', 'filter')).responseBody.moduleId, 'filter');
    await registry.addModule({ deviceId: 'gateway', moduleId: 'sensor' });
    assert.deepEqual((await registry.getModulesOnDevice('gateway')).responseBody.map((x) => x.moduleId), ['filter', 'sensor']);
    await registry.removeModule('gateway', 'filter');
    await assert.rejects(registry.getModule('gateway', 'filter'));
    await assert.rejects(registry.addModule({ deviceId: 'no-such-device', moduleId: 'x' }), sdkError('DeviceNotFoundError'));
  });

  test('IoT Edge parent and child scopes are validated', async () => {
    const { responseBody: edge } = await registry.create({ deviceId: 'edge-1', capabilities: { iotEdge: true } });
    assert.equal((edge as any).deviceScope, `ms-azure-iot-edge://edge-1-${edge.generationId}`);
    const { responseBody: child } = await registry.create({ deviceId: 'leaf-1', deviceScope: (edge as any).deviceScope } as any);
    assert.equal((child as any).deviceScope, (edge as any).deviceScope);
    assert.deepEqual((child as any).parentScopes, [(edge as any).deviceScope]);
    await assert.rejects(
      registry.create({ deviceId: 'leaf-2', deviceScope: 'ms-azure-iot-edge://ghost-637000000000000000' } as any),
      sdkError('ArgumentError'),
    );
    await assert.rejects(registry.get('leaf-2'), sdkError('DeviceNotFoundError'));
  });

  describe('authorization', () => {
    test('a wrong key raises UnauthorizedError', async () => {
      const cs = (await t.connectionString()).replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 9).toString('base64')}`);
      await assert.rejects(Registry.fromConnectionString(cs).list(), sdkError('UnauthorizedError'));
    });

    test('an expired token raises UnauthorizedError', async () => {
      const policy = (await t.hub.store.policies.get('iothubowner'))!;
      const expired = createSasToken(t.host, policy.primaryKey, Math.floor(Date.now() / 1000) - 10, 'iothubowner');
      const sasRegistry = Registry.fromSharedAccessSignature(`HostName=${t.host};SharedAccessSignature=${expired}`);
      await assert.rejects(sasRegistry.list(), sdkError('UnauthorizedError'));
    });

    test('a policy without the right permission raises UnauthorizedError and writes nothing', async () => {
      const readOnly = Registry.fromConnectionString(await t.connectionString('registryRead'));
      assert.ok((await readOnly.list()).responseBody.length > 0);
      await assert.rejects(readOnly.create({ deviceId: 'not-allowed' }), sdkError('UnauthorizedError'));
      await assert.rejects(registry.get('not-allowed'), sdkError('DeviceNotFoundError'));
      const serviceOnly = Registry.fromConnectionString(await t.connectionString('service'));
      await assert.rejects(serviceOnly.list(), sdkError('UnauthorizedError'));
    });
  });
});
