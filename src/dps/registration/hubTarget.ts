import { HubError } from '../../core/errors.js';
import type { Registry } from '../../hub/registry/registry.js';
import type { Twins } from '../../hub/twins/twins.js';
import { valuesOf } from '../../hub/twins/document.js';
import type { TwinCollection } from '../types.js';

/** The device data DPS carries between hubs: the twin's sections, values only (no $metadata, no $version). */
export interface DeviceTwinData {
  tags?: TwinCollection;
  desired?: TwinCollection;
  reported?: TwinCollection;
}

/** What a registration asks of the assigned hub: an identity, and on (re)initialization or migration a twin. */
export interface ProvisionedDevice {
  deviceId: string;
  authentication:
    | { type: 'sas'; primaryKey: string; secondaryKey: string }
    | { type: 'selfSigned'; primaryThumbprint: string; secondaryThumbprint: string | null }
    | { type: 'certificateAuthority' };
  iotEdge: boolean;
  /**
   * Written when given: the enrollment's initial twin (tags, desired) or the data migrated from
   * the previous hub (tags, desired, reported). Absent: the hub's twin is kept.
   */
  twin?: DeviceTwinData;
}

export interface HubTarget {
  /** Creates or updates the device; returns whether it was created. */
  provision(device: ProvisionedDevice): Promise<boolean>;
  /** The device's twin data, or undefined when the hub has no such device. */
  readTwin(deviceId: string): Promise<DeviceTwinData | undefined>;
  /** Deletes the device (and so its twin); nothing when it does not exist. */
  remove(deviceId: string): Promise<void>;
}

/** The device identity (as the IoT Hub registry API takes it) a provisioned device gets. */
export function deviceIdentity(device: ProvisionedDevice) {
  const a = device.authentication;
  const authentication =
    a.type === 'sas'
      ? { type: 'sas', symmetricKey: { primaryKey: a.primaryKey, secondaryKey: a.secondaryKey } }
      : a.type === 'selfSigned'
        ? { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: a.primaryThumbprint, secondaryThumbprint: a.secondaryThumbprint } }
        : { type: 'certificateAuthority' };
  return { deviceId: device.deviceId, authentication, capabilities: { iotEdge: device.iotEdge } };
}

/**
 * The hub in this process, written through its domain services (the registry's rules and
 * the twin's versioning apply as for any other writer).
 */
export class LocalHubTarget implements HubTarget {
  constructor(
    private readonly registry: Registry,
    private readonly twins: Twins,
  ) {}

  async provision(device: ProvisionedDevice): Promise<boolean> {
    const body = deviceIdentity(device);
    let created = true;
    try {
      await this.registry.putDevice(device.deviceId, body, undefined);
    } catch (e) {
      if (!(e instanceof HubError) || e.status !== 409) throw e;
      created = false;
      const existing = await this.registry.getDevice(device.deviceId);
      // Keep what the device's owner set (status); the credential follows the enrollment.
      await this.registry.putDevice(device.deviceId, { ...body, status: existing.status, statusReason: existing.statusReason }, '*');
    }
    const twin = device.twin;
    if (twin && (twin.tags || twin.desired)) {
      await this.twins.updateTwin(
        device.deviceId,
        undefined,
        { ...(twin.tags ? { tags: twin.tags } : {}), ...(twin.desired ? { properties: { desired: twin.desired } } : {}) },
        '*',
      );
    }
    // Reported properties are the device's; only a migration carries them over.
    if (twin?.reported && Object.keys(twin.reported).length) await this.twins.updateReportedProperties(device.deviceId, undefined, twin.reported);
    return created;
  }

  async readTwin(deviceId: string): Promise<DeviceTwinData | undefined> {
    try {
      const twin = await this.twins.getTwin(deviceId);
      const { desired, reported } = await this.twins.getProperties(deviceId);
      return { tags: (twin.tags ?? {}) as TwinCollection, desired: valuesOf(desired), reported: valuesOf(reported) };
    } catch (e) {
      if (e instanceof HubError && e.status === 404) return undefined;
      throw e;
    }
  }

  async remove(deviceId: string): Promise<void> {
    try {
      await this.registry.deleteDevice(deviceId, '*');
    } catch (e) {
      if (!(e instanceof HubError && e.status === 404)) throw e;
    }
  }
}
