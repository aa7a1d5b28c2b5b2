/** An import or export job as stored: its public properties and where it got to. */
export interface BulkJobRecord {
  jobId: string;
  createdAt: number;
  /** The job's properties as GET /jobs/{id} returns them. */
  properties: Record<string, unknown> & { status: string; type: 'import' | 'export' };
  /** Import: bytes of the input blob and lines done; export: nothing (an export starts over). */
  checkpoint: {
    bytes: number;
    lines: number;
    errors: number;
    /** Error lines not yet appended to importErrors.log (kept here so that a restart loses none). */
    pendingErrors?: string[];
    /** The size of importErrors.log after the last append this job made (to tell whether an append before a crash landed). */
    errorsLogBytes?: number;
  };
}

export interface BulkJobStore {
  insert(job: BulkJobRecord): Promise<void>;
  get(jobId: string): Promise<BulkJobRecord | undefined>;
  list(): Promise<BulkJobRecord[]>;
  update(job: BulkJobRecord): Promise<void>;
  /**
   * Runs `work` (registry and twin writes) and then stores the job record `after` returns, in one
   * transaction: after a crash either both are there or neither, so an import line is applied
   * exactly once across restarts. `work` must not wait for I/O (the store's own calls do not).
   */
  atomically<T>(work: () => Promise<T>, after: (result: T) => BulkJobRecord): Promise<T>;
  /** Device ids after `afterId`, in order, `max` at most (export reads the registry in pages). */
  deviceIdsAfter(afterId: string, max: number): Promise<string[]>;
  deviceCount(): Promise<number>;
}
