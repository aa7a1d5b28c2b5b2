import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceHttp from 'azure-iot-device-http';
import { startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';
import { createDevice } from './support/devices.js';

/** `fleethub hub show|update`: a hub's file-upload settings through the control plane, with az's options. */
describe('fleethub hub update (file upload settings, as az iot hub update takes them)', () => {
  let t: TestHub;
  const cli = async (...args: string[]) => {
    const r = await fleethub([...args, '--data', t.dataDir]);
    const out = r.stdout.trim();
    return { ...r, json: r.code === 0 && out.startsWith('{') ? JSON.parse(out) : undefined };
  };

  before(async () => {
    t = await startTestHub({ ports: { storage: 10000 } as any });
  });
  after(() => t.close());

  test('the settings change on the resource and in the running hub; a device is given the new container', async () => {
    const r = await cli('hub', 'update', '--fcn', 'cli-uploads', '--fst', '2', '--fn', 'true', '--fnt', '3', '--fnd', '7', '--fnld', '30');
    assert.equal(r.code, 0, r.stderr);
    const p = r.json.properties;
    assert.equal(p.storageEndpoints.$default.containerName, 'cli-uploads');
    assert.equal(p.storageEndpoints.$default.sasTtlAsIso8601, 'PT2H');
    assert.equal(p.enableFileUploadNotifications, true);
    assert.deepEqual(p.messagingEndpoints.fileNotifications, { ttlAsIso8601: 'PT3H', maxDeliveryCount: 7, lockDurationAsIso8601: 'PT30S' });

    const held = t.hub.fileUploadSettings.current();
    assert.equal(held.storageEndpoints.$default.containerName, 'cli-uploads');
    assert.equal(held.enableFileUploadNotifications, true);
    assert.equal(held.messagingEndpoints.fileNotifications.maxDeliveryCount, 7);

    const shown = await cli('hub', 'show');
    assert.equal(shown.json.properties.storageEndpoints.$default.containerName, 'cli-uploads');

    const d = await createDevice(t, 'cli-camera');
    const client = device.Client.fromConnectionString(d.connectionString, deviceHttp.Http);
    try {
      const sas = await client.getBlobSharedAccessSignature('a.txt');
      assert.equal(sas.containerName, 'cli-uploads');
      assert.equal(sas.blobName, 'cli-camera/a.txt');
      await client.notifyBlobUploadStatus(sas.correlationId, false, 400, 'not uploaded');
    } finally {
      await client.close();
    }
  });

  test('identity-based storage needs the identity on the hub: refused with IdentityInUse, then accepted once assigned', async () => {
    const before = (await cli('hub', 'show')).json;
    const refused = await cli('hub', 'update', '--fsi', '[system]');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /IdentityInUse/);
    assert.deepEqual((await cli('hub', 'show')).json.properties.storageEndpoints, before.properties.storageEndpoints);

    assert.equal((await cli('identity', 'assign', '--system')).code, 0);
    const ok = await cli('hub', 'update', '--fsi', '[system]');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.json.properties.storageEndpoints.$default.authenticationType, 'identityBased');
    assert.equal(t.hub.fileUploadSettings.current().storageEndpoints.$default.authenticationType, 'identityBased');
    const back = await cli('hub', 'update', '--fsa', 'keyBased');
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.json.properties.storageEndpoints.$default.authenticationType, 'keyBased');
    assert.equal(back.json.properties.storageEndpoints.$default.identity, undefined);
  });

  test('bad values are refused by the CLI with the option named, and nothing changes', async () => {
    const before = (await cli('hub', 'show')).json;
    for (const [args, message] of [
      [['--fst', '25'], /--fileupload-sas-ttl must be from 1 to 24/],
      [['--fnd', 'ten'], /--fileupload-notification-max-delivery-count takes a whole number/],
      [['--fn', 'yes'], /--fileupload-notifications takes true or false/],
      [['--fsa', 'certificate'], /keyBased or identityBased/],
      [['--fsi', 'my-identity'], /\[system\] or a user-assigned identity's resource id/],
      [[], /Nothing to change/],
    ] as [string[], RegExp][]) {
      const r = await cli('hub', 'update', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, message);
    }
    const unknownHub = await cli('hub', 'update', '--hub', 'no-such-hub', '--fcn', 'x');
    assert.notEqual(unknownHub.code, 0);
    assert.match(unknownHub.stderr, /ResourceNotFound|not found/i);
    assert.deepEqual((await cli('hub', 'show')).json, before);
  });
});
