/**
 * What the domain needs from storage, in the domain's words. Implementations: ./sqlite.
 * Conditional writes are part of the interface (not read-then-write in the domain) so that
 * several Fleethub nodes can later share one database without losing updates.
 */
import type { Device, Module, RegistryStatistics } from '../hub/registry/types.js';
import type { SharedAccessPolicy } from '../hub/auth/types.js';
import type { TwinState } from '../hub/twins/types.js';
import type { CloudToDeviceMessage, CloudToDeviceOutcome } from '../hub/messaging/cloudToDeviceMessage.js';

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
}

export interface ModuleStore {
  get(deviceId: string, moduleId: string): Promise<Module | undefined>;
  listForDevice(deviceId: string): Promise<Module[]>;
  countForDevice(deviceId: string): Promise<number>;
  insert(module: Module): Promise<boolean>;
  replace(module: Module, ifEtag?: string): Promise<WriteResult>;
  delete(deviceId: string, moduleId: string, ifEtag?: string): Promise<WriteResult>;
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
   * The oldest message to deliver to the device, its delivery count already incremented.
   * Expired messages and those past `maxDeliveryCount` are removed (their outcomes recorded) on the way.
   */
  next(deviceId: string, now: number, maxDeliveryCount: number): Promise<CloudToDeviceMessage | undefined>;
  /** Removes a delivered message, recording the outcome for feedback. false when it is already gone. */
  complete(deviceId: string, sequenceNumber: number, outcome: CloudToDeviceOutcome, now: number): Promise<boolean>;
  depth(deviceId: string, now: number): Promise<number>;
}

export interface Store {
  devices: DeviceStore;
  modules: ModuleStore;
  policies: PolicyStore;
  twins: TwinStore;
  cloudToDevice: C2dQueue;
  close(): void;
}
