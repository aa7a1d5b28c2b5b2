import { errors, HubError } from '../../core/errors.js';
import type { JobStore } from '../../store/index.js';
import type { DirectMethods } from '../methods/methods.js';
import { METHOD_LIMITS } from '../methods/methods.js';
import type { Twins } from '../twins/twins.js';
import { validateSection } from '../twins/document.js';
import type { JsonObject } from '../twins/types.js';
import { parseCondition } from '../query/parser.js';
import { QUERY_PAGE, type QueryPage } from '../query/queries.js';
import type { CloudToDeviceMethod, DeviceJob, Job, JobStatus, JobType } from './types.js';

export const JOB_DEFAULTS = {
  /** Device operations of one job in flight at once. */
  concurrency: 10,
  /** IoT Hub throttles job device operations (S3: 50/s per unit); Fleethub's default is higher. */
  deviceOperationsPerSecond: 1000,
  maxExecutionTimeInSeconds: 3600,
} as const;

const JOB_TYPES: JobType[] = ['scheduleUpdateTwin', 'scheduleDeviceMethod'];
const JOB_STATUSES: JobStatus[] = ['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'];
const TERMINAL: JobStatus[] = ['completed', 'failed', 'cancelled'];
const jobIdPattern = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;

export interface JobsOptions {
  concurrency?: number;
  deviceOperationsPerSecond?: number;
  now?: () => Date;
}

/** A device's part of a job ended (completed or failed), as committed. */
export type DeviceJobEndListener = (record: DeviceJob, job: Job) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Jobs (`/jobs/v2`): a twin update or a direct method applied to every device a condition selects,
 * in the background. The devices are fixed when the job starts (one store transaction), and each
 * device's progress is stored, so a job interrupted by a restart resumes where it stopped.
 */
export class Jobs {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly runs = new Map<string, Promise<void>>();
  private readonly cancelled = new Set<string>();
  private readonly deviceJobEndListeners = new Set<DeviceJobEndListener>();
  private stopped = false;
  private nextSlot = 0;
  private readonly concurrency: number;
  private readonly interval: number;
  private readonly now: () => Date;

  constructor(
    private readonly store: JobStore,
    private readonly twins: Twins,
    private readonly methods: DirectMethods,
    options: JobsOptions = {},
  ) {
    this.concurrency = options.concurrency ?? JOB_DEFAULTS.concurrency;
    this.interval = 1000 / (options.deviceOperationsPerSecond ?? JOB_DEFAULTS.deviceOperationsPerSecond);
    this.now = options.now ?? (() => new Date());
  }

  /** Each device job that ends (completed or failed), after it is stored. Listeners must not throw. */
  onDeviceJobEnd(listener: DeviceJobEndListener): () => void {
    this.deviceJobEndListeners.add(listener);
    return () => this.deviceJobEndListeners.delete(listener);
  }

  /** PUT /jobs/v2/{jobId}. */
  async schedule(jobId: string, body: unknown): Promise<Job> {
    const job = this.parseJob(jobId, body);
    if (!(await this.store.insert(job))) throw new HubError('JobAlreadyExists', `A job with id '${jobId}' already exists`);
    // IoT Hub answers every new job 'queued'; one whose start time is ahead then waits as 'scheduled'.
    const answer = (await this.store.get(jobId))!;
    if (Date.parse(job.startTime) > this.now().getTime()) await this.store.update({ ...job, status: 'scheduled' });
    this.arm(job);
    return answer;
  }

  async get(jobId: string): Promise<Job> {
    const job = await this.store.get(jobId);
    if (!job) throw new HubError('JobNotFound', `Job ${jobId} not found`);
    return job;
  }

