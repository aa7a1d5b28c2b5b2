import { HubError } from '../../core/errors.js';
import type { Registry } from '../registry/registry.js';
import type { Device, Module } from '../registry/types.js';
import type { Twins } from '../twins/twins.js';

/**
 * devices.txt: one JSON object per line (IoT Hub's ExportImportDevice), a device and then each of
 * its modules, with authentication, status, twin tags, desired and reported properties, etags.
 */
type Json = Record<string, unknown>;

const MODES = ['create', 'update', 'updateifmatchetag', 'createorupdate', 'createorupdateifmatchetag', 'delete', 'deleteifmatchetag', 'updatetwin', 'updatetwinifmatchetag'];

/** Without the twin's own bookkeeping ($metadata, $version): what is written back on import. */
function values(section: unknown): Json {
  if (typeof section !== 'object' || section === null || Array.isArray(section)) return {};
  return Object.fromEntries(Object.entries(section as Json).filter(([k]) => !k.startsWith('$')));
}

function authenticationOut(a: Device['authentication'], excludeKeys: boolean): Json {
  if (excludeKeys) return { type: a.type, symmetricKey: { primaryKey: null, secondaryKey: null }, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } };
  return { type: a.type, symmetricKey: a.symmetricKey, x509Thumbprint: a.x509Thumbprint };
}

/** The lines of one device: itself, then its modules. */
export async function exportLines(registry: Registry, twins: Twins, deviceId: string, excludeKeys: boolean): Promise<string[]> {
  let device: Device;
  try {
    device = await registry.getDevice(deviceId);
  } catch {
    return []; // deleted while the export ran
  }
  const twin = await twins.getTwin(deviceId);
  const lines = [
    JSON.stringify({
      id: device.deviceId,
      eTag: device.etag,
      status: device.status,
      statusReason: device.statusReason,
      authentication: authenticationOut(device.authentication, excludeKeys),
      twinETag: twin.etag,
      tags: twin.tags ?? {},
      properties: { desired: twin.properties.desired, reported: twin.properties.reported },
      capabilities: device.capabilities,
      ...(device.deviceScope ? { deviceScope: device.deviceScope } : {}),
      ...(device.parentScopes?.length ? { parentScopes: device.parentScopes } : {}),
    }),
  ];
  for (const module of await registry.listModules(deviceId)) {
    const mt = await twins.getTwin(deviceId, module.moduleId);
    lines.push(
      JSON.stringify({
        id: deviceId,
        moduleId: module.moduleId,
        eTag: module.etag,
        authentication: authenticationOut(module.authentication, excludeKeys),
        twinETag: mt.etag,
        tags: mt.tags ?? {},
        properties: { desired: mt.properties.desired, reported: mt.properties.reported },
        ...(module.managedBy ? { managedBy: module.managedBy } : {}),
      }),
    );
  }
  return lines.map((l) => `${l}\n`);
}

export interface ImportError {
  deviceId: string;
  moduleId?: string;
  errorCode: string;
  errorStatus: string;
}

