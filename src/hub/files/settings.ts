import { HubError } from '../../core/errors.js';

/**
 * A hub's file-upload settings, in the shape of the ARM resource's properties
 * (`storageEndpoints.$default`, `enableFileUploadNotifications`, `messagingEndpoints.fileNotifications`).
 */
export interface FileUploadSettings {
  storageEndpoints: { $default: StorageEndpoint };
  enableFileUploadNotifications: boolean;
  messagingEndpoints: { fileNotifications: { ttlAsIso8601: string; lockDurationAsIso8601: string; maxDeliveryCount: number } };
}

export interface StorageEndpoint {
  /** keyBased: the account's connection string; identityBased: one naming the account and endpoint only (no key). Empty: the embedded storage. */
  connectionString: string;
  containerName: string;
  sasTtlAsIso8601: string;
  authenticationType?: 'keyBased' | 'identityBased';
  identity?: { userAssignedIdentity?: string | null } | null;
}

/** The portal's defaults: SAS for an hour, notifications off, each kept an hour, locked a minute, delivered up to 10 times. */
export const defaultFileUploadSettings = (): FileUploadSettings => ({
  storageEndpoints: { $default: { connectionString: '', containerName: '', sasTtlAsIso8601: 'PT1H' } },
  enableFileUploadNotifications: false,
  messagingEndpoints: { fileNotifications: { ttlAsIso8601: 'PT1H', lockDurationAsIso8601: 'PT1M', maxDeliveryCount: 10 } },
});

/**
 * Where the hub reads its file-upload settings. Seeded from the process configuration today;
 * the control plane (the hub resource's properties) is meant to be its one writer.
 */
export interface FileUploadSettingsSource {
  current(): FileUploadSettings;
}

/** Settings held in memory, replaced whole by their writer. */
export class HeldFileUploadSettings implements FileUploadSettingsSource {
  private settings: FileUploadSettings;
  constructor(initial: FileUploadSettings = defaultFileUploadSettings()) {
    this.settings = initial;
  }
  current(): FileUploadSettings {
    return this.settings;
  }
  set(settings: FileUploadSettings): void {
    this.settings = settings;
  }
}

/** Seconds in an ISO 8601 duration (PnDTnHnMnS); throws on anything else. */
export function durationSeconds(iso: string): number {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(iso.trim());
  if (!m || iso.trim().toUpperCase() === 'P' || /T$/i.test(iso.trim())) throw new HubError('ArgumentInvalid', `'${iso}' is not an ISO 8601 duration`);
  const [, d, h, min, s] = m;
  return Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
}
