import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite/index.js';
import { START_SLICE } from '../src/store/sqlite/jobs.js';
import { Registry } from '../src/hub/registry/registry.js';
import { parseCondition } from '../src/hub/query/parser.js';
import type { Job } from '../src/hub/jobs/types.js';
import { countTurns } from './support/turns.js';

/**
 * A job's start on real SQLite: its device jobs are created START_SLICE devices at a time with a
 * turn of the event loop between (a fleet's worth in one INSERT held the hub's thread), every
 * matching device once, and a start run again (a resume after a restart in the middle of one)
 * adds only what is missing. End to end with the SDK's JobClient: jobs.sdk.test.ts.
 */
describe('jobs: a start creates its device jobs a slice per turn of the event loop', () => {
  let dir: string;
  let store: SqliteStore;
  const DEVICES = START_SLICE * 2 + 300;
  const KEY = Buffer.alloc(32, 3).toString('base64');
  const job = (jobId: string, queryCondition: string): Job => ({
    jobId,
    type: 'scheduleUpdateTwin',
    queryCondition,
    createdTime: new Date().toISOString(),
    startTime: new Date().toISOString(),
    maxExecutionTimeInSeconds: 3600,
    status: 'running',
    updateTwin: { etag: '*', tags: { wave: 1 } },
    deviceJobStatistics: { deviceCount: 0, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 0 },
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleethub-jobstart-'));
    store = openSqliteStore(join(dir, 'fleethub.db'));
    const registry = new Registry(store.devices, store.modules);
    store.db.exec('BEGIN');
    for (let i = 0; i < DEVICES; i++) {
      await registry.putDevice(`js-${String(i).padStart(5, '0')}`, { deviceId: `js-${String(i).padStart(5, '0')}`, authentication: { symmetricKey: { primaryKey: KEY, secondaryKey: KEY } } }, undefined);
    }
    store.db.exec('COMMIT');
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pendingOf = (jobId: string) =>
    (store.db.prepare("SELECT device_id FROM device_jobs WHERE job_id = ? AND status = 'pending' ORDER BY device_id").all(jobId) as { device_id: string }[]).map((r) => r.device_id);

  test(`${DEVICES} matching devices: 3 slices, the event loop turning between them; each device once`, async () => {
    const j = job('wave-1', "deviceId != 'js-00007'");
    await store.jobs.insert({ ...j, status: 'queued' });
    const clock = countTurns();
    const created = await store.jobs.start(j, parseCondition(j.queryCondition));
    const turns = clock.stop();
    assert.equal(created, DEVICES - 1);
    assert.ok(turns >= 2, `the event loop turned ${turns} times during the start`);
    const pending = pendingOf('wave-1');
    assert.equal(pending.length, DEVICES - 1);
    assert.ok(!pending.includes('js-00007'));
    assert.equal((await store.jobs.get('wave-1'))?.status, 'running');
  });

  test('started again (a resume): nothing twice, what was missing added', async () => {
    const j = job('wave-2', "deviceId != 'none'");
    await store.jobs.insert({ ...j, status: 'queued' });
    // As if the first slice had committed before a restart.
    store.db.prepare("DELETE FROM device_jobs WHERE job_id = 'wave-2'").run();
    store.db
      .prepare("INSERT INTO device_jobs (device_id, job_id, status, doc) SELECT device_id, 'wave-2', 'pending', json_object('deviceId', device_id) FROM devices ORDER BY device_id LIMIT ?")
      .run(START_SLICE);
    const created = await store.jobs.start(j, parseCondition(j.queryCondition));
    assert.equal(created, DEVICES - START_SLICE);
    assert.equal(pendingOf('wave-2').length, DEVICES);
  });

  test('a condition no device matches creates nothing and still starts the job', async () => {
    const j = job('wave-3', "tags.building = 'none'");
    await store.jobs.insert({ ...j, status: 'queued' });
    assert.equal(await store.jobs.start(j, parseCondition(j.queryCondition)), 0);
    assert.equal((await store.jobs.get('wave-3'))?.status, 'running');
  });
});
