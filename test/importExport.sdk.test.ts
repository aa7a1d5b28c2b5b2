import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import type { ContainerClient } from '@azure/storage-blob';
import { rawRequest, startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';
import { createDevice } from './support/devices.js';
import { sasContainer } from './support/blobs.js';
import type { Principal } from '../src/identity/types.js';

const API = 'api-version=2021-04-12';

describe('bulk import/export jobs with the unmodified service SDK over the embedded Azurite', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let second: iothub.Registry;
  let storageConnectionString: string;
  let hubId: string;
  let uai: Principal;

  before(async () => {
    t = await startTestHub({ ports: { storage: 10000 } as any }, { extraHubs: 1 });
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    second = iothub.Registry.fromConnectionString(await t.hubs[0]!.connectionString());
    storageConnectionString = (await t.hub.info()).storageConnectionString;
    hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
    const { subscriptionId } = t.hub.identity.tenancy;
    uai = await t.hub.identity.principals.create('userAssigned', `/subscriptions/${subscriptionId}/resourceGroups/fleethub/providers/Microsoft.ManagedIdentity/userAssignedIdentities/exporter`, 'exporter');
  });
  after(async () => {
    await t?.close();
  });

  async function container(name: string): Promise<{ client: ContainerClient; sasUri: string; plainUri: string }> {
    const c = await sasContainer(storageConnectionString, name);
    return { ...c, plainUri: c.client.url };
  }

  async function text(c: ContainerClient, blob: string): Promise<string> {
    return (await c.getBlobClient(blob).downloadToBuffer()).toString();
  }

  async function finished(reg: iothub.Registry, jobId: string): Promise<any> {
    for (let i = 0; i < 400; i++) {
      const job = (await reg.getJob(jobId)) as any;
      if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`job ${jobId} did not finish`);
  }

  test('export then import into a second hub reproduces devices, modules, keys and twins', async () => {
    const d1 = await createDevice(t, 'exp-1');
    await createDevice(t, 'exp-2', { status: 'disabled', capabilities: { iotEdge: true } });
    await registry.addModule({ deviceId: 'exp-2', moduleId: 'mod' } as any);
    await registry.updateTwin('exp-1', { tags: { site: 'north' }, properties: { desired: { rate: 5 } } } as any, '*');
    await t.hub.twins.updateReportedProperties('exp-1', undefined, { firmware: '1.2' });
    const c = await container('export1');
    const job = (await registry.exportDevicesToBlob(c.sasUri, false)) as any;
    assert.equal(job.type, 'export');
    assert.ok(['enqueued', 'running'].includes(job.status));
    const done = await finished(registry, job.jobId);
    assert.equal(done.status, 'completed', done.failureReason);
    assert.equal(done.progress, 100);
    const lines = (await text(c.client, 'devices.txt')).trim().split('\n').map((l) => JSON.parse(l));
    const one = lines.find((l) => l.id === 'exp-1' && !l.moduleId);
    assert.equal(one.authentication.symmetricKey.primaryKey, d1.key);
    assert.deepEqual(one.tags, { site: 'north' });
    assert.equal(one.properties.desired.rate, 5);
    assert.equal(one.properties.reported.firmware, '1.2');
    assert.ok(lines.find((l) => l.id === 'exp-2' && l.moduleId === 'mod'));

    const imported = (await second.importDevicesFromBlob(c.sasUri, c.sasUri)) as any;
    const idone = await finished(second, imported.jobId);
    assert.equal(idone.status, 'completed', idone.failureReason);
    const copy = (await second.get('exp-1')).responseBody as any;
    assert.equal(copy.authentication.symmetricKey.primaryKey, d1.key);
    const twin = (await second.getTwin('exp-1')).responseBody as any;
    assert.deepEqual(twin.tags, { site: 'north' });
    assert.equal(twin.properties.desired.rate, 5);
    assert.equal(twin.properties.reported.firmware, '1.2');
    const two = (await second.get('exp-2')).responseBody as any;
    assert.equal(two.status, 'disabled');
    assert.equal(two.capabilities.iotEdge, true);
    assert.equal(((await second.getModule('exp-2', 'mod')).responseBody as any).moduleId, 'mod');
  });

  test('excludeKeysInExport leaves the keys out', async () => {
    const c = await container('export2');
    const job = (await registry.exportDevicesToBlob(c.sasUri, true)) as any;
    assert.equal((await finished(registry, job.jobId)).status, 'completed');
    for (const l of (await text(c.client, 'devices.txt')).trim().split('\n').map((x) => JSON.parse(x))) {
      assert.equal(l.authentication.symmetricKey.primaryKey, null);
    }
  });

  test('every import mode; etag mismatches and bad lines go to importErrors.log, the rest is applied', async () => {
    for (const id of ['m-update', 'm-upd-etag', 'm-upd-etag-bad', 'm-delete', 'm-del-etag', 'm-del-etag-bad', 'm-twin', 'm-twin-etag', 'm-twin-etag-bad', 'm-cou-etag-bad', 'm-exists']) await createDevice(t, id);
    const etag = async (id: string) => ((await registry.get(id)).responseBody as any).etag as string;
    const twinEtag = async (id: string) => ((await registry.getTwin(id)).responseBody as any).etag as string;
    const input = [
      { id: 'm-create', importMode: 'create', status: 'enabled' },
      { id: 'm-exists', importMode: 'create' },
      { id: 'm-update', importMode: 'update', status: 'disabled' },
      { id: 'm-missing', importMode: 'update' },
      { id: 'm-upd-etag', importMode: 'updateIfMatchETag', eTag: await etag('m-upd-etag'), status: 'disabled' },
      { id: 'm-upd-etag-bad', importMode: 'updateIfMatchETag', eTag: 'AAAAAAAAAAA=', status: 'disabled' },
      { id: 'm-cou', importMode: 'createOrUpdate', tags: { a: 1 } },
      { id: 'm-cou-etag', importMode: 'createOrUpdateIfMatchETag' },
      { id: 'm-cou-etag-bad', importMode: 'createOrUpdateIfMatchETag', eTag: 'AAAAAAAAAAA=', status: 'disabled' },
      { id: 'm-delete', importMode: 'delete' },
      { id: 'm-del-etag', importMode: 'deleteIfMatchETag', eTag: await etag('m-del-etag') },
      { id: 'm-del-etag-bad', importMode: 'deleteIfMatchETag', eTag: 'AAAAAAAAAAA=' },
      { id: 'm-twin', importMode: 'updateTwin', tags: { t: 'x' }, properties: { desired: { d: 1 } } },
      { id: 'm-twin-etag', importMode: 'updateTwinIfMatchETag', twinETag: await twinEtag('m-twin-etag'), tags: { t: 'y' } },
      { id: 'm-twin-etag-bad', importMode: 'updateTwinIfMatchETag', twinETag: 'AAAAAAAAAAA=', tags: { t: 'z' } },
    ]
      .map((l) => JSON.stringify(l))
      .concat(['this is not json'])
      .join('\n');
    const c = await container('import1');
    await c.client.getBlockBlobClient('devices.txt').upload(input, Buffer.byteLength(input));
    const job = (await registry.importDevicesFromBlob(c.sasUri, c.sasUri)) as any;
    assert.equal((await finished(registry, job.jobId)).status, 'completed');
    const status = async (id: string) => ((await registry.get(id)).responseBody as any).status;
    const exists = async (id: string) => registry.get(id).then(() => true, () => false);
    assert.equal(await status('m-create'), 'enabled');
    assert.equal(await status('m-update'), 'disabled');
    assert.equal(await status('m-upd-etag'), 'disabled');
    assert.equal(await status('m-upd-etag-bad'), 'enabled');
    assert.deepEqual(((await registry.getTwin('m-cou')).responseBody as any).tags, { a: 1 });
    assert.equal(await exists('m-cou-etag'), true);
    assert.equal(await status('m-cou-etag-bad'), 'enabled');
    assert.equal(await exists('m-delete'), false);
    assert.equal(await exists('m-del-etag'), false);
    assert.equal(await exists('m-del-etag-bad'), true);
    assert.equal(await exists('m-missing'), false);
    const twin = (await registry.getTwin('m-twin')).responseBody as any;
    assert.deepEqual(twin.tags, { t: 'x' });
    assert.equal(twin.properties.desired.d, 1);
    assert.deepEqual(((await registry.getTwin('m-twin-etag')).responseBody as any).tags, { t: 'y' });
    assert.equal(((await registry.getTwin('m-twin-etag-bad')).responseBody as any).tags?.t, undefined);
    const errors = (await text(c.client, 'importErrors.log')).trim().split('\n').map((l) => JSON.parse(l));
    const byId = (id: string) => errors.find((e) => e.deviceId === id);
    assert.equal(byId('m-exists').errorCode, 'DeviceAlreadyExists');
    assert.equal(byId('m-missing').errorCode, 'DeviceNotFound');
    for (const id of ['m-upd-etag-bad', 'm-cou-etag-bad', 'm-del-etag-bad', 'm-twin-etag-bad']) assert.equal(byId(id)?.errorCode, 'PreconditionFailed', id);
    assert.equal(byId('')?.errorCode, 'IotHubFormatError');
    assert.equal(errors.length, 7);
  });

  test('identity rules: none on the hub fails the job and says so; the system identity; a user-assigned one, attached or not', async () => {
    const c = await container('identity');
    const run = async (...args: any[]) => finished(registry, ((await (registry.exportDevicesToBlobByIdentity as any)(c.plainUri, false, ...args)) as any).jobId);
    const none = await run();
    assert.equal(none.status, 'failed');
    assert.match(none.failureReason, /system-assigned identity/);
    assert.equal(none.storageAuthenticationType, 'identityBased');
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [] });
    assert.equal((await run()).status, 'completed');
    const notAttached = await run(uai.resourceId!);
    assert.equal(notAttached.status, 'failed');
    assert.match(notAttached.failureReason, /not attached/);
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: [uai.resourceId!] });
    const withUai = await run(uai.resourceId!);
    assert.equal(withUai.status, 'completed', withUai.failureReason);
    assert.deepEqual(withUai.identity, { userAssignedIdentity: uai.resourceId });
    // Any letter case of storageAuthenticationType; import by identity too.
    const imported = ((await (registry.importDevicesFromBlobByIdentity as any)(c.plainUri, c.plainUri, uai.resourceId!)) as any).jobId;
    assert.equal((await finished(registry, imported)).status, 'completed');
  });

  test('one import or export at a time; a running job can be cancelled; jobs are listed', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: `bulk-${i}`, importMode: 'createOrUpdate' })).join('\n');
    const c = await container('big');
    await c.client.getBlockBlobClient('devices.txt').upload(lines, Buffer.byteLength(lines));
    const job = (await registry.importDevicesFromBlob(c.sasUri, c.sasUri)) as any;
    await assert.rejects(registry.exportDevicesToBlob(c.sasUri, false), (e: any) => /Job quota has been exceeded/.test(e.message));
    const cancelled = (await registry.cancelJob(job.jobId)) as any;
    assert.equal(cancelled.status, 'cancelled');
    assert.equal((await finished(registry, job.jobId)).status, 'cancelled');
    const list = (await registry.listJobs()).responseBody as unknown as any[];
    assert.ok(list.some((j) => j.jobId === job.jobId));
    const missing = await rawRequest(t.host, 'GET', `/jobs/nope?${API}`, { headers: { authorization: '' } });
    assert.equal(missing.status, 401);
    await assert.rejects(registry.getJob('no-such-job'));
  });

  test('fleethub export and import: the CLI runs the jobs through the running hub and shows their progress', async () => {
    const c = await container('cli');
    const exported = await fleethub(['export', '--container-uri', c.sasUri, '--exclude-keys', '--json', '--data', t.dataDir]);
    assert.equal(JSON.parse(exported.stdout).status, 'completed', exported.stderr);
    assert.match(exported.stderr, /export \[#+\] 100% completed/);
    assert.match(await text(c.client, 'devices.txt'), /"id":"exp-1"/);
    const imported = await fleethub(['import', '--container-uri', c.sasUri, '--json', '--data', t.dataDir]);
    assert.equal(JSON.parse(imported.stdout).status, 'completed', imported.stderr);
  });

  test('a restart during an import resumes it from its checkpoint: every line applied once', async () => {
    const n = 8000;
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ id: `resume-${i}`, importMode: 'create', tags: { i } })).join('\n');
    const c = await container('resume');
    await c.client.getBlockBlobClient('devices.txt').upload(lines, Buffer.byteLength(lines));
    const job = (await registry.importDevicesFromBlob(c.sasUri, c.sasUri)) as any;
    let j: any;
    for (let i = 0; i < 400; i++) {
      j = (await registry.getJob(job.jobId)) as any;
      if (j.progress >= 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(j.status, 'running', 'the hub stops in the middle of the import');
    assert.ok(j.progress < 100);
    await t.restart();
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    const done = await finished(registry, job.jobId);
    assert.equal(done.status, 'completed', done.failureReason);
    assert.equal(((await registry.getRegistryStatistics()).responseBody as any).totalDeviceCount >= n, true);
    const errors = await c.client.getBlobClient('importErrors.log').exists();
    assert.equal(errors, false, 'no line was applied twice (a second create would have logged DeviceAlreadyExists)');
    assert.deepEqual(((await registry.getTwin(`resume-${n - 1}`)).responseBody as any).tags, { i: n - 1 });
    const stored = t.hub.store.db.prepare('SELECT checkpoint FROM bulk_jobs WHERE job_id = ?').get(job.jobId) as { checkpoint: string };
    assert.equal(JSON.parse(stored.checkpoint).lines, n, 'each line was read once across the restart');
  });

});
