import type { BulkJobRecord, BulkJobStore } from '../bulkJobs.js';
import type { Db } from './database.js';

export class SqliteBulkJobs implements BulkJobStore {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly updateStmt;
  private readonly idsStmt;
  private readonly countStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare('INSERT INTO bulk_jobs (job_id, created_at, properties, checkpoint) VALUES (?, ?, ?, ?)');
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM bulk_jobs WHERE job_id = ?');
    this.listStmt = db.prepare<[], Row>('SELECT * FROM bulk_jobs ORDER BY created_at');
    this.updateStmt = db.prepare('UPDATE bulk_jobs SET properties = ?, checkpoint = ? WHERE job_id = ?');
    this.idsStmt = db.prepare<[string, number], { device_id: string }>('SELECT device_id FROM devices WHERE device_id > ? ORDER BY device_id LIMIT ?');
    this.countStmt = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM devices');
  }
  async insert(job: BulkJobRecord): Promise<void> {
    this.insertStmt.run(job.jobId, job.createdAt, JSON.stringify(job.properties), JSON.stringify(job.checkpoint));
  }
  async get(jobId: string): Promise<BulkJobRecord | undefined> {
    const r = this.getStmt.get(jobId);
    return r && record(r);
  }
  async list(): Promise<BulkJobRecord[]> {
    return this.listStmt.all().map(record);
  }
  async update(job: BulkJobRecord): Promise<void> {
    this.updateStmt.run(JSON.stringify(job.properties), JSON.stringify(job.checkpoint), job.jobId);
  }
  async atomically<T>(work: () => Promise<T>, after: (result: T) => BulkJobRecord): Promise<T> {
    if (this.db.inTransaction) {
      // Already inside someone's transaction: theirs decides.
      const result = await work();
      await this.update(after(result));
      return result;
    }
    // better-sqlite3's transaction() takes synchronous work only; the registry's calls are async
    // wrappers around synchronous statements, so the whole of `work` runs within this turn of
    // the event loop, between BEGIN and COMMIT.
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = await work();
      const job = after(result);
      this.updateStmt.run(JSON.stringify(job.properties), JSON.stringify(job.checkpoint), job.jobId);
      this.db.exec('COMMIT');
      return result;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }
  async deviceIdsAfter(afterId: string, max: number): Promise<string[]> {
    return this.idsStmt.all(afterId, max).map((r) => r.device_id);
  }
  async deviceCount(): Promise<number> {
    return this.countStmt.get()!.n;
  }
}

type Row = { job_id: string; created_at: number; properties: string; checkpoint: string };
const record = (r: Row): BulkJobRecord => ({ jobId: r.job_id, createdAt: r.created_at, properties: JSON.parse(r.properties), checkpoint: JSON.parse(r.checkpoint) });
