import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { sdkError } from './support/sdk.js';

const { Registry, JobClient } = iothub;

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function queryAll(registry: iothub.Registry, text: string): Promise<any[]> {
  const q = registry.createQuery(text, 1000);
  const items: any[] = [];
  while (q.hasMoreResults) items.push(...((await q.next((q.continuationToken ?? undefined) as string)).result as any[]));
  return items;
}

async function seed(registry: iothub.Registry, n: number, tag: (i: number) => Record<string, unknown>): Promise<void> {
  for (let start = 0; start < n; start += 100) {
    const batch = Array.from({ length: Math.min(100, n - start) }, (_, k) => ({ deviceId: `d-${String(start + k).padStart(3, '0')}` }));
    await registry.addDevices(batch as any);
  }
  for (let i = 0; i < n; i++) await registry.updateTwin(`d-${String(i).padStart(3, '0')}`, { tags: tag(i) }, '*');
}

const job = async (jobs: iothub.JobClient, id: string) => (await jobs.getJob(id)).jobStatus as any;

describe('jobs through the unmodified azure-iothub JobClient', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let jobs: iothub.JobClient;

  before(async () => {
    t = await startTestHub();
    const cs = await t.connectionString();
    registry = Registry.fromConnectionString(cs);
    jobs = JobClient.fromConnectionString(cs);
    await seed(registry, 12, (i) => ({ building: i % 2 ? 43 : 44, floor: i % 3 }));
  });
  after(() => t.close());

  test('a twin-update job over a tag query reaches every matching device and no other', async () => {
    const { jobStatus } = await jobs.scheduleTwinUpdate('fw-43', 'tags.building = 43', {
      etag: '*',
      tags: { campaign: 'spring' },
      properties: { desired: { firmware: { version: '2.0.0' } } },
    } as any);
    assert.equal((jobStatus as any).jobId, 'fw-43');
    assert.equal((jobStatus as any).type, 'scheduleUpdateTwin');
    assert.ok(['queued', 'running', 'completed'].includes((jobStatus as any).status));
    const done = await until('the job to complete', () => job(jobs, 'fw-43'), (j) => j.status === 'completed');
    assert.deepEqual(done.deviceJobStatistics, { deviceCount: 6, failedCount: 0, succeededCount: 6, runningCount: 0, pendingCount: 0 });
    assert.ok(done.endTime >= done.startTime);

    const updated = await queryAll(registry, "SELECT deviceId, tags.building AS building FROM devices WHERE properties.desired.firmware.version = '2.0.0' AND tags.campaign = 'spring'");
    assert.equal(updated.length, 6);
    assert.ok(updated.every((d) => d.building === 43));
    const untouched = await queryAll(registry, 'SELECT * FROM devices WHERE tags.building = 44 AND IS_DEFINED(properties.desired.firmware)');
    assert.deepEqual(untouched, []);

    // Per-device records, FROM devices.jobs.
    const records = await queryAll(registry, "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'fw-43'");
    assert.equal(records.length, 6);
    assert.ok(records.every((r) => r.status === 'completed' && r.jobType === 'scheduleUpdateTwin' && r.jobId === 'fw-43'));
    const q = registry.createQuery("SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'd-001'");
    const { message } = await q.next();
    assert.equal(message.headers['x-ms-item-type'], 'DeviceJob');

    // JobClient.createQuery lists jobs by type and status.
    const listed = await jobs.createQuery('scheduleUpdateTwin', 'completed' as any).next();
    assert.equal(listed.message.headers['x-ms-item-type'], 'JobResponse');
    assert.ok((listed.result as any[]).some((j) => j.jobId === 'fw-43'));
    const none = await jobs.createQuery('scheduleDeviceMethod').next();
    assert.ok(!(none.result as any[]).some((j) => j.jobId === 'fw-43'));
  });

  test('JobClient.createQuery pages through jobs with x-ms-continuation', async () => {
    for (const id of ['page-a', 'page-b', 'page-c']) await jobs.scheduleTwinUpdate(id, "deviceId = 'd-011'", { tags: { paged: id } } as any);
    const q = jobs.createQuery(undefined, undefined, 2);
    const seen: string[] = [];
    let pages = 0;
    while (q.hasMoreResults && pages < 20) {
      const { result } = await q.next((q.continuationToken ?? undefined) as string);
      assert.ok((result as any[]).length <= 2, `page of ${(result as any[]).length}`);
      seen.push(...(result as any[]).map((j) => j.jobId));
      pages++;
    }
    for (const id of ['page-a', 'page-b', 'page-c', 'fw-43']) assert.ok(seen.includes(id), id);
    assert.equal(new Set(seen).size, seen.length, 'no job twice');
    assert.ok(pages >= Math.ceil(seen.length / 2), `${pages} pages for ${seen.length} jobs`);
    assert.ok(seen.length >= 4);
    await assert.rejects(jobs.createQuery('scheduleUpdateTwin', 'sleeping' as any).next(), sdkError('ArgumentError'));
  });

  test('a job with a later start time is scheduled, then runs', async () => {
    const start = new Date(Date.now() + 1500);
    const { jobStatus } = await jobs.scheduleTwinUpdate('later', "deviceId IN ['d-000', 'd-002']", { tags: { later: true } } as any, start, 60);
    // IoT Hub answers the PUT with 'queued'; the job then waits for its start time as 'scheduled'.
    assert.equal((jobStatus as any).status, 'queued');
    assert.equal((await job(jobs, 'later')).status, 'scheduled');
    assert.equal((jobStatus as any).maxExecutionTimeInSeconds, 60);
    assert.equal((await queryAll(registry, 'SELECT * FROM devices WHERE tags.later = true')).length, 0);
    const done = await until('the scheduled job to complete', () => job(jobs, 'later'), (j) => j.status === 'completed');
    assert.ok(Date.parse(done.endTime) >= start.getTime());
    assert.deepEqual((await queryAll(registry, 'SELECT deviceId FROM devices WHERE tags.later = true')).map((d) => d.deviceId), ['d-000', 'd-002']);
  });

  test('a twin patch as the SDK samples build it (empty reported, etag *) is accepted and applied', async () => {
    await jobs.scheduleTwinUpdate('sample-patch', "deviceId = 'd-005'", { etag: '*', tags: { key: 'value2' }, properties: { desired: {}, reported: {} } } as any, new Date(), 120);
    await until('the job to complete', () => job(jobs, 'sample-patch'), (j) => j.status === 'completed');
    const twin = (await registry.getTwin('d-005')).responseBody as any;
    assert.equal(twin.tags.key, 'value2');
    assert.equal(twin.properties.reported.$version, 1);
  });

  test('twin-update and method jobs an hour ahead are answered queued, then cancel', async () => {
    const inAnHour = new Date(Date.now() + 3600_000);
    const twinJob = await jobs.scheduleTwinUpdate('cancel-twin', "deviceId = 'd-005'", { etag: '*', tags: {}, properties: { desired: {}, reported: {} } } as any, inAnHour, 120);
    assert.equal((twinJob.jobStatus as any).jobId, 'cancel-twin');
    assert.equal((twinJob.jobStatus as any).status, 'queued');
    const methodJob = await jobs.scheduleDeviceMethod('cancel-method', "deviceId = 'd-005'", { methodName: 'testMethod', payload: null, timeoutInSeconds: 30 } as any, inAnHour, 120);
    assert.equal((methodJob.jobStatus as any).status, 'queued');
    for (const id of ['cancel-twin', 'cancel-method']) {
      assert.equal((await job(jobs, id)).status, 'scheduled');
      await jobs.cancelJob(id);
      assert.equal((await job(jobs, id)).status, 'cancelled');
    }
  });

  test('bad jobs are refused with the SDK’s errors and leave nothing behind', async () => {
    await assert.rejects(jobs.scheduleTwinUpdate('bad-q', 'tags.building = = 43', { tags: { x: 1 } } as any), sdkError('ArgumentError', /Syntax error at position 17/));
    await assert.rejects(jobs.getJob('bad-q'), (e: Error) => /Not found|not found/.test(e.message));
    await assert.rejects(jobs.scheduleTwinUpdate('bad-patch', 'tags.building = 43', { tags: { 'a.b': 1 } } as any), sdkError('ArgumentError'));
    await assert.rejects(jobs.scheduleTwinUpdate('bad-reported', 'tags.building = 43', { properties: { reported: { a: 1 } } } as any), sdkError('ArgumentError'));
    await assert.rejects(jobs.scheduleDeviceMethod('bad-timeout', 'tags.building = 43', { methodName: 'reboot', responseTimeoutInSeconds: 1000 } as any), sdkError('ArgumentError'));
    await assert.rejects(jobs.scheduleTwinUpdate('fw-43', 'tags.building = 43', { tags: { x: 1 } } as any), sdkError('DeviceAlreadyExistsError', /JobAlreadyExists|already exists/));
    assert.deepEqual(await queryAll(registry, 'SELECT * FROM devices WHERE IS_DEFINED(tags.x)'), []);
  });

  test('a method job records a failure for each device that is not connected', async () => {
    await jobs.scheduleDeviceMethod('offline-reboot', "deviceId IN ['d-003', 'd-004']", { methodName: 'reboot', payload: { delay: 0 }, responseTimeoutInSeconds: 5 } as any);
    const done = await until('the job to finish', () => job(jobs, 'offline-reboot'), (j) => j.status === 'completed');
    assert.deepEqual(done.deviceJobStatistics, { deviceCount: 2, failedCount: 2, succeededCount: 0, runningCount: 0, pendingCount: 0 });
    assert.equal(done.cloudToDeviceMethod.methodName, 'reboot');
    const records = await queryAll(registry, "SELECT * FROM devices.jobs WHERE jobId = 'offline-reboot' AND status = 'failed'");
    assert.equal(records.length, 2);
    assert.equal(records[0].error.code, 'DeviceNotOnline');
  });
});

