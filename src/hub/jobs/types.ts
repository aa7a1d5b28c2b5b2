/** Jobs as IoT Hub's `/jobs/v2` API returns them, and the per-device records (`devices.jobs`). */
import type { JsonObject } from '../twins/types.js';

export type JobType = 'scheduleUpdateTwin' | 'scheduleDeviceMethod';
export type JobStatus = 'queued' | 'scheduled' | 'running' | 'completed' | 'failed' | 'cancelled';
export type DeviceJobStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface DeviceJobStatistics {
  deviceCount: number;
  failedCount: number;
  succeededCount: number;
  runningCount: number;
  pendingCount: number;
}

export interface CloudToDeviceMethod {
  methodName: string;
  payload?: unknown;
  responseTimeoutInSeconds?: number;
  connectTimeoutInSeconds?: number;
}

export interface Job {
  jobId: string;
  type: JobType;
  queryCondition: string;
  createdTime: string;
  startTime: string;
  endTime?: string;
  maxExecutionTimeInSeconds: number;
  status: JobStatus;
  failureReason?: string;
  statusMessage?: string;
  cloudToDeviceMethod?: CloudToDeviceMethod;
  updateTwin?: JsonObject;
  deviceJobStatistics: DeviceJobStatistics;
}

export interface DeviceJob {
  deviceId: string;
  jobId: string;
  jobType: JobType;
  status: DeviceJobStatus;
  startTimeUtc: string;
  endTimeUtc: string;
  createdDateTimeUtc: string;
  lastUpdatedDateTimeUtc: string;
  outcome?: { deviceMethodResponse: { status: number; payload: unknown } | null };
  error?: { code: string; description: string };
}
