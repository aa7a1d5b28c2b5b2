/**
 * What the Event Hubs and Service Bus namespace providers share: the namespace's ARM record (its
 * group, location, tags and sku; the entities live in the namespace services' own stores), the
 * names both kinds share (`{name}.servicebus.{domain}` is one host name on Azure too), endpoints,
 * connection strings, and the mapping of the namespace services' errors to ARM's.
 */
import { HubError } from '../../core/errors.js';
import { ServiceBusError } from '../../namespaces/serviceBus/errors.js';
import type { ControlResourceStore, ResourceRecord } from '../../store/control.js';
import { ArmError, armErrors } from '../errors.js';
import { etag, nextEtag, parseTags } from '../iotHubs/iotHubs.js';
import type { ResourceId } from '../resourceIds.js';
import { sbEndpoint } from '../../core/sbEndpoint.js';

export const EVENTHUB_NAMESPACES_TYPE = 'Microsoft.EventHub/namespaces';
export const SERVICEBUS_NAMESPACES_TYPE = 'Microsoft.ServiceBus/namespaces';

/** Azure's rule for both kinds: 6-50 letters, digits and hyphens, a letter first, a letter or digit last. */
const NAMESPACE_NAME = /^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$/;
const SKUS = ['Basic', 'Standard', 'Premium'];

export interface NamespaceRecordBody {
  sku: { name: string; tier: string; capacity?: number };
  /** Set for namespaces the configuration file seeded (in the default group). */
  seeded?: boolean;
}

/** Where namespaces are reached: `{name}.servicebus.{domain}` on the primary hub's AMQP listeners. */
export interface NamespaceEndpoints {
  domain: string;
  /** The TLS AMQP port (5671 is left out of connection strings, as Azure's have none). */
  amqpPort: () => number;
}

export const namespaceHost = (name: string, e: NamespaceEndpoints) => `${name.toLowerCase()}.servicebus.${e.domain}`;
export const serviceBusEndpoint = (name: string, e: NamespaceEndpoints) => `https://${namespaceHost(name, e)}:443/`;

export function connectionString(name: string, e: NamespaceEndpoints, keyName: string, key: string, entityPath?: string): string {
  return `Endpoint=${sbEndpoint(namespaceHost(name, e), e.amqpPort())};SharedAccessKeyName=${keyName};SharedAccessKey=${key}${entityPath ? `;EntityPath=${entityPath}` : ''}`;
}

/** ARM's listKeys answer for a rule. */
export function keysOf(name: string, e: NamespaceEndpoints, rule: { name: string; primaryKey: string; secondaryKey: string }, entityPath?: string) {
  return {
    primaryConnectionString: connectionString(name, e, rule.name, rule.primaryKey, entityPath),
    secondaryConnectionString: connectionString(name, e, rule.name, rule.secondaryKey, entityPath),
    primaryKey: rule.primaryKey,
    secondaryKey: rule.secondaryKey,
    keyName: rule.name,
  };
}

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const lower = (s: string | undefined) => (s ?? '').toLowerCase();

/** The request body as an object (ARM's 400 otherwise), and its `properties` bag (may be absent). */
export function bodyProperties(body: unknown): Obj {
  if (body === undefined || body === null) return {};
  if (!isObj(body)) throw armErrors.invalidContent('The request content must be a JSON object.');
  const p = body.properties;
  if (p === undefined || p === null) return {};
  if (!isObj(p)) throw armErrors.invalidContent("'properties' must be an object.");
  return p;
}

export function rightsOf(p: Obj): ('Listen' | 'Send' | 'Manage')[] {
  const r = p.rights;
  if (!Array.isArray(r) || r.some((x) => typeof x !== 'string')) throw armErrors.invalidContent("'properties.rights' must be a list of 'Listen', 'Send' and 'Manage'.");
  const canon = r.map((x: string) => ['Listen', 'Send', 'Manage'].find((k) => k.toLowerCase() === x.toLowerCase()) ?? x);
  return canon as ('Listen' | 'Send' | 'Manage')[];
}

export function keyTypeOf(body: unknown): 'PrimaryKey' | 'SecondaryKey' {
  const b = isObj(body) ? body : {};
  if (b.key !== undefined && b.key !== null) throw armErrors.notSupported('key', '<a given key>');
  const t = typeof b.keyType === 'string' ? b.keyType.toLowerCase() : '';
  if (t === 'primarykey') return 'PrimaryKey';
  if (t === 'secondarykey') return 'SecondaryKey';
  throw armErrors.invalidContent("'keyType' must be 'PrimaryKey' or 'SecondaryKey'.");
}

/** A flag Fleethub does not have: refused when asked for. */
export function refuseTrue(p: Obj, names: string[], at = 'properties'): void {
  for (const n of names) if (p[n] === true) throw armErrors.notSupported(`${at}.${n}`, true);
}

export function optionalString(p: Obj, name: string): string | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw armErrors.invalidContent(`'properties.${name}' must be a string.`);
  return v;
}
export function optionalInt(p: Obj, name: string): number | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw armErrors.invalidContent(`'properties.${name}' must be an integer.`);
  return v;
}
export function optionalBool(p: Obj, name: string): boolean | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw armErrors.invalidContent(`'properties.${name}' must be true or false.`);
  return v;
}

