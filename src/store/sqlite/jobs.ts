import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Db } from './database.js';
import type { JobStore } from '../index.js';
import type { Expr } from '../../hub/query/ast.js';
import type { DeviceJob, DeviceJobStatistics, DeviceJobStatus, Job, JobStatus, JobType } from '../../hub/jobs/types.js';
import { sourceOf, whereSql } from './queryCompiler.js';

/** Devices a job's start adds per statement (a turn of the event loop between them). Exported for tests. */
export const START_SLICE = 2000;

export class SqliteJobStore implements JobStore {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly updateStmt;
  private readonly statsStmt;
  private readonly unfinishedStmt;
  private readonly deviceJobsStmt;
  private readonly putDeviceJobStmt;
  private readonly moveStmt;
  private readonly addDeviceJobsStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare(
      `INSERT INTO jobs (job_id, type, status, created_time, doc) VALUES (@jobId, @type, @status, @createdTime, @doc) ON CONFLICT(job_id) DO NOTHING`,
    );
    this.getStmt = db.prepare<[string], { doc: string }>('SELECT doc FROM jobs WHERE job_id = ?');
    this.updateStmt = db.prepare('UPDATE jobs SET status = @status, doc = @doc WHERE job_id = @jobId');
    this.statsStmt = db.prepare<[string], { status: DeviceJobStatus; n: number }>(
      'SELECT status, COUNT(*) AS n FROM device_jobs WHERE job_id = ? GROUP BY status',
    );
    this.unfinishedStmt = db.prepare<[], { doc: string }>(`SELECT doc FROM jobs WHERE status IN ('queued', 'scheduled', 'running') ORDER BY created_time`);
    this.deviceJobsStmt = db.prepare<[string, string, number], { doc: string }>(
      'SELECT doc FROM device_jobs WHERE job_id = ? AND status = ? ORDER BY device_id LIMIT ?',
    );
    this.putDeviceJobStmt = db.prepare(
      `INSERT INTO device_jobs (device_id, job_id, status, doc) VALUES (@deviceId, @jobId, @status, @doc)
       ON CONFLICT(device_id, job_id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
    );
    this.addDeviceJobsStmt = db.prepare(
      `INSERT INTO device_jobs (device_id, job_id, status, doc)
       SELECT ids.value, @jobId, 'pending',
              json_object('deviceId', ids.value, 'jobId', @jobId, 'jobType', @type, 'status', 'pending',
                          'startTimeUtc', @now, 'endTimeUtc', @now, 'createdDateTimeUtc', @now, 'lastUpdatedDateTimeUtc', @now)
       FROM json_each(@ids) ids
       WHERE true
       ON CONFLICT(device_id, job_id) DO NOTHING`,
    );
    this.moveStmt = db.prepare(
      `UPDATE device_jobs SET status = @to,
         doc = json_set(doc, '$.status', @to, '$.lastUpdatedDateTimeUtc', @now, '$.endTimeUtc', @now,
                        '$.error', CASE WHEN @error IS NULL THEN json_extract(doc, '$.error') ELSE json(@error) END)
       WHERE job_id = @jobId AND status = @from`,
    );
  }

  async insert(job: Job): Promise<boolean> {
    return this.insertStmt.run({ jobId: job.jobId, type: job.type, status: job.status, createdTime: job.createdTime, doc: JSON.stringify(job) }).changes === 1;
  }

  async get(jobId: string): Promise<Job | undefined> {
    const row = this.getStmt.get(jobId);
    return row && this.withStatistics(JSON.parse(row.doc) as Job);
  }

  async update(job: Job): Promise<void> {
    this.updateStmt.run({ jobId: job.jobId, status: job.status, doc: JSON.stringify(job) });
  }

  async list(filter: { type?: JobType; status?: JobStatus }, limit: number, after?: string) {
    const rows = this.db
      .prepare<unknown[], { job_id: string; doc: string }>(
        `SELECT job_id, doc FROM jobs WHERE (@type IS NULL OR type = @type) AND (@status IS NULL OR status = @status)
         AND (@after IS NULL OR job_id > @after) ORDER BY job_id LIMIT @limit`,
      )
      .all({ type: filter.type ?? null, status: filter.status ?? null, after: after ?? null, limit: limit + 1 });
    const page = rows.slice(0, limit);
    return {
      jobs: page.map((r) => this.withStatistics(JSON.parse(r.doc) as Job)),
      next: rows.length > limit ? page[page.length - 1]!.job_id : undefined,
    };
  }

  async unfinished(): Promise<Job[]> {
    return this.unfinishedStmt.all().map((r) => this.withStatistics(JSON.parse(r.doc) as Job));
  }

  /**
   * Creates the job's device jobs (pending) for every device `condition` matches, then marks the
   * job running. In slices of START_SLICE devices, in device id order, a turn of the event loop
   * between them: one INSERT of 20,000 held the hub's thread 53 ms (a fleet of 100,000, a quarter
   * of a second). A start interrupted between slices is started again on resume: the slices that
   * committed are kept (ON CONFLICT DO NOTHING) and the rest added.
   */
  async start(job: Job, condition: Expr): Promise<number> {
    const where = whereSql({ from: 'devices', where: condition });
    const pick = this.db.prepare<{ after: string; limit: number }, { id: string }>(
      `SELECT q.device_id AS id FROM ${sourceOf('devices').fromFor(where)} WHERE (${where}) AND q.device_id > @after ORDER BY q.device_id LIMIT @limit`,
    );
    let created = 0;
    let after = '';
    for (;;) {
      const ids = pick.all({ after, limit: START_SLICE }).map((r) => r.id);
      if (ids.length > 0) created += this.addDeviceJobsStmt.run({ ids: JSON.stringify(ids), jobId: job.jobId, type: job.type, now: job.startTime }).changes;
      if (ids.length < START_SLICE) break;
      after = ids[ids.length - 1]!;
      await nextTurn();
    }
    this.updateStmt.run({ jobId: job.jobId, status: job.status, doc: JSON.stringify(job) });
    return created;
  }

  async deviceJobs(jobId: string, status: DeviceJobStatus, limit: number): Promise<DeviceJob[]> {
    return this.deviceJobsStmt.all(jobId, status, limit).map((r) => JSON.parse(r.doc) as DeviceJob);
  }

  async putDeviceJob(record: DeviceJob): Promise<void> {
    this.putDeviceJobStmt.run({ deviceId: record.deviceId, jobId: record.jobId, status: record.status, doc: JSON.stringify(record) });
  }

  async moveDeviceJobs(jobId: string, from: DeviceJobStatus, to: DeviceJobStatus, now: string, error?: DeviceJob['error']): Promise<number> {
    return this.moveStmt.run({ jobId, from, to, now, error: error ? JSON.stringify(error) : null }).changes;
  }

  private withStatistics(job: Job): Job {
    const stats: DeviceJobStatistics = { deviceCount: 0, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 0 };
    for (const { status, n } of this.statsStmt.all(job.jobId)) {
      stats.deviceCount += n;
      if (status === 'completed') stats.succeededCount += n;
      else if (status === 'failed' || status === 'cancelled') stats.failedCount += n;
      else if (status === 'running') stats.runningCount += n;
      else stats.pendingCount += n;
    }
    return { ...job, deviceJobStatistics: stats };
  }
}
