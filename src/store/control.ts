/**
 * The control plane's records: ARM resource groups and the ARM bodies of the resources in them
 * (hubs, user-assigned identities, the provisioning service). Ids are compared case-insensitively
 * and returned as stored, as ARM does.
 */

export interface ResourceGroupRecord {
  name: string;
  location: string;
  tags: Record<string, string>;
  /** Set for groups Fleethub creates itself (the default group): they cannot be deleted. */
  managedBy?: string;
  createdAt: string;
}

export interface ResourceRecord {
  /** The full ARM id, as first written. */
  id: string;
  /** `Microsoft.Devices/IotHubs`, as ARM spells it. */
  type: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  /** The provider's own state of the resource (its ARM body minus what is derived at read time). */
  body: unknown;
  etag: string;
  createdAt: string;
  updatedAt: string;
}

export interface ControlResourceStore {
  groups: {
    get(name: string): ResourceGroupRecord | undefined;
    list(): ResourceGroupRecord[];
    put(group: ResourceGroupRecord): void;
    delete(name: string): boolean;
  };
  resources: {
    get(id: string): ResourceRecord | undefined;
    /** Filtered by group and/or type (both case-insensitive). */
    list(filter?: { resourceGroup?: string; type?: string }): ResourceRecord[];
    put(resource: ResourceRecord): void;
    delete(id: string): boolean;
  };
  /** Runs `fn` in one transaction: all of its writes or none. */
  transaction<T>(fn: () => T): T;
  /** Small named values of the control plane (for example the hubs created at run time). */
  settings: {
    get(name: string): string | undefined;
    set(name: string, value: string): void;
  };
}
