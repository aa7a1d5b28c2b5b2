import { randomUUID } from 'node:crypto';
import { HubError, errors } from '../../core/errors.js';
import type { EgressCredential, EgressCredentials } from '../../identity/types.js';
import type { FileNotificationRecord, FileNotificationStore, FileUploadStore } from '../../store/files.js';
import { ServiceBoundQueue } from '../messaging/serviceBoundQueue.js';
import { durationSeconds, type FileUploadSettingsSource, type StorageEndpoint } from './settings.js';

/** IoT Hub's limit of file uploads in progress per device. */
export const MAX_ACTIVE_UPLOADS = 10;
/** IoT Hub's limit on a blob name. */
const MAX_BLOB_NAME = 1024;

/** A storage account the hub reaches: where, as whom, into which container. */
export interface StorageTarget {
  connectionString: string;
  containerName: string;
  credential: EgressCredential;
}

/** Outbound blob storage (egress/): signing upload SAS tokens and reading blob properties. */
export interface FileStorage {
  /** A read/create/write SAS for one blob until `expiresOn`: with the account key, or a user delegation key got as the identity. */
  uploadSas(target: StorageTarget, blobName: string, expiresOn: Date): Promise<{ hostName: string; sasToken: string; blobUri: string }>;
  /** The blob's size and last-modified time; undefined when there is no such blob. */
  blobProperties(target: StorageTarget, blobName: string): Promise<{ size: number; lastModified: Date; blobUri: string } | undefined>;
}

/** The storage the hub runs itself when none is configured (Azurite). */
export interface EmbeddedStorage {
  connectionString: string;
  /** The endpoint part only (no key), for identity-based access. */
  endpointConnectionString: string;
  defaultContainer: string;
}

export interface UploadStarted {
  correlationId: string;
  hostName: string;
  containerName: string;
  blobName: string;
  sasToken: string;
}

/**
 * File upload (device side): a SAS per upload into the hub's storage container, at most ten in
 * progress per device, and on completion a notification for the service (when enabled), with the
 * size and time read from the blob itself.
 */
export class FileUploads {
  readonly notifications: ServiceBoundQueue<FileNotificationRecord>;

  constructor(
    private readonly settings: FileUploadSettingsSource,
    private readonly uploads: FileUploadStore,
    private readonly notificationStore: FileNotificationStore,
    private readonly storage: FileStorage,
    private readonly egress: EgressCredentials,
    private readonly hubResourceId: () => string,
    private readonly embedded: () => EmbeddedStorage | undefined,
    private readonly now: () => number = Date.now,
  ) {
    const maxDeliveries = () => this.settings.current().messagingEndpoints.fileNotifications.maxDeliveryCount;
    // One notification per AMQP message, as IoT Hub sends them.
    this.notifications = new ServiceBoundQueue<FileNotificationRecord>(
      {
        pending: (max, exclude) => notificationStore.pending(max, exclude, this.now(), maxDeliveries()),
        remove: (ids) => notificationStore.remove(ids),
        delivered: (ids) => notificationStore.delivered(ids),
      },
      1,
    );
  }

  /** How long a delivered notification stays locked to its receiver (`fileNotifications.lockDurationAsIso8601`). */
  lockMs(): number {
    return durationSeconds(this.settings.current().messagingEndpoints.fileNotifications.lockDurationAsIso8601) * 1000;
  }