  /** POST /jobs/v2/{jobId}/cancel: devices not yet reached are not reached; a finished job stays as it is. */
  async cancel(jobId: string): Promise<Job> {
    const job = await this.get(jobId);
    if (TERMINAL.includes(job.status)) return job;
    this.cancelled.add(jobId);
    clearTimeout(this.timers.get(jobId));
    this.timers.delete(jobId);
    const now = this.stamp();
    await this.store.update({ ...job, status: 'cancelled', endTime: now });
    await this.store.moveDeviceJobs(jobId, 'pending', 'cancelled', now);
    return this.get(jobId);
  }

  /** GET /jobs/v2/query: jobs, optionally of one type and status, a page at a time. */
  async list(type: string | undefined, status: string | undefined, pageSize?: number, continuationToken?: string): Promise<QueryPage> {
    if (type !== undefined && !JOB_TYPES.includes(type as JobType)) throw errors.argument(`jobType must be one of ${JOB_TYPES.join(', ')}`);
    if (status !== undefined && !JOB_STATUSES.includes(status as JobStatus)) throw errors.argument(`jobStatus must be one of ${JOB_STATUSES.join(', ')}`);
    const size = Math.min(pageSize ?? QUERY_PAGE.defaultSize, QUERY_PAGE.maxSize);
    let after: string | undefined;
    if (continuationToken !== undefined) {
      after = Buffer.from(continuationToken, 'base64url').toString('utf8');
      if (!jobIdPattern.test(after)) throw errors.argument('The continuation token is not valid');
    }
    const { jobs, next } = await this.store.list({ type: type as JobType | undefined, status: status as JobStatus | undefined }, size, after);
    return { itemType: 'JobResponse', items: jobs, continuationToken: next && Buffer.from(next).toString('base64url') };
  }

  /** Picks up every unfinished job (after a start or restart). */
  async resume(): Promise<void> {
    for (const job of await this.store.unfinished()) this.arm(job);
  }

