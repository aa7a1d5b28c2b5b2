import { errors, HubError } from '../../core/errors.js';
import { NEVER, newEtag, newGenerationId } from '../../core/ids.js';
import type { DeviceStore, ModuleStore, WriteResult } from '../../store/index.js';
import type { Device, Module, RegistryStatistics } from './types.js';
import { parseDeviceInput, parseModuleInput, requireId, type DeviceInput } from './validation.js';

export const MAX_LIST_TOP = 1000;
export const MAX_BULK_DEVICES = 100;
export const MAX_MODULES_PER_DEVICE = 50;
const EDGE_SCOPE_PREFIX = 'ms-azure-iot-edge://';

export type BulkImportMode = 'create' | 'createOrUpdate' | 'update' | 'updateIfMatchETag' | 'delete' | 'deleteIfMatchETag';
const bulkModes: BulkImportMode[] = ['create', 'createOrUpdate', 'update', 'updateIfMatchETag', 'delete', 'deleteIfMatchETag'];

export interface BulkResult {
  isSuccessful: boolean;
  errors: { deviceId: string; errorCode: string; errorStatus: string }[];
  warnings: { deviceId: string; warningCode: string; warningStatus: string }[];
}

/** `If-Match` as the registry understands it: absent = create only, '*' = any existing, else an etag. */
export type IfMatch = undefined | '*' | string;

