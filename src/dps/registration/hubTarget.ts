import { HubError } from '../../core/errors.js';
import type { Registry } from '../../hub/registry/registry.js';
import type { Twins } from '../../hub/twins/twins.js';
import type { InitialTwin } from '../types.js';

/** What a registration asks of the assigned hub: an identity, and on first assignment a twin. */
export interface ProvisionedDevice {
  deviceId: string;
  authentication:
    | { type: 'sas'; primaryKey: string; secondaryKey: string }
    | { type: 'selfSigned'; primaryThumbprint: string; secondaryThumbprint: string | null }
    | { type: 'certificateAuthority' };
  iotEdge: boolean;
  /** Applied only when given (initial assignment); a re-registration keeps the twin. */
  initialTwin?: InitialTwin;
}

export interface HubTarget {
  /** Creates or updates the device; returns whether it was created. */
  provision(device: ProvisionedDevice): Promise<boolean>;
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
    const a = device.authentication;
    const authentication =
      a.type === 'sas'
        ? { type: 'sas', symmetricKey: { primaryKey: a.primaryKey, secondaryKey: a.secondaryKey } }
        : a.type === 'selfSigned'
          ? { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: a.primaryThumbprint, secondaryThumbprint: a.secondaryThumbprint } }
          : { type: 'certificateAuthority' };
    const body = {
      deviceId: device.deviceId,
      authentication,
      capabilities: { iotEdge: device.iotEdge },
    };
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
    const twin = device.initialTwin;
    if (twin && (twin.tags || twin.properties?.desired)) {
      await this.twins.updateTwin(
        device.deviceId,
        undefined,
        { ...(twin.tags ? { tags: twin.tags } : {}), ...(twin.properties?.desired ? { properties: { desired: twin.properties.desired } } : {}) },
        '*',
      );
    }
    return created;
  }
}
