/**
 * The twin scenarios of the Azure IoT Node SDK's own end-to-end tests, driven the same way: the
 * service's `Twin.update` (azure-iothub) nulling out whole sections, with and without etag `*`,
 * while a device (azure-iot-device over Mqtt or Amqp) holds its twin and waits for the patch; and
 * desired properties set while the device is disconnected, read when it comes back.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { createDevice } from './support/devices.js';
import { within } from './support/sdk.js';

const { Client } = device;
const newProps = { foo: 1, bar: { baz: 2, tweedle: { dee: 3 } } };
const moreNewProps = { bar: { baz: 3 } };
const mergeResult = { foo: 1, bar: { baz: 3, tweedle: { dee: 3 } } };
const values = (section: any) => Object.fromEntries(Object.entries(JSON.parse(JSON.stringify(section ?? {}))).filter(([k]) => !k.startsWith('$')));

describe('twin end-to-end scenarios of the Azure IoT Node SDK', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  before(async () => {
    t = await startTestHub();
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
  });
  after(() => t.close());

  let n = 0;
  async function connected(transport: any) {
    const deviceId = `e2e-twin-${++n}`;
    const { connectionString } = await createDevice(t, deviceId);
    const client = Client.fromConnectionString(connectionString, transport);
    await client.open();
    const deviceTwin = await client.getTwin();
    const serviceTwin = (await registry.getTwin(deviceId)).responseBody;
    return { deviceId, connectionString, client, deviceTwin, serviceTwin };
  }

  /** Waits for the device's twin to hold desired `$version` `version`, as the SDK e2e test does. */
  const desiredVersion = (deviceTwin: device.Twin, version: number) =>
    within(5000, new Promise<void>((resolve) => {
      const check = () => (deviceTwin.properties.desired.$version === version ? resolve() : undefined);
      deviceTwin.on('properties.desired', check);
      check();
    }), `the device to receive desired $version ${version}`);

  for (const [name, transport] of [['Mqtt', deviceMqtt.Mqtt], ['Amqp', deviceAmqp.Amqp]] as const) {
    for (const etag of [undefined, '*']) {
      test(`${name}: null out all desired properties${etag ? ' with etag *' : ''}; the device is told`, async () => {
        const { deviceId, client, deviceTwin, serviceTwin } = await connected(transport);
        try {
          await serviceTwin.update({ properties: { desired: newProps } } as any);
          await desiredVersion(deviceTwin, 2);
          if (etag) serviceTwin.etag = etag;
          await within(5000, serviceTwin.update({ properties: { desired: null } } as any), 'Twin.update');
          await desiredVersion(deviceTwin, 3);
          assert.deepEqual(values(deviceTwin.properties.desired), {});
          const stored = (await registry.getTwin(deviceId)).responseBody as any;
          assert.deepEqual(values(stored.properties.desired), {});
          assert.equal(stored.properties.desired.$version, 3);
          assert.deepEqual(values(stored.properties.desired.$metadata), {});
          // A new read by the device agrees.
          assert.deepEqual(values((await client.getTwin()).properties.desired), {});
        } finally {
          await client.close();
        }
      });
    }
  }

  for (const etag of [undefined, '*']) {
    test(`null out all tags${etag ? ' with etag *' : ''}`, async () => {
      const deviceId = `e2e-tags-${etag ? 'star' : 'plain'}`;
      await createDevice(t, deviceId);
      const serviceTwin = (await registry.getTwin(deviceId)).responseBody;
      await serviceTwin.update({ tags: newProps } as any);
      if (etag) serviceTwin.etag = etag;
      await serviceTwin.update({ tags: null } as any);
      assert.deepEqual(values(serviceTwin.tags), {});
      assert.deepEqual(values(((await registry.getTwin(deviceId)).responseBody as any).tags), {});
    });
  }

  test('Mqtt: desired properties set while the device is disconnected are what it reads when it comes back', async () => {
    const first = await connected(deviceMqtt.Mqtt);
    const { serviceTwin } = first;
    await serviceTwin.update({ properties: { desired: newProps } } as any);
    await first.client.close();
    await serviceTwin.update({ properties: { desired: moreNewProps } } as any);
    const client = Client.fromConnectionString(first.connectionString, deviceMqtt.Mqtt);
    await client.open();
    try {
      const deviceTwin = await client.getTwin();
      assert.deepEqual(values(deviceTwin.properties.desired), mergeResult);
      assert.equal(deviceTwin.properties.desired.$version, 3);
    } finally {
      await client.close();
    }
  });

  test('Mqtt: a client with a desired listener, closed and opened again, reads the changes made meanwhile and keeps receiving patches', async () => {
    const { deviceId, client, deviceTwin, serviceTwin } = await connected(deviceMqtt.Mqtt);
    const seen: any[] = [];
    deviceTwin.on('properties.desired', (patch: any) => seen.push(patch));
    await serviceTwin.update({ properties: { desired: newProps } } as any);
    await desiredVersion(deviceTwin, 2);
    await client.close();
    await serviceTwin.update({ properties: { desired: moreNewProps } } as any);
    await client.open();
    try {
      const reread = await client.getTwin();
      assert.equal(reread.properties.desired.$version, 3);
      assert.deepEqual(values(reread.properties.desired), mergeResult);
      await registry.updateTwin(deviceId, { properties: { desired: { foo: null } } } as any, '*');
      await desiredVersion(reread, 4);
      assert.deepEqual(values(reread.properties.desired), { bar: mergeResult.bar });
    } finally {
      await client.close();
    }
  });

  test('Mqtt: the same client closed and opened again reads the changes made meanwhile', async () => {
    const { client, serviceTwin } = await connected(deviceMqtt.Mqtt);
    await serviceTwin.update({ properties: { desired: newProps } } as any);
    await client.close();
    await serviceTwin.update({ properties: { desired: moreNewProps } } as any);
    await client.open();
    try {
      const deviceTwin = await client.getTwin();
      await within(5000, (async () => {
        while (deviceTwin.properties.desired.$version !== 3) await new Promise((r) => setTimeout(r, 50));
      })(), 'the reopened client to see desired $version 3');
      assert.deepEqual(values(deviceTwin.properties.desired), mergeResult);
    } finally {
      await client.close();
    }
  });
});
