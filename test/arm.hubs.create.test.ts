import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IotHubClient } from '@azure/arm-iothub';
import iothub from 'azure-iothub';
import device from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import { startTestHub, type TestHub } from './support/hub.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';
import { within } from './support/sdk.js';

async function armError(p: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode: number; code: string; message: string };
    return { statusCode: err.statusCode, code: err.code, message: err.message };
  }
  assert.fail('expected the call to fail');
}

/** A device of `hostName` connects over MQTT and sends one message. */
async function deviceSends(connectionString: string): Promise<void> {
  const client = device.Client.fromConnectionString(connectionString, Mqtt);
  try {
    await within(15000, client.open(), 'device open');
    await within(15000, client.sendEvent(new device.Message('hello')), 'sendEvent');
  } finally {
    await client.close().catch(() => undefined);
  }
}

describe('a hub created by PUT through @azure/arm-iothub', () => {
  let t: TestHub;
  let client: IotHubClient;
  let rg: string;

  before(async () => {
    t = await startTestHub({ hubDomain: 'localhost' });
    client = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
  });
  after(() => t.close());

  const ownerConnectionString = async (name: string) => {
    const keys = [];
    for await (const k of client.iotHubResource.listKeys(rg, name)) keys.push(k);
    const owner = keys.find((k) => k.keyName === 'iothubowner')!;
    return `HostName=${name}.localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=${owner.primaryKey}`;
  };

  test('PUT of a new name creates a hub (201) that serves devices by its name at once, and after a restart', async () => {
    const created = await client.iotHubResource.beginCreateOrUpdateAndWait(rg, 'second-hub', {
      location: 'local',
      sku: { name: 'S1', capacity: 1 },
      identity: { type: 'SystemAssigned' },
      tags: { purpose: 'test' },
    });
    assert.equal(created.name, 'second-hub');
    assert.equal(created.properties!.hostName, 'second-hub.localhost');
    assert.equal(created.properties!.provisioningState, 'Succeeded');
    assert.ok(created.identity!.principalId);
    const names = [];
    for await (const h of client.iotHubResource.listByResourceGroup(rg)) names.push(h.name);
    assert.deepEqual(names.sort(), [t.hub.config.hubName, 'second-hub'].sort());

    const registry = iothub.Registry.fromConnectionString(await ownerConnectionString('second-hub'));
    const { responseBody: d } = await registry.create({ deviceId: 'sensor-1' });
    const deviceCs = `HostName=second-hub.localhost;DeviceId=sensor-1;SharedAccessKey=${d.authentication!.symmetricKey!.primaryKey}`;
    await deviceSends(deviceCs);
    assert.equal(await t.hub.store.devices.get('sensor-1'), undefined, 'the device lives in the new hub only');

    assert.deepEqual((await t.hub.info()).hubs?.map((h) => h.hubHostName), ['second-hub.localhost'], 'info() lists the hub created at run time');

    await t.restart();
    assert.deepEqual((await t.hub.info()).hubs?.map((h) => h.hubHostName), ['second-hub.localhost'], 'started again after the restart');
    client = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const again = await client.iotHubResource.get(rg, 'second-hub');
    assert.deepEqual(again.tags, { purpose: 'test' });
    await deviceSends(deviceCs);
  });

  test('bad names and bodies create nothing', async () => {
    let e = await armError(client.iotHubResource.beginCreateOrUpdateAndWait(rg, 'x', { location: 'local', sku: { name: 'S1', capacity: 1 } }));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'InvalidIotHubName');
    e = await armError(
      client.iotHubResource.beginCreateOrUpdateAndWait(rg, 'third-hub', { location: 'local', sku: { name: 'S1', capacity: 1 }, properties: { minTlsVersion: '1.0' } }),
    );
    assert.equal(e.code, 'FeatureNotSupported');
    assert.equal((await armError(client.iotHubResource.get(rg, 'third-hub'))).code, 'ResourceNotFound');
    assert.equal(t.hub.hubs.some((h) => h.config.hubName === 'third-hub'), false, 'no hub was started');
  });

  test('a hub created by PUT is deleted by DELETE; a configured hub is not', async () => {
    await client.iotHubResource.beginDeleteAndWait(rg, 'second-hub');
    assert.equal((await armError(client.iotHubResource.get(rg, 'second-hub'))).code, 'ResourceNotFound');
    assert.equal(t.hub.hubs.some((h) => h.config.hubName === 'second-hub'), false);
    const e = await armError(client.iotHubResource.beginDeleteAndWait(rg, t.hub.config.hubName));
    assert.equal(e.code, 'CannotDeleteConfiguredHub');
  });
});