  async start(deviceId: string, requestedName: unknown): Promise<UploadStarted> {
    if (typeof requestedName !== 'string' || requestedName.length === 0) throw errors.argument('blobName is required');
    const blobName = `${deviceId}/${requestedName}`;
    if (blobName.length > MAX_BLOB_NAME) throw errors.argument(`The blob name must be at most ${MAX_BLOB_NAME} characters with the device id`);
    const target = await this.target();
    const endpoint = this.settings.current().storageEndpoints.$default;
    const now = this.now();
    const expiresAt = now + durationSeconds(endpoint.sasTtlAsIso8601) * 1000;
    const correlationId = Buffer.from(randomUUID()).toString('base64');
    // The slot is taken before the SAS is signed, so an eleventh concurrent request never gets one.
    const started = await this.uploads.start({ correlationId, deviceId, blobName, containerName: target.containerName, expiresAt, createdAt: now }, MAX_ACTIVE_UPLOADS, now);
    if (!started) {
      throw new HubError('DeviceMaximumActiveFileUploadLimitExceeded', `Device ${deviceId} already has ${MAX_ACTIVE_UPLOADS} file uploads in progress`);
    }
    try {
      const sas = await this.storage.uploadSas(target, blobName, new Date(expiresAt));
      return { correlationId, hostName: sas.hostName, containerName: target.containerName, blobName, sasToken: sas.sasToken };
    } catch (e) {
      await this.uploads.end(deviceId, correlationId);
      throw e;
    }
  }

  /** The device's completion call; frees the slot, and notifies the service of a successful upload. */
  async complete(deviceId: string, correlationId: unknown, result: { isSuccess?: unknown; statusCode?: unknown; statusDescription?: unknown }): Promise<void> {
    if (typeof correlationId !== 'string' || correlationId.length === 0) throw errors.argument('correlationId is required');
    if (typeof result.isSuccess !== 'boolean') throw errors.argument('isSuccess must be true or false');
    const upload = await this.uploads.get(deviceId, correlationId);
    if (!upload) throw errors.argument(`No file upload with correlation id '${correlationId}' is in progress for device ${deviceId}`);
    const settings = this.settings.current();
    if (result.isSuccess && settings.enableFileUploadNotifications) {
      const target = { ...(await this.target()), containerName: upload.containerName };
      const blob = await this.storage.blobProperties(target, upload.blobName);
      if (blob) {
        const now = this.now();
        const ttl = durationSeconds(settings.messagingEndpoints.fileNotifications.ttlAsIso8601) * 1000;
        await this.notificationStore.add(
          {
            deviceId,
            blobUri: blob.blobUri,
            blobName: upload.blobName,
            lastUpdatedTime: blob.lastModified.toISOString(),
            blobSizeInBytes: blob.size,
            enqueuedTimeUtc: new Date(now).toISOString(),
          },
          now + ttl,
        );
      }
    }
    await this.uploads.end(deviceId, correlationId);
    this.notifications.recorded();
  }

  /** Forgets expired uploads and notifications (their slots and records). */
  async expire(): Promise<void> {
    const now = this.now();
    await this.uploads.expire(now);
    await this.notificationStore.purge(now, this.settings.current().messagingEndpoints.fileNotifications.maxDeliveryCount);
  }

  /** The configured storage, or the embedded one when none is; with the credential the settings name. */
  async target(endpoint: StorageEndpoint = this.settings.current().storageEndpoints.$default): Promise<StorageTarget> {
    const embedded = this.embedded();
    const identityBased = endpoint.authenticationType === 'identityBased';
    let connectionString = endpoint.connectionString;
    let containerName = endpoint.containerName;
    if (!connectionString) {
      if (!embedded) throw new HubError('InvalidOperation', 'File upload is not configured: the hub has no storage account (storageEndpoints.$default.connectionString).');
      connectionString = identityBased ? embedded.endpointConnectionString : embedded.connectionString;
      containerName ||= embedded.defaultContainer;
    }
    if (!containerName) throw new HubError('InvalidOperation', 'File upload is not configured: storageEndpoints.$default.containerName is empty.');
    let credential: EgressCredential;
    try {
      credential = await this.egress.forConnection(this.hubResourceId(), {
        authenticationType: identityBased ? 'identityBased' : 'keyBased',
        connectionString,
        ...(endpoint.identity ? { identity: endpoint.identity } : {}),
      });
    } catch (e) {
      throw new HubError('InvalidOperation', `File upload cannot reach its storage: ${(e as Error).message}`);
    }
    return { connectionString, containerName, credential };
  }
}
