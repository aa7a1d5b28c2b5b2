import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceHttp from 'azure-iot-device-http';
import iothub from 'azure-iothub';
import { AnonymousCredential, BlobServiceClient, BlockBlobClient, newPipeline } from '@azure/storage-blob';
import { rawRequest, startTestHub, type TestHub } from './support/hub.js';
import { createDevice, eventually } from './support/devices.js';
import { defaultFileUploadSettings, type FileUploadSettings } from '../src/hub/files/settings.js';
import type { Principal } from '../src/identity/types.js';
import { createSasToken } from '../src/core/sas.js';
import { IotHubClient } from '@azure/arm-iothub';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';

const { Client } = device;
const API = 'api-version=2021-04-12';

interface Notification {
  deviceId: string;
  blobUri: string;
  blobName: string;
  lastUpdatedTime: string;
  blobSizeInBytes: number;
  enqueuedTimeUtc: string;
}

describe('file upload with the unmodified device SDK over the embedded Azurite', () => {
  let t: TestHub;
  let service: iothub.Client;
  let receiver: any;
  const notifications: Notification[] = [];
  let hubId: string;
  let uai: Principal;
  let deviceKey: string;
  let mqttClient: device.Client;
  let httpClient: device.Client;

  const settings = (change: (s: FileUploadSettings) => void = () => undefined): FileUploadSettings => {
    const s = defaultFileUploadSettings();
    s.enableFileUploadNotifications = true;
    s.messagingEndpoints.fileNotifications.lockDurationAsIso8601 = 'PT5S';
    change(s);
    return s;
  };

  before(async () => {
    t = await startTestHub({ ports: { storage: 10000 } as any, fileUpload: settings() });
    const { subscriptionId } = t.hub.identity.tenancy;
    hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
    uai = await t.hub.identity.principals.create('userAssigned', `/subscriptions/${subscriptionId}/resourceGroups/fleethub/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uploader`, 'uploader');
    const d = await createDevice(t, 'camera');
    deviceKey = d.key;
    mqttClient = Client.fromConnectionString(d.connectionString, deviceMqtt.Mqtt);
    httpClient = Client.fromConnectionString(d.connectionString, deviceHttp.Http);
    // Connected devices upload files (and close() then ends their token renewal timers).
    await mqttClient.open();
    await httpClient.open();
    service = iothub.Client.fromConnectionString(await t.connectionString('service'));
    await service.open();
    receiver = (await service.getFileNotificationReceiver()).result;
    receiver.on('message', (msg: any) => {
      notifications.push(JSON.parse(msg.data.toString()));
      receiver.complete(msg, () => undefined);
    });
  });
  after(async () => {
    await mqttClient?.close();
    await httpClient?.close();
    await service?.close();
    await t?.close();
  });

  /** The blob's content, read back from Azurite with @azure/storage-blob and the account key. */
  async function readBlob(blobName: string): Promise<string> {
    const info = await t.hub.info();
    const client = BlobServiceClient.fromConnectionString(info.storageConnectionString);
    return (await client.getContainerClient(info.fileUploadContainer).getBlobClient(blobName).downloadToBuffer()).toString();
  }

  const uploadsIn = (sql: string) => (t.hub.store.db.prepare(sql).get() as { n: number }).n;
  const sasParams = (sasToken: string) => new URLSearchParams(sasToken.replace(/^\?/, ''));

  test('info names the embedded storage; uploadToBlob over MQTT puts the file in Azurite and the service is notified', async () => {
    const info = await t.hub.info();
    assert.match(info.storageConnectionString, new RegExp(`BlobEndpoint=https://${t.host.replace(/\./g, '\\.')}:10000/devstoreaccount1`));
    assert.equal(info.fileUploadContainer, 'fileuploads');
    const body = 'hello from the camera';
    await mqttClient.uploadToBlob('pictures/one.txt', Readable.from([Buffer.from(body)]), body.length);
    assert.equal(await readBlob('camera/pictures/one.txt'), body);
    const n = await eventually(() => notifications.find((x) => x.blobName === 'camera/pictures/one.txt'));
    assert.equal(n.deviceId, 'camera');
    assert.equal(n.blobSizeInBytes, body.length);
    assert.equal(n.blobUri, `https://${t.host}:10000/devstoreaccount1/fileuploads/camera/pictures/one.txt`);
    assert.ok(Date.parse(n.lastUpdatedTime) > 0 && Date.parse(n.enqueuedTimeUtc) >= Date.parse(n.lastUpdatedTime) - 1000);
  });

  test('Http: getBlobSharedAccessSignature, upload with @azure/storage-blob, notifyBlobUploadStatus (size from the blob, not the device)', async () => {
    const p: any = await httpClient.getBlobSharedAccessSignature('log.bin');
    assert.equal(p.hostName, `${t.host}:10000/devstoreaccount1`);
    assert.equal(p.containerName, 'fileuploads');
    assert.equal(p.blobName, 'camera/log.bin');
    assert.equal(sasParams(p.sasToken).get('sp'), 'rcw');
    const blob = new BlockBlobClient(`https://${p.hostName}/${p.containerName}/${p.blobName}${p.sasToken}`, newPipeline(new AnonymousCredential()));
    await blob.upload('0123456789', 10);
    await httpClient.notifyBlobUploadStatus(p.correlationId, true, 200, 'lies about nothing');
    const n = await eventually(() => notifications.find((x) => x.blobName === 'camera/log.bin'));
    assert.equal(n.blobSizeInBytes, 10);
    // Completed once: a second completion of the same upload is refused.
    await assert.rejects(httpClient.notifyBlobUploadStatus(p.correlationId, true, 200, 'again'));
  });

  test('the REST form with the correlation id in the body; bad input changes nothing', async () => {
    const token = createSasToken(`${t.host}/devices/camera`, deviceKey, Math.floor(Date.now() / 1000) + 600);
    const headers = { authorization: token, 'content-type': 'application/json' };
    const start = await rawRequest(t.host, 'POST', `/devices/camera/files?${API}`, { headers, body: JSON.stringify({ blobName: 'rest.txt' }) });
    assert.equal(start.status, 200);
    const bad = await rawRequest(t.host, 'POST', `/devices/camera/files?${API}`, { headers, body: JSON.stringify({}) });
    assert.equal(bad.status, 400);
    const wrong = await rawRequest(t.host, 'POST', `/devices/camera/files/notifications?${API}`, { headers, body: JSON.stringify({ correlationId: 'nope', isSuccess: true }) });
    assert.equal(wrong.status, 400);
    const noAuth = await rawRequest(t.host, 'POST', `/devices/camera/files?${API}`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ blobName: 'x' }) });
    assert.equal(noAuth.status, 401);
    // A failed upload frees its slot and notifies nobody.
    const done = await rawRequest(t.host, 'POST', `/devices/camera/files/notifications?${API}`, {
      headers,
      body: JSON.stringify({ correlationId: start.json.correlationId, isSuccess: false, statusCode: 500, statusDescription: 'failed' }),
    });
    assert.equal(done.status, 204);
    assert.equal(uploadsIn('SELECT count(*) AS n FROM file_uploads'), 0);
  });

  test("the hub's system-assigned identity: a user delegation SAS whose skoid is the hub's principal", async () => {
    const state = await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [uai.resourceId!] });
    t.hub.fileUploadSettings.set(settings((s) => (s.storageEndpoints.$default.authenticationType = 'identityBased')));
    const p: any = await httpClient.getBlobSharedAccessSignature('system.txt');
    assert.equal(sasParams(p.sasToken).get('skoid'), state.systemAssigned!.principalId);
    assert.equal(sasParams(p.sasToken).get('sktid'), t.hub.identity.tenancy.tenantId);
    await mqttClient.uploadToBlob('system2.txt', Readable.from([Buffer.from('abc')]), 3);
    assert.equal(await readBlob('camera/system2.txt'), 'abc');
    await eventually(() => notifications.find((x) => x.blobName === 'camera/system2.txt'));
    await httpClient.notifyBlobUploadStatus(p.correlationId, false, 500, 'unused');
  });

  test('a user-assigned identity (storage without a key): skoid is that identity', async () => {
    t.hub.fileUploadSettings.set(
      settings((s) => {
        s.storageEndpoints.$default.authenticationType = 'identityBased';
        s.storageEndpoints.$default.identity = { userAssignedIdentity: uai.resourceId! };
      }),
    );
    const p: any = await httpClient.getBlobSharedAccessSignature('user.txt');
    assert.equal(sasParams(p.sasToken).get('skoid'), uai.principalId);
    assert.equal(sasParams(p.sasToken).get('sig') !== null, true);
    const blob = new BlockBlobClient(`https://${p.hostName}/${p.containerName}/${p.blobName}${p.sasToken}`, newPipeline(new AnonymousCredential()));
    await blob.upload('uai', 3);
    await httpClient.notifyBlobUploadStatus(p.correlationId, true, 201, 'ok');
    assert.equal((await eventually(() => notifications.find((x) => x.blobName === 'camera/user.txt'))).blobSizeInBytes, 3);
    assert.equal(await readBlob('camera/user.txt'), 'uai');
  });

  test('an identity the hub does not have: the device is refused, nothing is held', async () => {
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: [] });
    t.hub.fileUploadSettings.set(settings((s) => (s.storageEndpoints.$default.authenticationType = 'identityBased')));
    await assert.rejects(httpClient.getBlobSharedAccessSignature('nobody.txt'), (e: any) => {
      assert.match(String(e.responseBody ?? e.message), /system-assigned identity/);
      return true;
    });
    assert.equal(uploadsIn(`SELECT count(*) AS n FROM file_uploads WHERE blob_name = 'camera/nobody.txt'`), 0);
  });

  test('notifications disabled: the upload works, the service hears nothing', async () => {
    t.hub.fileUploadSettings.set(settings((s) => (s.enableFileUploadNotifications = false)));
    await mqttClient.uploadToBlob('quiet.txt', Readable.from([Buffer.from('shh')]), 3);
    assert.equal(await readBlob('camera/quiet.txt'), 'shh');
    // A later upload with notifications on arrives; the quiet one never does.
    t.hub.fileUploadSettings.set(settings());
    await mqttClient.uploadToBlob('loud.txt', Readable.from([Buffer.from('hey')]), 3);
    await eventually(() => notifications.find((x) => x.blobName === 'camera/loud.txt'));
    assert.equal(notifications.some((x) => x.blobName === 'camera/quiet.txt'), false);
  });

  test('an expired SAS is refused by the storage, and its slot frees itself', async () => {
    t.hub.fileUploadSettings.set(settings((s) => (s.storageEndpoints.$default.sasTtlAsIso8601 = 'PT1S')));
    const p: any = await httpClient.getBlobSharedAccessSignature('late.txt');
    await new Promise((r) => setTimeout(r, 2500));
    const blob = new BlockBlobClient(`https://${p.hostName}/${p.containerName}/${p.blobName}${p.sasToken}`, newPipeline(new AnonymousCredential(), { retryOptions: { maxTries: 1 } }));
    await assert.rejects(blob.upload('too late', 8), (e: any) => e.statusCode === 403);
    await eventually(async () => (uploadsIn(`SELECT count(*) AS n FROM file_uploads WHERE blob_name = 'camera/late.txt'`)) === 0);
    t.hub.fileUploadSettings.set(settings());
  });

  test('the 11th upload in progress is refused with 403006; completing one frees a slot', async () => {
    const d = await createDevice(t, 'busy');
    const busy = Client.fromConnectionString(d.connectionString, deviceHttp.Http);
    await busy.open();
    try {
      const started = [];
      for (let i = 0; i < 10; i++) started.push(await busy.getBlobSharedAccessSignature(`f${i}.txt`));
      const token = createSasToken(`${t.host}/devices/busy`, d.key, Math.floor(Date.now() / 1000) + 600);
      const eleventh = await rawRequest(t.host, 'POST', `/devices/busy/files?${API}`, { headers: { authorization: token, 'content-type': 'application/json' }, body: JSON.stringify({ blobName: 'f10.txt' }) });
      assert.equal(eleventh.status, 403);
      assert.equal(eleventh.headers['iothub-errorcode'], 'DeviceMaximumActiveFileUploadLimitExceeded');
      await assert.rejects(busy.getBlobSharedAccessSignature('f10.txt'));
      await busy.notifyBlobUploadStatus(started[0]!.correlationId, false, 500, 'gave up');
      const again = await busy.getBlobSharedAccessSignature('f10.txt');
      assert.equal(again.blobName, 'busy/f10.txt');
    } finally {
      await busy.close();
    }
  });
  test('the hub resource is the writer: file-upload settings changed with @azure/arm-iothub apply at once', async () => {
    const arm = new IotHubClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const name = t.hub.config.hubName;
    const hub = await arm.iotHubResource.get(defaultGroup(t), name);
    assert.equal(hub.properties!.enableFileUploadNotifications, true, 'seeded from the config file at first start');
    hub.properties!.storageEndpoints!.$default!.sasTtlAsIso8601 = 'PT2H';
    await arm.iotHubResource.beginCreateOrUpdateAndWait(defaultGroup(t), name, hub);
    const expiresInHours = async () => {
      const p: any = await httpClient.getBlobSharedAccessSignature('ttl.bin');
      await httpClient.notifyBlobUploadStatus(p.correlationId, false, 500, 'only looking at the SAS');
      return (Date.parse(sasParams(p.sasToken).get('se')!) - Date.now()) / 3_600_000;
    };
    const hours = await expiresInHours();
    assert.ok(hours > 1.9 && hours <= 2.01, `SAS valid for ${hours} h`);
    assert.equal(t.hub.fileUploadSettings.current().storageEndpoints.$default.sasTtlAsIso8601, 'PT2H');
    // Bad input through ARM changes nothing.
    const bad = await arm.iotHubResource.get(defaultGroup(t), name);
    bad.properties!.storageEndpoints!.$default!.sasTtlAsIso8601 = 'two hours';
    await assert.rejects(arm.iotHubResource.beginCreateOrUpdateAndWait(defaultGroup(t), name, bad));
    assert.equal(t.hub.fileUploadSettings.current().storageEndpoints.$default.sasTtlAsIso8601, 'PT2H');
  });
});