  /** Stops taking new device operations and waits briefly for those in flight; jobs resume on the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.race([Promise.allSettled([...this.runs.values()]), sleep(5000)]);
  }

  // ---- running ----

  private arm(job: Job): void {
    if (this.stopped) return;
    const delay = Math.max(0, Date.parse(job.startTime) - this.now().getTime());
    // setTimeout holds at most ~24.8 days; longer waits re-arm.
    const timer = setTimeout(() => {
      this.timers.delete(job.jobId);
      if (delay > 2 ** 31 - 1) return this.arm(job);
      const run = this.run(job.jobId).finally(() => this.runs.delete(job.jobId));
      this.runs.set(job.jobId, run);
    }, Math.min(delay, 2 ** 31 - 1));
    this.timers.set(job.jobId, timer);
  }

  private async run(jobId: string): Promise<void> {
    try {
      let job = await this.store.get(jobId);
      if (!job || TERMINAL.includes(job.status) || this.cancelled.has(jobId)) return;
      if (job.status === 'running') {
        // Interrupted by a restart: devices that were in flight are tried again.
        await this.store.moveDeviceJobs(jobId, 'running', 'pending', this.stamp());
      } else {
        job = { ...job, status: 'running' };
        await this.store.start(job, parseCondition(job.queryCondition));
      }
      const deadline = Date.parse(job.startTime) + job.maxExecutionTimeInSeconds * 1000;
      while (!this.stopped && !this.cancelled.has(jobId)) {
        if (this.now().getTime() >= deadline) return await this.finish(jobId, 'failed', `The job did not finish within ${job.maxExecutionTimeInSeconds} seconds (maxExecutionTimeInSeconds)`);
        const batch = await this.store.deviceJobs(jobId, 'pending', this.concurrency * 10);
        if (batch.length === 0) return await this.finish(jobId, 'completed');
        await this.pool(batch, (record) => this.runDevice(job!, record, deadline));
      }
    } catch (e) {
      if (this.stopped) return; // the store closed under us; the job resumes on the next start
      await this.finish(jobId, 'failed', `The job failed: ${(e as Error).message}`).catch(() => undefined);
    }
  }

  private async pool(records: DeviceJob[], work: (r: DeviceJob) => Promise<void>): Promise<void> {
    let i = 0;
    const worker = async () => {
      while (i < records.length && !this.stopped && !this.cancelled.has(records[0]!.jobId)) await work(records[i++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, records.length) }, worker));
  }

  private async runDevice(job: Job, record: DeviceJob, deadline: number): Promise<void> {
    await this.throttle();
    if (this.stopped || this.cancelled.has(job.jobId) || this.now().getTime() >= deadline) return;
    const started = this.stamp();
    await this.store.putDeviceJob({ ...record, status: 'running', startTimeUtc: started, lastUpdatedDateTimeUtc: started });
    let result: DeviceJob;
    try {
      const outcome = job.type === 'scheduleUpdateTwin' ? await this.updateTwin(job, record.deviceId) : await this.invokeMethod(job, record.deviceId);
      const end = this.stamp();
      result = { ...record, status: 'completed', startTimeUtc: started, endTimeUtc: end, lastUpdatedDateTimeUtc: end, outcome };
    } catch (e) {
      if (this.stopped) return; // left 'running': retried on resume
      const end = this.stamp();
      const error = e instanceof HubError ? { code: e.code, description: e.message } : { code: 'ServerError', description: (e as Error).message };
      result = { ...record, status: 'failed', startTimeUtc: started, endTimeUtc: end, lastUpdatedDateTimeUtc: end, outcome: { deviceMethodResponse: null }, error };
    }
    await this.store.putDeviceJob(result);
    for (const listener of this.deviceJobEndListeners) {
      try {
        listener(result, job);
      } catch {
        // An observer never fails the job it observes.
      }
    }
  }

  private async updateTwin(job: Job, deviceId: string): Promise<DeviceJob['outcome']> {
    const { tags, properties } = job.updateTwin as { tags?: JsonObject; properties?: { desired?: JsonObject } };
    await this.twins.updateTwin(deviceId, undefined, { tags, properties: { desired: properties?.desired } }, '*');
    return { deviceMethodResponse: null };
  }

  private async invokeMethod(job: Job, deviceId: string): Promise<DeviceJob['outcome']> {
    const m = job.cloudToDeviceMethod!;
    const result = await this.methods.invoke(deviceId, undefined, {
      methodName: m.methodName,
      payload: m.payload,
      responseTimeoutInSeconds: m.responseTimeoutInSeconds,
      connectTimeoutInSeconds: m.connectTimeoutInSeconds,
    });
    return { deviceMethodResponse: { status: result.status, payload: result.payload } };
  }

  /** Spaces device operations out to the configured rate. */
  private async throttle(): Promise<void> {
    const now = Date.now();
    const slot = Math.max(now, this.nextSlot);
    this.nextSlot = slot + this.interval;
    if (slot > now) await sleep(slot - now);
  }

  private async finish(jobId: string, status: 'completed' | 'failed', failureReason?: string): Promise<void> {
    const job = await this.store.get(jobId);
    if (!job || TERMINAL.includes(job.status)) return;
    const now = this.stamp();
    if (status === 'failed') {
      await this.store.moveDeviceJobs(jobId, 'pending', 'failed', now, { code: 'JobRunPreconditionFailed', description: failureReason ?? 'The job failed' });
    }
    await this.store.update({ ...job, status, endTime: now, ...(failureReason ? { failureReason, statusMessage: failureReason } : {}) });
  }

  private stamp(): string {
    return this.now().toISOString();
  }

  // ---- input ----