/** Applies one line; returns the error to log, if any (a bad line never stops the import). */
export async function importLine(registry: Registry, twins: Twins, text: string): Promise<ImportError | undefined> {
  let line: Json;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    line = parsed as Json;
  } catch (e) {
    return { deviceId: '', errorCode: 'IotHubFormatError', errorStatus: `The line is not a JSON object: ${(e as Error).message}` };
  }
  const deviceId = typeof line.id === 'string' ? line.id : '';
  const moduleId = typeof line.moduleId === 'string' && line.moduleId ? line.moduleId : undefined;
  const fail = (errorCode: string, errorStatus: string): ImportError => ({ deviceId, ...(moduleId ? { moduleId } : {}), errorCode, errorStatus });
  if (!deviceId) return fail('ArgumentInvalid', 'The line has no id');
  const mode = typeof line.importMode === 'string' ? line.importMode.toLowerCase() : 'createorupdate';
  if (!MODES.includes(mode)) return fail('ArgumentInvalid', `Unknown importMode '${String(line.importMode)}'`);
  const etag = typeof line.eTag === 'string' ? line.eTag.replace(/^"|"$/g, '') : undefined;
  const twinEtag = typeof line.twinETag === 'string' ? line.twinETag.replace(/^"|"$/g, '') : undefined;
  try {
    const exists = await (moduleId ? registry.getModule(deviceId, moduleId) : registry.getDevice(deviceId)).then(
      (x: Device | Module) => x,
      () => undefined,
    );
    const needEtag = () => {
      if (!etag) throw new HubError('PreconditionFailed', 'The import mode needs an eTag');
      return etag;
    };
    switch (mode) {
      case 'delete':
      case 'deleteifmatchetag': {
        if (!exists) return fail(moduleId ? 'ModuleNotFound' : 'DeviceNotFound', `${moduleId ? `Module ${moduleId} on device` : 'Device'} ${deviceId} not registered`);
        const ifMatch = mode === 'delete' ? '*' : needEtag();
        if (moduleId) await registry.deleteModule(deviceId, moduleId, ifMatch);
        else await registry.deleteDevice(deviceId, ifMatch);
        return undefined;
      }
      case 'updatetwin':
      case 'updatetwinifmatchetag':
        if (!exists) return fail(moduleId ? 'ModuleNotFound' : 'DeviceNotFound', `${deviceId} not registered`);
        await writeTwin(twins, deviceId, moduleId, line, mode === 'updatetwin' ? '*' : twinEtag ?? needEtag());
        return undefined;
      default: {
        if (mode === 'create' && exists) return fail(moduleId ? 'ModuleAlreadyExistsOnDevice' : 'DeviceAlreadyExists', `${moduleId ? `Module ${moduleId} on device ${deviceId}` : `Device ${deviceId}`} already exists`);
        if ((mode === 'update' || mode === 'updateifmatchetag') && !exists) return fail(moduleId ? 'ModuleNotFound' : 'DeviceNotFound', `${deviceId} not registered`);
        const ifMatch = !exists ? undefined : mode.endsWith('ifmatchetag') ? needEtag() : '*';
        const body: Json = { deviceId, ...(moduleId ? { moduleId } : {}), ...(line.authentication ? { authentication: line.authentication } : {}) };
        if (!moduleId) {
          if (line.status !== undefined) body.status = line.status;
          if (line.statusReason !== undefined && line.statusReason !== null) body.statusReason = line.statusReason;
          if (line.capabilities !== undefined) body.capabilities = line.capabilities;
          if (line.deviceScope !== undefined) body.deviceScope = line.deviceScope;
          if (line.parentScopes !== undefined) body.parentScopes = line.parentScopes;
        } else if (line.managedBy !== undefined) body.managedBy = line.managedBy;
        if (moduleId) await registry.putModule(deviceId, moduleId, body, ifMatch);
        else await registry.putDevice(deviceId, body, ifMatch);
        if (line.tags !== undefined || line.properties !== undefined) await writeTwin(twins, deviceId, moduleId, line, '*');
        return undefined;
      }
    }
  } catch (e) {
    if (e instanceof HubError) return fail(e.code, e.message);
    return fail('ServerError', (e as Error).message);
  }
}

async function writeTwin(twins: Twins, deviceId: string, moduleId: string | undefined, line: Json, ifMatch: string): Promise<void> {
  const properties = (typeof line.properties === 'object' && line.properties !== null ? line.properties : {}) as Json;
  await twins.replaceTwin(deviceId, moduleId, { tags: values(line.tags), properties: { desired: values(properties.desired) } }, ifMatch);
  const reported = values(properties.reported);
  if (Object.keys(reported).length > 0) await twins.updateReportedProperties(deviceId, moduleId, reported);
}
