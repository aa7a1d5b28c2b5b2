import type { BulkJobRecord, BulkJobStore } from '../bulkJobs.js';
import type { Db } from './database.js';

export class SqliteBulkJobs implements BulkJobStore {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly updateStmt;
  private readonly idsStmt;
  private readonly countStmt;

  constructor(db: Db) {
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
  async deviceIdsAfter(afterId: string, max: number): Promise<string[]> {
    return this.idsStmt.all(afterId, max).map((r) => r.device_id);
  }
  async deviceCount(): Promise<number> {
    return this.countStmt.get()!.n;
  }
}

type Row = { job_id: string; created_at: number; properties: string; checkpoint: string };
const record = (r: Row): BulkJobRecord => ({ jobId: r.job_id, createdAt: r.created_at, properties: JSON.parse(r.properties), checkpoint: JSON.parse(r.checkpoint) });
