import { randomBytes } from 'node:crypto';
import type { DpsSettingsStore } from '../store/dps.js';
import type { AllocationPolicy, LinkedHub } from './types.js';
import { TPM_SECRET_SETTING, newTpmSecret } from './registration/tpmKeys.js';

/** The provisioning service's own facts. */
export interface DpsInstance {
  /** The service host name (`sr` of service tokens, `HostName` of its connection string). */
  hostName: string;
  /** Where devices register (Azure's global.azure-devices-provisioning.net). */
  deviceEndpoint: string;
  idScope: string;
  linkedHubs: LinkedHub[];
  allocationPolicy: AllocationPolicy;
  /** The `retry-after` (seconds) devices are told while `assigning`. */
  retryAfterSeconds: number;
  /**
   * The secret TPM registration keys are derived from (see registration/tpmKeys.ts), kept in the
   * settings store so that it survives restarts; absent, a per-process secret is used.
   */
  tpmKeySecret?: Buffer;
}

/** Azure's id scopes look like `0ne0001A2B3`: `0ne` and 8 hex digits. */
export function newIdScope(): string {
  return '0ne' + randomBytes(4).toString('hex').toUpperCase();
}

/** The id scope is generated once and kept: devices are configured with it. */
export async function ensureIdScope(settings: DpsSettingsStore): Promise<string> {
  return (await settings.get('idScope')) ?? settings.setOnce('idScope', newIdScope());
}

/** The TPM key-derivation secret is generated once and kept, like the id scope. */
export async function ensureTpmKeySecret(settings: DpsSettingsStore): Promise<Buffer> {
  const stored = (await settings.get(TPM_SECRET_SETTING)) ?? (await settings.setOnce(TPM_SECRET_SETTING, newTpmSecret()));
  return Buffer.from(stored, 'base64');
}

export function findLinkedHub(instance: DpsInstance, hostName: string): LinkedHub | undefined {
  const wanted = hostName.toLowerCase();
  return instance.linkedHubs.find((h) => h.hostName.toLowerCase() === wanted);
}

/**
 * The instance as configured: every hub of this process (the primary and `hubs`) is linked;
 * configured linked hubs are added, or, naming a hub of this process, set its weight and whether
 * the allocation policy applies to it.
 */
export function dpsInstance(
  config: {
    hostName: string;
    hubs?: { hostName: string }[];
    dps: { hostName?: string; linkedHubs: Partial<LinkedHub>[]; allocationPolicy: AllocationPolicy; retryAfterSeconds?: number };
  },
  idScope: string,
): DpsInstance {
  const hostName = config.dps.hostName ?? config.hostName;
  const linkedHubs: LinkedHub[] = [];
  const local = [config.hostName, ...(config.hubs ?? []).map((h) => h.hostName)].map((h): Partial<LinkedHub> => ({ hostName: h }));
  for (const hub of [...local, ...config.dps.linkedHubs]) {
    const entry: LinkedHub = {
      hostName: hub.hostName!,
      allocationWeight: hub.allocationWeight ?? 1,
      applyAllocationPolicy: hub.applyAllocationPolicy ?? true,
      ...(hub.connectionString ? { connectionString: hub.connectionString } : {}),
    };
    const same = linkedHubs.findIndex((h) => h.hostName.toLowerCase() === entry.hostName.toLowerCase());
    if (same >= 0) linkedHubs[same] = { ...linkedHubs[same]!, ...entry };
    else linkedHubs.push(entry);
  }
  return { hostName, deviceEndpoint: hostName, idScope, linkedHubs, allocationPolicy: config.dps.allocationPolicy, retryAfterSeconds: config.dps.retryAfterSeconds ?? 1 };
}
