import { errors } from '../../core/errors.js';
import { generateKey, isValidDeviceId, isValidKey } from '../../core/ids.js';
import type { Authentication, AuthenticationType } from './types.js';

/** The fields of a device a caller may set; everything else is the hub's to decide. */
export interface DeviceInput {
  deviceId: string;
  status: 'enabled' | 'disabled';
  statusReason: string | null;
  authentication: Authentication;
  iotEdge: boolean;
  deviceScope?: string;
  parentScopes?: string[];
}

export interface ModuleInput {
  moduleId: string;
  deviceId: string;
  managedBy?: string;
  authentication: Authentication;
}

const authTypes: AuthenticationType[] = ['sas', 'selfSigned', 'certificateAuthority', 'none'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function requireId(id: unknown, what: 'DeviceId' | 'ModuleId'): string {
  if (!isValidDeviceId(id)) {
    throw errors.argument(
      `${what} '${String(id)}' is invalid: it must be 1-128 ASCII letters, digits or - : . + % _ # * ? ! ( ) , = @ ; $ '`,
    );
  }
  return id;
}

/** Parses a device body (REST PUT or bulk item). Unknown fields are ignored, as IoT Hub does. */
export function parseDeviceInput(body: unknown, deviceId: string): DeviceInput {
  if (!isObject(body)) throw errors.argument('The request body must be a JSON object describing the device');
  requireId(deviceId, 'DeviceId');
  if (body.deviceId !== undefined && body.deviceId !== deviceId) {
    throw errors.argument(`DeviceId in the body ('${String(body.deviceId)}') does not match the DeviceId in the URI ('${deviceId}')`);
  }
  const status = body.status ?? 'enabled';
  if (status !== 'enabled' && status !== 'disabled') throw errors.argument(`Invalid status '${String(status)}': use 'enabled' or 'disabled'`);
  const statusReason = body.statusReason ?? null;
  if (statusReason !== null && typeof statusReason !== 'string') throw errors.argument('statusReason must be a string');
  if (typeof statusReason === 'string' && statusReason.length > 128) throw errors.argument('statusReason is longer than 128 characters');
  const capabilities = body.capabilities ?? {};
  if (!isObject(capabilities)) throw errors.argument('capabilities must be an object');
  const iotEdge = capabilities.iotEdge ?? false;
  if (typeof iotEdge !== 'boolean') throw errors.argument('capabilities.iotEdge must be a boolean');
  const deviceScope = body.deviceScope ?? undefined;
  if (deviceScope !== undefined && typeof deviceScope !== 'string') throw errors.argument('deviceScope must be a string');
  const parentScopes = body.parentScopes ?? undefined;
  if (parentScopes !== undefined && (!Array.isArray(parentScopes) || !parentScopes.every((s) => typeof s === 'string'))) {
    throw errors.argument('parentScopes must be an array of strings');
  }
  return {
    deviceId,
    status,
    statusReason,
    authentication: parseAuthentication(body.authentication, false),
    iotEdge,
    deviceScope: deviceScope || undefined,
    parentScopes: parentScopes as string[] | undefined,
  };
}

export function parseModuleInput(body: unknown, deviceId: string, moduleId: string): ModuleInput {
  if (!isObject(body)) throw errors.argument('The request body must be a JSON object describing the module');
  requireId(deviceId, 'DeviceId');
  requireId(moduleId, 'ModuleId');
  if (body.deviceId !== undefined && body.deviceId !== deviceId) throw errors.argument('DeviceId in the body does not match the URI');
  if (body.moduleId !== undefined && body.moduleId !== moduleId) throw errors.argument('ModuleId in the body does not match the URI');
  if (body.managedBy !== undefined && body.managedBy !== null && typeof body.managedBy !== 'string') {
    throw errors.argument('managedBy must be a string');
  }
  return {
    deviceId,
    moduleId,
    managedBy: (body.managedBy as string | null | undefined) ?? undefined,
    authentication: parseAuthentication(body.authentication, true),
  };
}

/**
 * Normalizes `authentication`: a missing one means SAS; empty SAS keys are generated;
 * given keys must be base64 of 16..64 bytes; thumbprints are SHA-1 (40) or SHA-256 (64) hex.
 */
export function parseAuthentication(raw: unknown, isModule: boolean): Authentication {
  const auth = raw ?? {};
  if (!isObject(auth)) throw errors.argument('authentication must be an object');
  const sym = isObject(auth.symmetricKey) ? auth.symmetricKey : {};
  const x509 = isObject(auth.x509Thumbprint) ? auth.x509Thumbprint : {};
  const primaryThumbprint = normThumbprint(x509.primaryThumbprint, 'primaryThumbprint');
  const secondaryThumbprint = normThumbprint(x509.secondaryThumbprint, 'secondaryThumbprint');
  const type = (auth.type ?? (primaryThumbprint || secondaryThumbprint ? 'selfSigned' : 'sas')) as AuthenticationType;
  if (!authTypes.includes(type)) throw errors.argument(`Invalid authentication type '${String(type)}'`);
  if (type === 'none' && !isModule) throw errors.argument(`Authentication type 'none' is valid only for modules`);

  const empty = { symmetricKey: { primaryKey: null, secondaryKey: null }, x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null } };
  switch (type) {
    case 'sas': {
      const primaryKey = sym.primaryKey || generateKey();
      const secondaryKey = sym.secondaryKey || generateKey();
      for (const [name, key] of [['primaryKey', primaryKey], ['secondaryKey', secondaryKey]] as const) {
        if (!isValidKey(key)) throw errors.argument(`The ${name} is invalid: keys must be base64 and between 16 and 64 bytes long`);
      }
      return { ...empty, type, symmetricKey: { primaryKey: primaryKey as string, secondaryKey: secondaryKey as string } };
    }
    case 'selfSigned':
      if (!primaryThumbprint) throw errors.argument('A selfSigned device needs x509Thumbprint.primaryThumbprint');
      if (primaryThumbprint === secondaryThumbprint) throw errors.argument('The primary and secondary thumbprints must differ');
      return { ...empty, type, x509Thumbprint: { primaryThumbprint, secondaryThumbprint } };
    default:
      return { ...empty, type };
  }
}

function normThumbprint(v: unknown, name: string): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/.test(v.replace(/:/g, ''))) {
    throw errors.argument(`The ${name} is invalid: it must be a SHA-1 (40) or SHA-256 (64) hex thumbprint`);
  }
  return v.replace(/:/g, '').toUpperCase();
}