/** The identity registry: devices and modules, IoT Hub's rules, no knowledge of protocols or SQL. */
export class Registry {
  constructor(
    private readonly devices: DeviceStore,
    private readonly modules: ModuleStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async getDevice(deviceId: string): Promise<Device> {
    const device = await this.devices.get(deviceId);
    if (!device) throw errors.deviceNotFound(deviceId);
    return device;
  }

  async listDevices(top = MAX_LIST_TOP): Promise<Device[]> {
    if (!Number.isInteger(top) || top < 1 || top > MAX_LIST_TOP) {
      throw errors.argument(`top must be an integer between 1 and ${MAX_LIST_TOP}`);
    }
    return this.devices.list(top);
  }

  /** PUT /devices/{id}: create when `ifMatch` is absent, otherwise replace (etag-checked unless '*'). */
  async putDevice(deviceId: string, body: unknown, ifMatch: IfMatch): Promise<Device> {
    const input = parseDeviceInput(body, deviceId);
    if (ifMatch === undefined) return this.createDevice(input);
    return this.replaceDevice(input, ifMatch);
  }

  async deleteDevice(deviceId: string, ifMatch: IfMatch): Promise<void> {
    requireId(deviceId, 'DeviceId');
    check(await this.devices.delete(deviceId, ifMatch === '*' ? undefined : ifMatch), () => errors.deviceNotFound(deviceId), `Device ${deviceId}`);
  }

  async statistics(): Promise<RegistryStatistics> {
    return this.devices.statistics();
  }

  async serviceStatistics(): Promise<{ connectedDeviceCount: number }> {
    return { connectedDeviceCount: await this.devices.connectedCount() };
  }

  /** POST /devices: up to 100 operations; each item succeeds or fails on its own. */
  async bulk(items: unknown): Promise<BulkResult> {
    if (!Array.isArray(items) || items.length === 0) throw errors.argument('The request body must be a non-empty array of devices');
    if (items.length > MAX_BULK_DEVICES) {
      throw new HubError('TooManyDevices', `Too many devices in one bulk operation: ${items.length} (at most ${MAX_BULK_DEVICES})`);
    }
    const ops = items.map((item, i) => parseBulkItem(item, i));
    const seen = new Set<string>();
    for (const op of ops) {
      if (seen.has(op.id)) throw new HubError('DeviceDefinedMultipleTimes', `Device ${op.id} is defined more than once in the request`);
      seen.add(op.id);
    }
    const result: BulkResult = { isSuccessful: true, errors: [], warnings: [] };
    for (const op of ops) {
      try {
        await this.applyBulk(op);
      } catch (e) {
        if (!(e instanceof HubError)) throw e;
        result.isSuccessful = false;
        result.errors.push({ deviceId: op.id, errorCode: e.code, errorStatus: e.message });
      }
    }
    return result;
  }

  // ---- modules ----

  async getModule(deviceId: string, moduleId: string): Promise<Module> {
    const module = await this.modules.get(deviceId, moduleId);
    if (!module) throw errors.moduleNotFound(deviceId, moduleId);
    return module;
  }

  async listModules(deviceId: string): Promise<Module[]> {
    await this.getDevice(deviceId);
    return this.modules.listForDevice(deviceId);
  }

  async putModule(deviceId: string, moduleId: string, body: unknown, ifMatch: IfMatch): Promise<Module> {
    const input = parseModuleInput(body, deviceId, moduleId);
    await this.getDevice(deviceId);
    if (ifMatch === undefined) {
      if ((await this.modules.countForDevice(deviceId)) >= MAX_MODULES_PER_DEVICE) {
        throw new HubError('TooManyModulesOnDevice', `Device ${deviceId} already has ${MAX_MODULES_PER_DEVICE} modules`);
      }
      const module: Module = {
        ...input,
        generationId: newGenerationId(),
        etag: newEtag(),
        connectionState: 'Disconnected',
        connectionStateUpdatedTime: NEVER,
        lastActivityTime: NEVER,
        cloudToDeviceMessageCount: 0,
      };
      if (!(await this.modules.insert(module))) throw errors.moduleExists(deviceId, moduleId);
      return module;
    }
    const existing = await this.getModule(deviceId, moduleId);
    const module: Module = { ...existing, ...input, etag: newEtag() };
    check(await this.modules.replace(module, ifMatch === '*' ? undefined : ifMatch), () => errors.moduleNotFound(deviceId, moduleId), `Module ${moduleId}`);
    return module;
  }

  async deleteModule(deviceId: string, moduleId: string, ifMatch: IfMatch): Promise<void> {
    const result = await this.modules.delete(deviceId, moduleId, ifMatch === '*' ? undefined : ifMatch);
    check(result, () => errors.moduleNotFound(deviceId, moduleId), `Module ${moduleId}`);
  }

  // ---- internals ----

  private async createDevice(input: DeviceInput): Promise<Device> {
    const generationId = newGenerationId();
    const stamp = this.now().toISOString();
    const device: Device = {
      deviceId: input.deviceId,
      generationId,
      etag: newEtag(),
      status: input.status,
      statusReason: input.statusReason,
      statusUpdatedTime: stamp,
      connectionState: 'Disconnected',
      connectionStateUpdatedTime: NEVER,
      lastActivityTime: NEVER,
      cloudToDeviceMessageCount: 0,
      authentication: input.authentication,
      capabilities: { iotEdge: input.iotEdge },
      ...(await this.scopes(input, generationId)),
    };
    if (!(await this.devices.insert(device))) throw errors.deviceExists(input.deviceId);
    return device;
  }

  private async replaceDevice(input: DeviceInput, ifMatch: '*' | string): Promise<Device> {
    const existing = await this.getDevice(input.deviceId);
    if (ifMatch !== '*' && ifMatch !== existing.etag) throw errors.preconditionFailed(`Device ${input.deviceId}`);
    const device: Device = {
      ...existing,
      etag: newEtag(),
      status: input.status,
      statusReason: input.statusReason,
      statusUpdatedTime: input.status !== existing.status ? this.now().toISOString() : existing.statusUpdatedTime,
      authentication: input.authentication,
      capabilities: { iotEdge: input.iotEdge },
      deviceScope: undefined,
      parentScopes: undefined,
      ...(await this.scopes(input, existing.generationId)),
    };
    check(await this.devices.replace(device, existing.etag), () => errors.deviceNotFound(input.deviceId), `Device ${input.deviceId}`);
    return device;
  }

  /**
   * IoT Edge scopes: an edge device owns the scope `ms-azure-iot-edge://{id}-{generationId}` and may
   * name one parent edge device in parentScopes; a leaf device may name one edge device as its
   * deviceScope, which is then also its parentScopes. Scopes must belong to existing edge devices.
   */
  private async scopes(input: DeviceInput, generationId: string): Promise<Pick<Device, 'deviceScope' | 'parentScopes'>> {
    const parents = input.iotEdge ? input.parentScopes ?? [] : input.deviceScope ? [input.deviceScope] : [];
    if (!input.iotEdge && input.parentScopes?.length && input.parentScopes.some((s) => s !== input.deviceScope)) {
      throw errors.argument('A device that is not an IoT Edge device has parentScopes equal to its deviceScope');
    }
    if (parents.length > 1) throw errors.argument('A device can have at most one parent');
    for (const scope of parents) await this.requireEdgeScope(scope, input.deviceId);
    if (input.iotEdge) return { deviceScope: `${EDGE_SCOPE_PREFIX}${input.deviceId}-${generationId}`, parentScopes: parents };
    return parents.length ? { deviceScope: parents[0], parentScopes: parents } : {};
  }

  private async requireEdgeScope(scope: string, childId: string): Promise<void> {
    const m = scope.startsWith(EDGE_SCOPE_PREFIX) ? /^(.+)-(\d+)$/.exec(scope.slice(EDGE_SCOPE_PREFIX.length)) : null;
    const parentId = m?.[1];
    if (!parentId) throw errors.argument(`Invalid device scope '${scope}'`);
    if (parentId === childId) throw errors.argument('A device cannot be its own parent');
    const parent = await this.devices.get(parentId);
    if (!parent || parent.deviceScope !== scope || !parent.capabilities.iotEdge) {
      throw errors.argument(`Device scope '${scope}' does not belong to an existing IoT Edge device`);
    }
  }

  private async applyBulk(op: BulkOp): Promise<void> {
    const body = { ...op.body, deviceId: op.id };
    switch (op.mode) {
      case 'create':
        await this.createDevice(parseDeviceInput(body, op.id));
        return;
      case 'createOrUpdate':
        if (await this.devices.get(op.id)) await this.replaceDevice(parseDeviceInput(body, op.id), '*');
        else await this.createDevice(parseDeviceInput(body, op.id));
        return;
      case 'update':
        await this.replaceDevice(parseDeviceInput(body, op.id), '*');
        return;
      case 'updateIfMatchETag':
        await this.replaceDevice(parseDeviceInput(body, op.id), requireItemEtag(op));
        return;
      case 'delete':
        await this.deleteDevice(op.id, '*');
        return;
      case 'deleteIfMatchETag':
        await this.deleteDevice(op.id, requireItemEtag(op));
        return;
    }
  }
}

interface BulkOp {
  id: string;
  mode: BulkImportMode;
  etag?: string;
  body: Record<string, unknown>;
}

function parseBulkItem(item: unknown, index: number): BulkOp {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw errors.argument(`Item ${index} is not a device object`);
  const { id, importMode, eTag, etag, ...rest } = item as Record<string, unknown>;
  const deviceId = requireId(id ?? rest.deviceId, 'DeviceId');
  const mode = bulkModes.find((m) => m.toLowerCase() === String(importMode ?? 'createOrUpdate').toLowerCase());
  if (!mode) throw errors.argument(`Item ${index} (${deviceId}) has an invalid importMode '${String(importMode)}'`);
  const tag = eTag ?? etag;
  return { id: deviceId, mode, etag: typeof tag === 'string' && tag ? tag.replace(/^"(.*)"$/, '$1') : undefined, body: rest };
}

function requireItemEtag(op: BulkOp): string {
  if (!op.etag) throw errors.argument(`importMode ${op.mode} needs the device's eTag`);
  return op.etag;
}

function check(result: WriteResult, notFound: () => HubError, what: string): void {
  if (result === 'notFound') throw notFound();
  if (result === 'etagMismatch') throw errors.preconditionFailed(what);
}
