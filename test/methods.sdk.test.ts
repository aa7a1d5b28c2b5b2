import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { sdkError } from './support/sdk.js';

const { Registry, Client } = iothub;

/** The hub's error code, as the SDK hands back the response. */
const hubErrorCode = (code: string, status: number) => (e: any) => {
  assert.equal(e.response?.statusCode, status, `${e.name}: ${e.message}`);
  assert.equal(e.response?.headers['iothub-errorcode'], code);
  return true;
};

describe('direct methods through the unmodified azure-iothub Client (service side)', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let client: iothub.Client;

  before(async () => {
    t = await startTestHub();
    const cs = await t.connectionString();
    registry = Registry.fromConnectionString(cs);
    client = Client.fromConnectionString(cs);
    await registry.create({ deviceId: 'offline' });
    await registry.addModule({ deviceId: 'offline', moduleId: 'm1' });
  });
  after(async () => {
    await client.close();
    await t.close();
  });

  test('a device that is not connected gives 404 DeviceNotOnline', async () => {
    await assert.rejects(client.invokeDeviceMethod('offline', { methodName: 'reboot', payload: {} }), hubErrorCode('DeviceNotOnline', 404));
    await assert.rejects(client.invokeDeviceMethod('offline', 'm1', { methodName: 'reboot' }), hubErrorCode('DeviceNotOnline', 404));
  });

  test('connectTimeoutInSeconds waits for the device to come online before giving up', async () => {
    const started = Date.now();
    await assert.rejects(
      client.invokeDeviceMethod('offline', { methodName: 'reboot', connectTimeoutInSeconds: 1, responseTimeoutInSeconds: 5 }),
      hubErrorCode('DeviceNotOnline', 404),
    );
    assert.ok(Date.now() - started >= 950, `gave up after ${Date.now() - started} ms`);
  });

  test('unknown devices and modules are not found', async () => {
    await assert.rejects(client.invokeDeviceMethod('nobody', { methodName: 'reboot' }), sdkError('DeviceNotFoundError'));
    await assert.rejects(client.invokeDeviceMethod('offline', 'nomodule', { methodName: 'reboot' }), hubErrorCode('ModuleNotFound', 404));
  });

  test('out-of-range timeouts and oversize payloads are refused', async () => {
    await assert.rejects(client.invokeDeviceMethod('offline', { methodName: 'reboot', responseTimeoutInSeconds: 301 }), sdkError('ArgumentError'));
    await assert.rejects(client.invokeDeviceMethod('offline', { methodName: 'reboot', responseTimeoutInSeconds: 4 }), sdkError('ArgumentError'));
    await assert.rejects(client.invokeDeviceMethod('offline', { methodName: 'reboot', connectTimeoutInSeconds: 301 }), sdkError('ArgumentError'));
    await assert.rejects(
      client.invokeDeviceMethod('offline', { methodName: 'reboot', payload: { blob: 'x'.repeat(128 * 1024) } }),
      hubErrorCode('MessageTooLarge', 413),
    );
  });

  test('the service policy may invoke; registryRead may not', async () => {
    const reader = Client.fromConnectionString(await t.connectionString('registryRead'));
    try {
      await assert.rejects(reader.invokeDeviceMethod('offline', { methodName: 'reboot' }), sdkError('UnauthorizedError'));
    } finally {
      await reader.close();
    }
    const service = Client.fromConnectionString(await t.connectionString('service'));
    try {
      await assert.rejects(service.invokeDeviceMethod('offline', { methodName: 'reboot' }), hubErrorCode('DeviceNotOnline', 404));
    } finally {
      await service.close();
    }
  });

  test('stopping the hub ends a call that waits for its device instead of holding up shutdown', async () => {
    const other = await startTestHub();
    const otherRegistry = Registry.fromConnectionString(await other.connectionString());
    const otherClient = Client.fromConnectionString(await other.connectionString());
    await otherRegistry.create({ deviceId: 'sleepy' });
    const call = otherClient.invokeDeviceMethod('sleepy', { methodName: 'wake', connectTimeoutInSeconds: 60 });
    const outcome = call.then(
      () => 'answered',
      (e: any) => e.response?.statusCode ?? e.code ?? e.message,
    );
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await other.close();
    assert.ok(Date.now() - started < 5000, `closing took ${Date.now() - started} ms`);
    assert.notEqual(await outcome, 'answered');
    await otherClient.close();
  });
});
