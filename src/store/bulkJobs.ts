/** An import or export job as stored: its public properties and where it got to. */
export interface BulkJobRecord {
  jobId: string;
  createdAt: number;
  /** The job's properties as GET /jobs/{id} returns them. */
  properties: Record<string, unknown> & { status: string; type: 'import' | 'export' };
  /** Import: bytes of the input blob and lines done; export: nothing (an export starts over). */
  checkpoint: { bytes: number; lines: number; errors: number };
}

export interface BulkJobStore {
  insert(job: BulkJobRecord): Promise<void>;
  get(jobId: string): Promise<BulkJobRecord | undefined>;
  list(): Promise<BulkJobRecord[]>;
  update(job: BulkJobRecord): Promise<void>;
  /** Device ids after `afterId`, in order, `max` at most (export reads the registry in pages). */
  deviceIdsAfter(afterId: string, max: number): Promise<string[]>;
  deviceCount(): Promise<number>;
}