  private parseJob(jobId: string, body: unknown): Job {
    if (!jobIdPattern.test(jobId)) throw errors.argument(`JobId '${jobId}' is invalid: up to 128 letters, digits and - : . + % _ # * ? ! ( ) , = @ ; $ '`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The job must be a JSON object');
    const b = body as Record<string, unknown>;
    if (b.jobId !== undefined && b.jobId !== jobId) throw errors.argument('The jobId in the body does not match the jobId in the path');
    if (!JOB_TYPES.includes(b.type as JobType)) throw errors.argument(`type must be one of ${JOB_TYPES.join(', ')}`);
    if (typeof b.queryCondition !== 'string' || b.queryCondition.trim() === '') throw errors.argument('queryCondition is required');
    parseCondition(b.queryCondition);
    const now = this.now();
    let startTime = now;
    if (b.startTime !== undefined && b.startTime !== null) {
      if (typeof b.startTime !== 'string' || Number.isNaN(Date.parse(b.startTime))) throw errors.argument('startTime must be an ISO 8601 date');
      startTime = new Date(Math.max(Date.parse(b.startTime), 0));
    }
    const max = b.maxExecutionTimeInSeconds ?? JOB_DEFAULTS.maxExecutionTimeInSeconds;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) throw errors.argument('maxExecutionTimeInSeconds must be a positive integer');
    const job: Job = {
      jobId,
      type: b.type as JobType,
      queryCondition: b.queryCondition,
      createdTime: now.toISOString(),
      startTime: startTime.toISOString(),
      maxExecutionTimeInSeconds: max,
      status: 'queued',
      deviceJobStatistics: { deviceCount: 0, failedCount: 0, succeededCount: 0, runningCount: 0, pendingCount: 0 },
    };
    if (job.type === 'scheduleUpdateTwin') job.updateTwin = parseUpdateTwin(b.updateTwin);
    else job.cloudToDeviceMethod = parseMethod(b.cloudToDeviceMethod);
    return job;
  }
}

/** The twin patch of a job: tags and desired properties, checked with the twins' own rules. */
function parseUpdateTwin(value: unknown): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.argument('updateTwin must be a twin patch object');
  const v = value as Record<string, unknown>;
  const patch: JsonObject = {};
  if (v.tags !== undefined && v.tags !== null) patch.tags = validateSection(v.tags, 'tags');
  const props = v.properties as Record<string, unknown> | undefined;
  if (props !== undefined && props !== null) {
    if (typeof props !== 'object' || Array.isArray(props)) throw errors.argument('updateTwin.properties must be an object');
    // The SDK samples send `reported: {}`; IoT Hub accepts an empty section and ignores it.
    const emptyReported = props.reported === undefined || props.reported === null || (typeof props.reported === 'object' && !Array.isArray(props.reported) && Object.keys(props.reported).length === 0);
    if (!emptyReported) throw errors.argument('A job cannot update reported properties');
    if (props.desired !== undefined && props.desired !== null) patch.properties = { desired: validateSection(props.desired, 'desired') };
  }
  if (patch.tags === undefined && patch.properties === undefined) throw errors.argument('updateTwin must contain tags or properties.desired');
  return patch;
}

function parseMethod(value: unknown): CloudToDeviceMethod {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw errors.argument('cloudToDeviceMethod is required');
  const v = value as Record<string, unknown>;
  if (typeof v.methodName !== 'string' || v.methodName === '' || /[/?#\s]/.test(v.methodName)) throw errors.argument('cloudToDeviceMethod.methodName is invalid');
  const seconds = (name: string, min: number, max: number): number | undefined => {
    const s = v[name];
    if (s === undefined || s === null) return undefined;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < min || s > max) throw errors.argument(`cloudToDeviceMethod.${name} must be an integer between ${min} and ${max}`);
    return s;
  };
  return {
    methodName: v.methodName,
    payload: v.payload ?? null,
    responseTimeoutInSeconds: seconds('responseTimeoutInSeconds', METHOD_LIMITS.minResponseTimeoutSeconds, METHOD_LIMITS.maxResponseTimeoutSeconds),
    connectTimeoutInSeconds: seconds('connectTimeoutInSeconds', 0, METHOD_LIMITS.maxConnectTimeoutSeconds),
  };
}
