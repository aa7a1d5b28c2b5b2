/** A file upload a device started and has not completed (its SAS may still be live). */
export interface FileUploadRecord {
  correlationId: string;
  deviceId: string;
  /** `{deviceId}/{name}` */
  blobName: string;
  containerName: string;
  /** ms since the epoch: when its SAS expires and the slot frees itself. */
  expiresAt: number;
  createdAt: number;
}

export interface FileUploadStore {
  /** Adds it unless the device already has `maxActive` uploads not yet expired at `now`; false then. */
  start(upload: FileUploadRecord, maxActive: number, now: number): Promise<boolean>;
  get(deviceId: string, correlationId: string): Promise<FileUploadRecord | undefined>;
  /** Ends it (completed); false when there was none. */
  end(deviceId: string, correlationId: string): Promise<boolean>;
  /** Forgets uploads whose SAS expired before `now`. */
  expire(now: number): Promise<number>;
}

/** The notification the service receives, as IoT Hub words it. */
export interface FileNotification {
  deviceId: string;
  blobUri: string;
  blobName: string;
  lastUpdatedTime: string;
  blobSizeInBytes: number;
  enqueuedTimeUtc: string;
}

export interface FileNotificationRecord extends FileNotification {
  id: number;
}

export interface FileNotificationStore {
  add(notification: FileNotification, expiresAt: number): Promise<void>;
  /** Oldest first: not expired at `now`, delivered fewer than `maxDeliveries` times, not in `exclude`. */
  pending(max: number, exclude: ReadonlySet<number>, now: number, maxDeliveries: number): Promise<FileNotificationRecord[]>;
  remove(ids: number[]): Promise<void>;
  delivered(ids: number[]): Promise<void>;
  /** Drops notifications expired at `now` or delivered `maxDeliveries` times. */
  purge(now: number, maxDeliveries: number): Promise<number>;
}