describe('long-running jobs: cancel, maximum execution time, restart', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let jobs: iothub.JobClient;

  before(async () => {
    // IoT Hub throttles job device operations; a low rate here makes jobs last long enough to interrupt.
    t = await startTestHub({ jobDeviceOperationsPerSecond: 20 });
    const cs = await t.connectionString();
    registry = Registry.fromConnectionString(cs);
    jobs = JobClient.fromConnectionString(cs);
    await seed(registry, 60, () => ({ fleet: 'slow' }));
  });
  after(() => t.close());

  test('cancel stops a running job: devices not yet reached are never updated', async () => {
    await jobs.scheduleTwinUpdate('to-cancel', "tags.fleet = 'slow'", { tags: { cancelTest: 1 } } as any);
    await until('a few devices to be updated', () => job(jobs, 'to-cancel'), (j) => j.deviceJobStatistics.succeededCount >= 3);
    const { jobStatus } = await jobs.cancelJob('to-cancel');
    assert.equal((jobStatus as any).status, 'cancelled');
    await new Promise((r) => setTimeout(r, 600));
    const after1 = (await queryAll(registry, 'SELECT COUNT() AS n FROM devices WHERE tags.cancelTest = 1'))[0].n;
    await new Promise((r) => setTimeout(r, 600));
    const after2 = (await queryAll(registry, 'SELECT COUNT() AS n FROM devices WHERE tags.cancelTest = 1'))[0].n;
    assert.equal(after2, after1, 'nothing more is updated once cancelled');
    assert.ok(after1 < 60, `only part of the fleet was updated (${after1})`);
    const final = await job(jobs, 'to-cancel');
    assert.equal(final.status, 'cancelled');
    assert.equal(final.deviceJobStatistics.succeededCount, after1);
    assert.equal(final.deviceJobStatistics.failedCount, 60 - after1);
    const cancelledRecords = await queryAll(registry, "SELECT * FROM devices.jobs WHERE jobId = 'to-cancel' AND status = 'cancelled'");
    assert.equal(cancelledRecords.length, 60 - after1);
  });

  test('a job that outlives maxExecutionTimeInSeconds fails, and the devices it did not reach are marked failed', async () => {
    await jobs.scheduleTwinUpdate('too-slow', "tags.fleet = 'slow'", { tags: { slowTest: 1 } } as any, new Date(), 1);
    const done = await until('the job to fail', () => job(jobs, 'too-slow'), (j) => j.status === 'failed');
    assert.match(done.failureReason, /maxExecutionTimeInSeconds/);
    const s = done.deviceJobStatistics;
    assert.equal(s.deviceCount, 60);
    assert.ok(s.succeededCount > 0 && s.succeededCount < 60, JSON.stringify(s));
    assert.equal(s.succeededCount + s.failedCount, 60);
  });

  test('the hub restarts mid-job and the job completes, each device updated', async () => {
    await jobs.scheduleTwinUpdate('survivor', "tags.fleet = 'slow'", { properties: { desired: { survived: true } } } as any);
    await until('the job to be part-way', () => job(jobs, 'survivor'), (j) => j.deviceJobStatistics.succeededCount >= 5);
    await t.restart();
    // The JobClient keeps its connection alive; the restarted hub needs new ones.
    jobs = JobClient.fromConnectionString(await t.connectionString());
    registry = Registry.fromConnectionString(await t.connectionString());
    const mid = await job(jobs, 'survivor');
    assert.equal(mid.status, 'running');
    assert.ok(mid.deviceJobStatistics.succeededCount < 60, 'the restart happened mid-job');
    const done = await until('the job to complete', () => job(jobs, 'survivor'), (j) => j.status === 'completed', 30000);
    assert.deepEqual(done.deviceJobStatistics, { deviceCount: 60, failedCount: 0, succeededCount: 60, runningCount: 0, pendingCount: 0 });
    const updated = await queryAll(registry, 'SELECT COUNT() AS n FROM devices WHERE properties.desired.survived = true');
    assert.deepEqual(updated, [{ n: 60 }]);
    // Each device got the patch once: desired $version moved by exactly one.
    const versions = await queryAll(registry, 'SELECT properties.desired.$version AS v, COUNT() AS n FROM devices GROUP BY properties.desired.$version');
    assert.deepEqual(versions, [{ v: 2, n: 60 }]);
  });
});
