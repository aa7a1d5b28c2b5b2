/**
 * What the domain needs from storage, in the domain's words. Implementations: ./sqlite.
 * Conditional writes are part of the interface (not read-then-write in the domain) so that
 * several Fleethub nodes can later share one database without losing updates.
 */
import type { Device, Module, RegistryStatistics } from '../hub/registry/types.js';
import type { SharedAccessPolicy } from '../hub/auth/types.js';
import type { TwinState } from '../hub/twins/types.js';
import type { CloudToDeviceMessage, CloudToDeviceOutcome } from '../hub/messaging/cloudToDeviceMessage.js';
import type { Expr, Query } from '../hub/query/ast.js';
import type { JsonObject } from '../hub/twins/types.js';
import type { DeviceJob, DeviceJobStatus, Job, JobStatus, JobType } from '../hub/jobs/types.js';
import type { EventLog, EventLogs } from './eventLog.js';
import type { CaCertificateStore } from './caCertificates.js';
import type { ConfigurationMetricResults, StoredConfiguration } from '../hub/configurations/types.js';

export type WriteResult = 'ok' | 'notFound' | 'etagMismatch';

export interface DeviceStore {
  get(deviceId: string): Promise<Device | undefined>;
  list(top: number): Promise<Device[]>;
  /** false when a device with that id exists. */
  insert(device: Device): Promise<boolean>;
  /** Replaces when the stored etag equals `ifEtag` (or unconditionally when `ifEtag` is undefined). */
  replace(device: Device, ifEtag?: string): Promise<WriteResult>;
  /** Deletes the device with its modules. */
  delete(deviceId: string, ifEtag?: string): Promise<WriteResult>;
  statistics(): Promise<RegistryStatistics>;
  connectedCount(): Promise<number>;
  /** Records connectionState and its time without changing the etag, as IoT Hub does. */
  setConnectionState(deviceId: string, state: ConnectionState, at: string): Promise<void>;
  /** Records lastActivityTime without changing the etag. */
  setLastActivity(deviceId: string, at: string): Promise<void>;
  /**
   * Records many devices' connection changes in one commit, in order: connectionState (when
   * `state` is set) and lastActivityTime (when `activity`), both at `at`, without changing etags.
   * What a connect storm writes, one transaction per batch instead of two per device.
   */
  recordConnections(changes: readonly DeviceConnectionRecord[]): Promise<void>;
  /** Marks every device and module Disconnected (a restarted hub holds no connections). */
  disconnectAll(at: string): Promise<void>;
}

export type ConnectionState = 'Connected' | 'Disconnected';

export interface DeviceConnectionRecord {
  deviceId: string;
  state?: ConnectionState;
  activity: boolean;
  at: string;
}

export interface ModuleStore {
  get(deviceId: string, moduleId: string): Promise<Module | undefined>;
  listForDevice(deviceId: string): Promise<Module[]>;
  countForDevice(deviceId: string): Promise<number>;
  insert(module: Module): Promise<boolean>;
  replace(module: Module, ifEtag?: string): Promise<WriteResult>;
  delete(deviceId: string, moduleId: string, ifEtag?: string): Promise<WriteResult>;
  setConnectionState(deviceId: string, moduleId: string, state: ConnectionState, at: string): Promise<void>;
  setLastActivity(deviceId: string, moduleId: string, at: string): Promise<void>;
}

export interface PolicyStore {
  list(): Promise<SharedAccessPolicy[]>;
  get(keyName: string): Promise<SharedAccessPolicy | undefined>;
  put(policy: SharedAccessPolicy): Promise<void>;
}

/**
 * Twins, one per device and per module. The store creates a twin with every identity and drops it
 * with the identity, so a twin exists exactly when its identity does.
 */
export interface TwinStore {
  get(deviceId: string, moduleId?: string): Promise<TwinState | undefined>;
  /** Writes when the stored twin still has version `ifVersion` ('etagMismatch' otherwise). */
  replace(twin: TwinState, ifVersion: number): Promise<WriteResult>;
}

/** The per-device cloud-to-device queue. Times are epoch milliseconds. */
export interface C2dQueue {
  /** Appends unless the device has `maxDepth` unexpired messages queued. */
  enqueue(message: Omit<CloudToDeviceMessage, 'sequenceNumber' | 'deliveryCount'>, maxDepth: number, now: number): Promise<'ok' | 'full' | 'notFound'>;
  /**
   * The oldest message to deliver to the device (not one locked by `lock`), its delivery count already incremented.
   * Expired messages and those past `maxDeliveryCount` are removed (their outcomes recorded) on the way.
   */
  next(deviceId: string, now: number, maxDeliveryCount: number): Promise<CloudToDeviceMessage | undefined>;
  /**
   * Like `next`, for pull delivery: the oldest message not under a lock, its delivery count
   * incremented, now locked under `lockToken` until `lockedUntil` (ms since the epoch).
   */
  lock(deviceId: string, now: number, maxDeliveryCount: number, lockToken: string, lockedUntil: number): Promise<CloudToDeviceMessage | undefined>;
  /**
   * Settles a message locked by `lock`: `complete` and `reject` remove it (outcome Success or
   * Rejected), `abandon` lifts the lock so that it is delivered again. false when no message holds
   * that lock token any more (lock expired, already settled, never issued).
   */
  settleLock(deviceId: string, lockToken: string, action: 'complete' | 'reject' | 'abandon', now: number): Promise<boolean>;
  /** Removes a delivered message, recording the outcome for feedback. false when it is already gone. */
  complete(deviceId: string, sequenceNumber: number, outcome: CloudToDeviceOutcome, now: number): Promise<boolean>;
  depth(deviceId: string, now: number): Promise<number>;
  /** Removes every expired message, recording `Expired` outcomes; returns how many. */
  expire(now: number): Promise<number>;
}
export * from './eventLog.js';
export * from './caCertificates.js';