/** The namespace services' errors as ARM's: bad input 400, unknown 404, name taken 409. */
export async function asArm<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ServiceBusError) {
      if (e.code === 'MessagingEntityNotFound') throw new ArmError(404, 'ResourceNotFound', e.message);
      if (e.code === 'MessagingEntityAlreadyExists') throw new ArmError(409, 'Conflict', `${e.message} (a queue and a topic cannot share a name).`);
      if (e.code === 'SessionsNotSupported') throw armErrors.notSupported('properties.requiresSession', true);
      throw armErrors.invalidContent(e.message);
    }
    if (e instanceof HubError) {
      if (e.code === 'NotFound') throw new ArmError(404, 'ResourceNotFound', e.message);
      if (e.status === 400 || e.code === 'ArgumentInvalid' || e.code === 'InvalidOperation') throw armErrors.invalidContent(e.message);
    }
    throw e;
  }
}

export const parentNotFound = (type: string, name: string) =>
  new ArmError(404, 'ParentResourceNotFound', `Can not perform requested operation on nested resource. Parent resource '${name}' of type '${type}' not found.`);
export const childNotFound = (type: string, name: string, rg: string) => armErrors.resourceNotFound(type, name, rg);

/** The namespace records of both kinds (names are one space, as `{name}.servicebus.windows.net` is). */
export class NamespaceRecords {
  constructor(
    private readonly store: ControlResourceStore,
    readonly type: string,
    private readonly otherType: string,
  ) {}

  byName(name: string): ResourceRecord | undefined {
    return this.store.resources.list({ type: this.type }).find((r) => r.name.toLowerCase() === name.toLowerCase());
  }

  /** The record `id` names (its group must match), or undefined. */
  of(id: ResourceId): ResourceRecord | undefined {
    const r = this.byName(id.name);
    return r && r.resourceGroup.toLowerCase() === id.resourceGroup.toLowerCase() ? r : undefined;
  }

  /** ARM's errors for a name that cannot be this namespace: malformed, or taken elsewhere. */
  checkNewName(id: ResourceId): void {
    const mine = this.byName(id.name);
    // Azure's name rules for new namespaces (a configured one may predate them).
    if (!mine && (!NAMESPACE_NAME.test(id.name) || /-(sb|mgmt)$/i.test(id.name))) {
      throw armErrors.badRequest(
        'InvalidResourceName',
        `The namespace name '${id.name}' is invalid: 6-50 letters, digits and hyphens, starting with a letter and ending with a letter or digit (not '-sb' or '-mgmt').`,
      );
    }
    const other = this.store.resources.list({ type: this.otherType }).find((r) => r.name.toLowerCase() === id.name.toLowerCase());
    if ((mine && mine.resourceGroup.toLowerCase() !== id.resourceGroup.toLowerCase()) || other) {
      throw armErrors.conflict('NamespaceNameNotAvailable', `The namespace name '${id.name}' is not available: it is taken by ${other ? other.type : `a namespace in resource group '${mine!.resourceGroup}'`} (namespace names are unique across Event Hubs and Service Bus).`);
    }
  }

  /** The body of a PUT or PATCH of the namespace: tags, sku; features Fleethub has not are refused. */
  parse(body: Obj, existing?: ResourceRecord): { location?: string; tags: Record<string, string>; sku: NamespaceRecordBody['sku'] } {
    const location = typeof body.location === 'string' && body.location ? body.location : undefined;
    const current = (existing?.body as NamespaceRecordBody | undefined)?.sku;
    let sku = current ?? { name: 'Standard', tier: 'Standard', capacity: 1 };
    if (body.sku !== undefined && body.sku !== null) {
      if (!isObj(body.sku) || typeof body.sku.name !== 'string') throw armErrors.invalidContent("'sku.name' must be one of Basic, Standard, Premium.");
      const name = SKUS.find((s) => s.toLowerCase() === String(body.sku && (body.sku as Obj).name).toLowerCase());
      if (!name) throw armErrors.invalidContent(`'sku.name' must be one of Basic, Standard, Premium, not '${String(body.sku.name)}'.`);
      const capacity = body.sku.capacity;
      if (capacity !== undefined && capacity !== null && (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 0)) throw armErrors.invalidContent("'sku.capacity' must be a non-negative integer.");
      sku = { name, tier: name, ...(typeof capacity === 'number' ? { capacity } : current?.capacity !== undefined ? { capacity: current.capacity } : {}) };
    }
    const p = bodyProperties(body);
    refuseTrue(p, ['zoneRedundant', 'isAutoInflateEnabled', 'kafkaEnabled']);
    if (isObj(body.identity) && typeof body.identity.type === 'string' && body.identity.type !== 'None') throw armErrors.notSupported('identity.type', body.identity.type);
    if (isObj(p.encryption)) throw armErrors.notSupported('properties.encryption', p.encryption);
    return { ...(location ? { location } : {}), tags: body.tags === undefined && existing ? existing.tags : parseTags(body.tags), sku };
  }

  put(record: ResourceRecord): void {
    this.store.resources.put(record);
  }

  nextEtag(current: string | undefined): string {
    return current ? nextEtag(current) : etag(1);
  }

  list(filter: { resourceGroup?: string }): ResourceRecord[] {
    return this.store.resources.list({ type: this.type, ...filter });
  }

  delete(id: string): void {
    this.store.resources.delete(id);
  }
}