/** One recorded cloud-to-device outcome a sender asked feedback for (`iothub-ack`). */
export interface C2dFeedbackRecord {
  id: number;
  deviceId: string;
  deviceGenerationId: string;
  originalMessageId: string;
  outcome: CloudToDeviceOutcome;
  /** When the outcome happened (ms since the epoch): the feedback record's enqueuedTimeUtc. */
  enqueuedTime: number;
}

/** The outcomes C2dQueue records, read by the service's feedback receiver. */
export interface C2dFeedbackStore {
  /**
   * Oldest first: records from after `notBefore` (ms since the epoch) delivered fewer than
   * `maxDeliveries` times, skipping `exclude` (records already out for delivery).
   */
  pending(max: number, exclude: ReadonlySet<number>, notBefore: number, maxDeliveries: number): Promise<C2dFeedbackRecord[]>;
  /** Removes records the service has completed. */
  remove(ids: number[]): Promise<void>;
  /** Counts a delivery of these records. */
  delivered(ids: number[]): Promise<void>;
  /** Removes those of `ids` already delivered `maxDeliveries` times (given up on, as IoT Hub does). */
  removeExhausted(ids: number[], maxDeliveries: number): Promise<void>;
  /** Removes the records from `upTo` or before (past the feedback's time to live); how many. */
  purge(upTo: number): Promise<number>;
}

/** Consumer groups of the built-in endpoint added at run time (names compare case-insensitively). */
export interface ConsumerGroupStore {
  list(): Promise<string[]>;
  /** false when a group of that name exists. */
  add(name: string): Promise<boolean>;
  /** false when there is no such group. */
  delete(name: string): Promise<boolean>;
}

/** Where a page of query results continues: after a row key, or (for groups) at an offset. */
export interface QueryCursor {
  after?: string[];
  offset?: number;
}

export interface TwinRecord {
  state: TwinState;
  device: Device;
  module?: Module;
}

export type QueryRows =
  | { type: 'twins'; items: TwinRecord[] }
  | { type: 'deviceJobs'; items: DeviceJob[] }
  | { type: 'raw'; items: JsonObject[] };

/** Runs parsed queries inside the store (filters, grouping and paging pushed down). */
export interface QueryStore {
  /** Up to `limit` rows from `cursor` on; `next` is set when more rows follow. */
  run(query: Query, limit: number, cursor?: QueryCursor): Promise<QueryRows & { next?: QueryCursor }>;
}

/** Jobs and their per-device records. Statistics are derived from the device records. */
export interface JobStore {
  /** false when a job with that id exists. */
  insert(job: Job): Promise<boolean>;
  get(jobId: string): Promise<Job | undefined>;
  /** Saves the job's own fields (status, times, messages). */
  update(job: Job): Promise<void>;
  /** Jobs newest first, optionally filtered; `after` continues from a previous page. */
  list(filter: { type?: JobType; status?: JobStatus }, limit: number, after?: string): Promise<{ jobs: Job[]; next?: string }>;
  /** Jobs not yet finished (queued, scheduled, running), to resume after a restart. */
  unfinished(): Promise<Job[]>;
  /**
   * Records a pending device job for every device matching `condition` and saves `job` (now
   * running) in one transaction, so the set of devices a job reaches is fixed once it starts.
   */
  start(job: Job, condition: Expr): Promise<number>;
  /** Up to `limit` device jobs in `status`. */
  deviceJobs(jobId: string, status: DeviceJobStatus, limit: number): Promise<DeviceJob[]>;
  putDeviceJob(record: DeviceJob): Promise<void>;
  /** Moves every device job of `jobId` in status `from` to `to` (cancel, timeout, resume). */
  moveDeviceJobs(jobId: string, from: DeviceJobStatus, to: DeviceJobStatus, now: string, error?: DeviceJob['error']): Promise<number>;
}

/** Automatic device management configurations, with the metric results of their last evaluation. */
export interface ConfigurationStore {
  /** Every configuration, oldest first, with its last metric results. */
  list(): Promise<{ configuration: StoredConfiguration; results?: ConfigurationMetricResults }[]>;
  get(id: string): Promise<{ configuration: StoredConfiguration; results?: ConfigurationMetricResults } | undefined>;
  /** 'exists' when that id is taken, 'full' when `maxCount` configurations exist already. */
  insert(configuration: StoredConfiguration, maxCount: number): Promise<'ok' | 'exists' | 'full'>;
  /** Replaces when the stored etag equals `ifEtag` (or unconditionally when undefined). */
  replace(configuration: StoredConfiguration, ifEtag?: string): Promise<WriteResult>;
  delete(id: string, ifEtag?: string): Promise<WriteResult>;
  /** Records an evaluation's metric results; leaves the configuration (and its etag) alone. */
  saveResults(id: string, results: ConfigurationMetricResults): Promise<void>;
}

export interface Store {
  devices: DeviceStore;
  modules: ModuleStore;
  policies: PolicyStore;
  twins: TwinStore;
  cloudToDevice: C2dQueue;
  cloudToDeviceFeedback: C2dFeedbackStore;
  queries: QueryStore;
  jobs: JobStore;
  /** The built-in endpoint's entity of `eventLogs`. */
  eventLog: EventLog;
  /** The event log of every entity (the built-in endpoint, namespace event hubs). */
  eventLogs: EventLogs;
  caCertificates: CaCertificateStore;
  consumerGroups: ConsumerGroupStore;
  configurations: ConfigurationStore;
  close(): void;
}
