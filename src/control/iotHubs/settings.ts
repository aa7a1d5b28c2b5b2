/**
 * The settable part of a `Microsoft.Devices/IotHubs` body (api-versions 2021-03-31 and 2023-06-30),
 * validated. What GET returned is accepted back (read-only fields are ignored); a feature Fleethub
 * does not have, set to a non-default value, is refused; omitted blocks take Azure's defaults.
 */
import { armErrors } from '../errors.js';
import { parseUserAssignedIdentityId } from '../resourceIds.js';
import { compileRouteCondition } from '../../hub/routing/query/index.js';
import { RouteConditionError } from '../../hub/routing/types.js';
import { fileNameFormatError, storageEncoding } from '../../hub/routing/storageEndpoint.js';

export type IdentityType = 'None' | 'SystemAssigned' | 'UserAssigned' | 'SystemAssigned, UserAssigned';

export interface HubIdentitySetting {
  type: IdentityType;
  /** Resource ids of the attached user-assigned identities, as given. */
  userAssignedIdentities: string[];
}

/** What is stored per hub (besides location and tags). */
export interface HubSettings {
  sku: { name: string; capacity: number };
  identity: HubIdentitySetting;
  properties: {
    eventHubEndpoints: { events: { retentionTimeInDays: number; partitionCount: number } };
    routing: Routing;
    storageEndpoints: Record<string, StorageEndpoint>;
    messagingEndpoints: { fileNotifications: { lockDurationAsIso8601: string; ttlAsIso8601: string; maxDeliveryCount: number } };
    enableFileUploadNotifications: boolean;
    cloudToDevice: {
      maxDeliveryCount: number;
      defaultTtlAsIso8601: string;
      feedback: { lockDurationAsIso8601: string; ttlAsIso8601: string; maxDeliveryCount: number };
    };
    minTlsVersion?: string;
    comments?: string;
  };
}

interface OutboundIdentity {
  authenticationType?: string;
  identity?: { userAssignedIdentity?: string | null } | null;
}
type Endpoint = OutboundIdentity & { name: string; [k: string]: unknown };
interface Routing {
  endpoints: { serviceBusQueues: Endpoint[]; serviceBusTopics: Endpoint[]; eventHubs: Endpoint[]; storageContainers: Endpoint[]; cosmosDBSqlContainers: Endpoint[] };
  routes: { name: string; source: string; condition?: string; endpointNames: string[]; isEnabled: boolean }[];
  fallbackRoute: { name: string; source: string; condition: string; endpointNames: string[]; isEnabled: boolean };
  enrichments: { key: string; value: string; endpointNames: string[] }[];
}
type StorageEndpoint = OutboundIdentity & { sasTtlAsIso8601: string; connectionString: string; containerName: string };

export const SKUS: Record<string, string> = { F1: 'Free', S1: 'Standard', S2: 'Standard', S3: 'Standard', B1: 'Basic', B2: 'Basic', B3: 'Basic' };
const ROUTE_SOURCES = ['DeviceMessages', 'TwinChangeEvents', 'DeviceLifecycleEvents', 'DeviceJobLifecycleEvents', 'DigitalTwinChangeEvents', 'DeviceConnectionStateEvents', 'MqttBrokerMessages'];
/** IoT Hub's routing limits: paid tiers, and the free tier (F1). */
const ROUTING_LIMITS = { paid: { routes: 100, endpoints: 10, enrichments: 10 }, free: { routes: 5, endpoints: 1, enrichments: 2 } };
const READ_ONLY = ['provisioningState', 'state', 'hostName', 'locations', 'hostNameSuffix'];

export function defaultSettings(partitionCount: number): HubSettings {
  return {
    sku: { name: 'S1', capacity: 1 },
    identity: { type: 'None', userAssignedIdentities: [] },
    properties: {
      eventHubEndpoints: { events: { retentionTimeInDays: 1, partitionCount } },
      routing: defaultRouting(),
      storageEndpoints: { $default: { sasTtlAsIso8601: 'PT1H', connectionString: '', containerName: '' } },
      messagingEndpoints: { fileNotifications: { lockDurationAsIso8601: 'PT1M', ttlAsIso8601: 'PT1H', maxDeliveryCount: 10 } },
      enableFileUploadNotifications: false,
      cloudToDevice: { maxDeliveryCount: 10, defaultTtlAsIso8601: 'PT1H', feedback: { lockDurationAsIso8601: 'PT1M', ttlAsIso8601: 'PT1H', maxDeliveryCount: 10 } },
    },
  };
}

function defaultRouting(): Routing {
  return {
    endpoints: { serviceBusQueues: [], serviceBusTopics: [], eventHubs: [], storageContainers: [], cosmosDBSqlContainers: [] },
    routes: [],
    fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: ['events'], isEnabled: true },
    enrichments: [],
  };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (path: string, why: string) => armErrors.invalidContent(`Invalid value for '${path}': ${why}.`);

function obj(v: unknown, path: string): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw bad(path, 'expected an object');
  return v;
}
function int(v: unknown, path: string, min: number, max: number, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(path, `expected an integer from ${min} to ${max}`);
  return v;
}
function bool(v: unknown, path: string, fallback: boolean): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw bad(path, 'expected true or false');
  return v;
}
function str(v: unknown, path: string, fallback?: string): string {
  if ((v === undefined || v === null) && fallback !== undefined) return fallback;
  if (typeof v !== 'string') throw bad(path, 'expected a string');
  return v;
}
/** ISO 8601 durations as IoT Hub takes them, in seconds, within bounds. */
function duration(v: unknown, path: string, minSeconds: number, maxSeconds: number, fallback: string): string {
  const s = str(v, path, fallback);
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(s);
  if (!m || s.toUpperCase() === 'P' || s.toUpperCase().endsWith('T')) throw bad(path, `'${s}' is not an ISO 8601 duration`);
  const seconds = Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  if (seconds < minSeconds || seconds > maxSeconds) throw bad(path, `${s} is outside ${minSeconds}s to ${maxSeconds}s`);
  return s;
}
function onlyDefault(v: unknown, path: string, isDefault: (v: unknown) => boolean): void {
  if (v !== undefined && v !== null && !isDefault(v)) throw armErrors.notSupported(path, v);
}
const emptyList = (v: unknown) => Array.isArray(v) && v.length === 0;

export function parseIdentity(v: unknown): HubIdentitySetting {
  const o = obj(v, 'identity');
  if (!o) return { type: 'None', userAssignedIdentities: [] };
  const raw = str(o.type, 'identity.type', 'None');
  const parts = raw.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean).sort();
  const key = parts.join(',');
  const type: IdentityType | undefined = (
    { none: 'None', systemassigned: 'SystemAssigned', userassigned: 'UserAssigned', 'systemassigned,userassigned': 'SystemAssigned, UserAssigned' } as Record<string, IdentityType>
  )[key];
  if (!type) throw bad('identity.type', `'${raw}' is not one of None, SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned'`);
  const uai = obj(o.userAssignedIdentities, 'identity.userAssignedIdentities') ?? {};
  // In a body, a null value detaches (as in ARM's PATCH); `{}` or what GET returned attaches.
  const ids = Object.entries(uai)
    .filter(([, value]) => value !== null)
    .map(([id]) => {
      parseUserAssignedIdentityId(id, 'identity.userAssignedIdentities');
      return id;
    });
  const wantsUser = type === 'UserAssigned' || type === 'SystemAssigned, UserAssigned';
  if (wantsUser && ids.length === 0) throw bad('identity.userAssignedIdentities', `identity type '${type}' needs at least one user-assigned identity`);
  if (!wantsUser && ids.length > 0) throw bad('identity.userAssignedIdentities', `identity type '${type}' takes no user-assigned identities`);
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id.toLowerCase())) throw bad('identity.userAssignedIdentities', `'${id}' is given twice`);
    seen.add(id.toLowerCase());
  }
  return { type, userAssignedIdentities: ids };
}

/** Parses a PUT body's settable fields against the hub's fixed facts (its partition count). */
export function parseSettings(body: Json, fixed: { partitionCount: number; policies?: { keyName: string; rights: string }[] }): HubSettings {
  const d = defaultSettings(fixed.partitionCount);
  const skuIn = obj(body.sku, 'sku');
  const skuName = skuIn ? str(skuIn.name, 'sku.name') : 'S1';
  const sku = SKUS[skuName.toUpperCase()] ? skuName.toUpperCase() : undefined;
  if (!sku) throw bad('sku.name', `'${skuName}' is not one of ${Object.keys(SKUS).join(', ')}`);
  const capacity = int(skuIn?.capacity, 'sku.capacity', 1, 200, 1);
  const p = obj(body.properties, 'properties') ?? {};

  const known = [
    ...READ_ONLY,
    ...['authorizationPolicies', 'disableLocalAuth', 'disableDeviceSAS', 'disableModuleSAS', 'restrictOutboundNetworkAccess', 'allowedFqdnList'],
    ...['publicNetworkAccess', 'ipFilterRules', 'networkRuleSets', 'minTlsVersion', 'privateEndpointConnections', 'eventHubEndpoints', 'routing'],
    ...['storageEndpoints', 'messagingEndpoints', 'enableFileUploadNotifications', 'cloudToDevice', 'comments', 'features', 'enableDataResidency'],
    ...['rootCertificate', 'deviceStreams', 'encryption', 'ipVersion'],
  ];
  for (const k of Object.keys(p)) if (!known.includes(k)) throw armErrors.invalidContent(`Unknown property 'properties.${k}' of Microsoft.Devices/IotHubs.`);

  onlyDefault(p.disableLocalAuth, 'properties.disableLocalAuth', (v) => v === false);
  onlyDefault(p.disableDeviceSAS, 'properties.disableDeviceSAS', (v) => v === false);
  onlyDefault(p.disableModuleSAS, 'properties.disableModuleSAS', (v) => v === false);
  onlyDefault(p.restrictOutboundNetworkAccess, 'properties.restrictOutboundNetworkAccess', (v) => v === false);
  onlyDefault(p.allowedFqdnList, 'properties.allowedFqdnList', emptyList);
  onlyDefault(p.publicNetworkAccess, 'properties.publicNetworkAccess', (v) => v === 'Enabled');
  onlyDefault(p.ipFilterRules, 'properties.ipFilterRules', emptyList);
  onlyDefault(p.networkRuleSets, 'properties.networkRuleSets', (v) => isObject(v) && (v.ipRules === undefined || emptyList(v.ipRules)) && v.defaultAction !== 'Deny');
  onlyDefault(p.privateEndpointConnections, 'properties.privateEndpointConnections', emptyList);
  onlyDefault(p.enableDataResidency, 'properties.enableDataResidency', (v) => v === false);
  onlyDefault(p.features, 'properties.features', (v) => v === 'None');
  onlyDefault(p.deviceStreams, 'properties.deviceStreams', (v) => isObject(v) && (v.streamingEndpoints === undefined || emptyList(v.streamingEndpoints)));
  onlyDefault(p.encryption, 'properties.encryption', (v) => isObject(v) && Object.keys(v).length === 0);
  onlyDefault(p.ipVersion, 'properties.ipVersion', (v) => v === 'ipv4');
  onlyDefault(p.rootCertificate, 'properties.rootCertificate', (v) => isObject(v));
  onlyDefault(p.minTlsVersion, 'properties.minTlsVersion', (v) => v === '1.2');
  if (p.authorizationPolicies !== undefined && p.authorizationPolicies !== null) {
    if (!Array.isArray(p.authorizationPolicies)) throw bad('properties.authorizationPolicies', 'expected a list');
    const given = p.authorizationPolicies.map((x, i) => {
      const o = obj(x, `properties.authorizationPolicies[${i}]`)!;
      return `${str(o.keyName, `properties.authorizationPolicies[${i}].keyName`)}:${normalizeRights(str(o.rights, `properties.authorizationPolicies[${i}].rights`))}`;
    });
    const current = (fixed.policies ?? []).map((x) => `${x.keyName}:${normalizeRights(x.rights)}`);
    if (given.sort().join('|').toLowerCase() !== current.sort().join('|').toLowerCase()) {
      throw armErrors.badRequest(
        'FeatureNotSupported',
        "Changing 'properties.authorizationPolicies' through the control plane is not supported by Fleethub yet: use `fleethub policy` (omit the property, or send the hub's current policies).",
      );
    }
  }

  const ehIn = obj(p.eventHubEndpoints, 'properties.eventHubEndpoints') ?? {};
  for (const k of Object.keys(ehIn)) if (k !== 'events') throw armErrors.notSupported(`properties.eventHubEndpoints.${k}`, ehIn[k]);
  const events = obj(ehIn.events, 'properties.eventHubEndpoints.events') ?? {};
  const partitionCount = int(events.partitionCount, 'properties.eventHubEndpoints.events.partitionCount', 1, 128, fixed.partitionCount);
  if (partitionCount !== fixed.partitionCount) {
    throw armErrors.badRequest(
      'InvalidPartitionCount',
      `The partition count of the built-in endpoint is ${fixed.partitionCount}, fixed when the hub was created (Fleethub creates hubs with eventLog.partitions); it cannot be ${partitionCount}.`,
    );
  }
  const retentionTimeInDays = int(events.retentionTimeInDays, 'properties.eventHubEndpoints.events.retentionTimeInDays', 1, 7, 1);

  const c2dIn = obj(p.cloudToDevice, 'properties.cloudToDevice') ?? {};
  const feedbackIn = obj(c2dIn.feedback, 'properties.cloudToDevice.feedback') ?? {};
  const fnIn = obj(obj(p.messagingEndpoints, 'properties.messagingEndpoints')?.fileNotifications, 'properties.messagingEndpoints.fileNotifications') ?? {};
  const settings: HubSettings = {
    sku: { name: sku, capacity },
    identity: parseIdentity(body.identity),
    properties: {
      eventHubEndpoints: { events: { retentionTimeInDays, partitionCount } },
      routing: parseRouting(p.routing, sku === 'F1' ? ROUTING_LIMITS.free : ROUTING_LIMITS.paid),
      storageEndpoints: parseStorage(p.storageEndpoints, d.properties.storageEndpoints),
      messagingEndpoints: {
        fileNotifications: {
          lockDurationAsIso8601: duration(fnIn.lockDurationAsIso8601, 'properties.messagingEndpoints.fileNotifications.lockDurationAsIso8601', 5, 300, 'PT1M'),
          ttlAsIso8601: duration(fnIn.ttlAsIso8601, 'properties.messagingEndpoints.fileNotifications.ttlAsIso8601', 60, 48 * 3600, 'PT1H'),
          maxDeliveryCount: int(fnIn.maxDeliveryCount, 'properties.messagingEndpoints.fileNotifications.maxDeliveryCount', 1, 100, 10),
        },
      },
      enableFileUploadNotifications: bool(p.enableFileUploadNotifications, 'properties.enableFileUploadNotifications', false),
      cloudToDevice: {
        maxDeliveryCount: int(c2dIn.maxDeliveryCount, 'properties.cloudToDevice.maxDeliveryCount', 1, 100, 10),
        defaultTtlAsIso8601: duration(c2dIn.defaultTtlAsIso8601, 'properties.cloudToDevice.defaultTtlAsIso8601', 60, 48 * 3600, 'PT1H'),
        feedback: {
          lockDurationAsIso8601: duration(feedbackIn.lockDurationAsIso8601, 'properties.cloudToDevice.feedback.lockDurationAsIso8601', 5, 300, 'PT1M'),
          ttlAsIso8601: duration(feedbackIn.ttlAsIso8601, 'properties.cloudToDevice.feedback.ttlAsIso8601', 60, 48 * 3600, 'PT1H'),
          maxDeliveryCount: int(feedbackIn.maxDeliveryCount, 'properties.cloudToDevice.feedback.maxDeliveryCount', 1, 100, 10),
        },
      },
      ...(p.minTlsVersion ? { minTlsVersion: '1.2' } : {}),
      ...(p.comments !== undefined && p.comments !== null ? { comments: str(p.comments, 'properties.comments') } : {}),
    },
  };
  checkIdentityUse(settings);
  return settings;
}

const normalizeRights = (r: string) => r.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean).sort().join(',');

function parseOutbound(o: Json, path: string): OutboundIdentity {
  const authenticationType = o.authenticationType === undefined || o.authenticationType === null ? undefined : str(o.authenticationType, `${path}.authenticationType`);
  if (authenticationType !== undefined && authenticationType !== 'keyBased' && authenticationType !== 'identityBased') {
    throw bad(`${path}.authenticationType`, `'${authenticationType}' is not keyBased or identityBased`);
  }
  const identity = obj(o.identity, `${path}.identity`);
  const uai = identity?.userAssignedIdentity;
  if (uai !== undefined && uai !== null) {
    if (authenticationType !== 'identityBased') throw bad(`${path}.identity`, 'an identity is only used with authenticationType identityBased');
    parseUserAssignedIdentityId(uai, `${path}.identity.userAssignedIdentity`);
  }
  return { ...(authenticationType ? { authenticationType } : {}), ...(identity ? { identity: { userAssignedIdentity: (uai as string | null | undefined) ?? null } } : {}) };
}

function parseRouting(v: unknown, limits: { routes: number; endpoints: number; enrichments: number }): Routing {
  const r = obj(v, 'properties.routing');
  const routing = defaultRouting();
  if (!r) return routing;
  for (const k of Object.keys(r)) if (!['endpoints', 'routes', 'fallbackRoute', 'enrichments'].includes(k)) throw armErrors.invalidContent(`Unknown property 'properties.routing.${k}'.`);
  const names = new Set<string>(['events']);
  const e = obj(r.endpoints, 'properties.routing.endpoints') ?? {};
  for (const kind of Object.keys(routing.endpoints) as (keyof Routing['endpoints'])[]) {
    const list = e[kind];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw bad(`properties.routing.endpoints.${kind}`, 'expected a list');
    routing.endpoints[kind] = list.map((x, i) => {
      const path = `properties.routing.endpoints.${kind}[${i}]`;
      const o = obj(x, path);
      if (!o) throw bad(path, 'expected an object');
      const name = str(o.name, `${path}.name`);
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || ['events', 'operationsmonitoringevents', 'filenotifications', '$default'].includes(name.toLowerCase())) throw bad(`${path}.name`, `'${name}' is not a valid endpoint name (letters, digits, . _ -, up to 64; not a reserved name)`);
      if (names.has(name.toLowerCase())) throw bad(`${path}.name`, `an endpoint named '${name}' already exists`);
      names.add(name.toLowerCase());
      const auth = parseOutbound(o, path);
      if ((auth.authenticationType ?? 'keyBased') === 'keyBased' && kind !== 'cosmosDBSqlContainers') str(o.connectionString, `${path}.connectionString`);
      if (auth.authenticationType === 'identityBased') str(o.endpointUri, `${path}.endpointUri`);
      if (auth.authenticationType === 'identityBased' && kind !== 'storageContainers' && kind !== 'cosmosDBSqlContainers') str(o.entityPath, `${path}.entityPath`);
      if (kind === 'storageContainers') {
        str(o.containerName, `${path}.containerName`);
        // Checked here, not first at delivery (where a bad value could only fail or drop batches).
        if (o.encoding !== undefined && o.encoding !== null && (typeof o.encoding !== 'string' || !storageEncoding(o.encoding))) throw bad(`${path}.encoding`, 'expected avro, avroDeflate or json');
        if (o.fileNameFormat !== undefined && o.fileNameFormat !== null) {
          const why = typeof o.fileNameFormat === 'string' ? fileNameFormatError(o.fileNameFormat) : 'expected a string';
          if (why) throw bad(`${path}.fileNameFormat`, why);
        }
        // IoT Hub: 60 to 720 s. Below 60 is taken (tests' short windows) and raised to routing.minBatchFrequencySeconds at delivery.
        int(o.batchFrequencyInSeconds, `${path}.batchFrequencyInSeconds`, 1, 720, 300);
        int(o.maxChunkSizeInBytes, `${path}.maxChunkSizeInBytes`, 10_485_760, 524_288_000, 314_572_800);
      }
      return { ...o, ...auth, name } as Endpoint;
    });
  }
  const endpointCount = Object.values(routing.endpoints).reduce((n, list) => n + list.length, 0);
  if (endpointCount > limits.endpoints) {
    throw bad('properties.routing.endpoints', `${endpointCount} custom endpoints, more than the ${limits.endpoints} allowed across all endpoint types for this hub's tier`);
  }
  const route = (x: unknown, path: string, fallback: boolean) => {
    const o = obj(x, path);
    if (!o) throw bad(path, 'expected an object');
    // Any case, kept in IoT Hub's spelling: azure-cli sends `az iot hub route create --source`'s value lower-cased.
    const given = str(o.source, `${path}.source`);
    const source = ROUTE_SOURCES.find((x) => x.toLowerCase() === given.toLowerCase());
    if (!source) throw bad(`${path}.source`, `'${given}' is not one of ${ROUTE_SOURCES.join(', ')}`);
    if (!Array.isArray(o.endpointNames) || o.endpointNames.length !== 1) throw bad(`${path}.endpointNames`, 'expected a list of exactly one endpoint name');
    const endpoint = str(o.endpointNames[0], `${path}.endpointNames[0]`);
    if (!names.has(endpoint.toLowerCase())) throw bad(`${path}.endpointNames`, `no endpoint named '${endpoint}'`);
    const name = str(o.name, `${path}.name`, fallback ? '$fallback' : undefined);
    const condition = str(o.condition, `${path}.condition`, 'true');
    try {
      compileRouteCondition(condition);
    } catch (e) {
      // IoT Hub: 400 "Invalid Routing Condition, RouteName:…, ErrorMessage:…, Location …" (IH400104).
      if (e instanceof RouteConditionError) {
        throw armErrors.badRequest('IH400104', `Invalid Routing Condition, RouteName:${name}, ErrorMessage:${e.message}, Location <start>:${e.line}:${e.column} (${path}.condition).`);
      }
      throw e;
    }
    return {
      name,
      source,
      condition,
      endpointNames: [endpoint],
      isEnabled: bool(o.isEnabled, `${path}.isEnabled`, true),
    };
  };
  if (r.routes !== undefined && r.routes !== null) {
    if (!Array.isArray(r.routes)) throw bad('properties.routing.routes', 'expected a list');
    if (r.routes.length > limits.routes) throw bad('properties.routing.routes', `${r.routes.length} routes, more than the ${limits.routes} allowed for this hub's tier`);
    const seen = new Set<string>();
    routing.routes = r.routes.map((x, i) => {
      const parsed = route(x, `properties.routing.routes[${i}]`, false);
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(parsed.name)) throw bad(`properties.routing.routes[${i}].name`, `'${parsed.name}' is not a valid route name`);
      if (seen.has(parsed.name.toLowerCase())) throw bad(`properties.routing.routes[${i}].name`, `a route named '${parsed.name}' already exists`);
      seen.add(parsed.name.toLowerCase());
      return parsed;
    });
  }
  if (r.fallbackRoute !== undefined && r.fallbackRoute !== null) routing.fallbackRoute = route(r.fallbackRoute, 'properties.routing.fallbackRoute', true);
  if (r.enrichments !== undefined && r.enrichments !== null) {
    if (!Array.isArray(r.enrichments)) throw bad('properties.routing.enrichments', 'expected a list');
    if (r.enrichments.length > limits.enrichments) throw bad('properties.routing.enrichments', `${r.enrichments.length} enrichments, more than the ${limits.enrichments} allowed for this hub's tier`);
    const keys = new Set<string>();
    routing.enrichments = r.enrichments.map((x, i) => {
      const path = `properties.routing.enrichments[${i}]`;
      const o = obj(x, path) ?? {};
      if (!Array.isArray(o.endpointNames)) throw bad(`${path}.endpointNames`, 'expected a list');
      for (const n of o.endpointNames) if (typeof n !== 'string' || !names.has(n.toLowerCase())) throw bad(`${path}.endpointNames`, `no endpoint named '${String(n)}'`);
      const key = str(o.key, `${path}.key`);
      if (key.trim() === '') throw bad(`${path}.key`, 'an enrichment needs a key');
      if (keys.has(key.toLowerCase())) throw bad(`${path}.key`, `an enrichment with the key '${key}' already exists`);
      keys.add(key.toLowerCase());
      if (o.endpointNames.length === 0) throw bad(`${path}.endpointNames`, 'an enrichment applies to at least one endpoint');
      return { key, value: str(o.value, `${path}.value`), endpointNames: o.endpointNames as string[] };
    });
  }
  return routing;
}

function parseStorage(v: unknown, defaults: Record<string, StorageEndpoint>): Record<string, StorageEndpoint> {
  const s = obj(v, 'properties.storageEndpoints');
  if (!s) return defaults;
  for (const k of Object.keys(s)) if (k !== '$default') throw bad(`properties.storageEndpoints.${k}`, "the only storage endpoint is '$default'");
  const o = obj(s.$default, 'properties.storageEndpoints.$default');
  if (!o) return defaults;
  const path = 'properties.storageEndpoints.$default';
  const auth = parseOutbound(o, path);
  return {
    $default: {
      sasTtlAsIso8601: duration(o.sasTtlAsIso8601, `${path}.sasTtlAsIso8601`, 60, 24 * 3600, 'PT1H'),
      connectionString: str(o.connectionString, `${path}.connectionString`, ''),
      containerName: str(o.containerName, `${path}.containerName`, ''),
      ...auth,
    },
  };
}

/**
 * An outbound connection that authenticates as an identity needs that identity on the hub:
 * `identityBased` without a user-assigned id uses the system-assigned one (so it cannot be turned
 * off while used), and a user-assigned id must be attached (so it cannot be detached while used).
 */
export function checkIdentityUse(settings: HubSettings): void {
  const system = settings.identity.type.includes('SystemAssigned');
  const attached = new Set(settings.identity.userAssignedIdentities.map((x) => x.toLowerCase()));
  const users: { path: string; o: OutboundIdentity }[] = [];
  for (const [kind, list] of Object.entries(settings.properties.routing.endpoints)) {
    (list as Endpoint[]).forEach((o) => users.push({ path: `properties.routing.endpoints.${kind}['${o.name}']`, o }));
  }
  for (const [name, o] of Object.entries(settings.properties.storageEndpoints)) users.push({ path: `properties.storageEndpoints.${name}`, o });
  for (const { path, o } of users) {
    if (o.authenticationType !== 'identityBased') continue;
    const uai = o.identity?.userAssignedIdentity;
    if (!uai && !system) {
      throw armErrors.badRequest(
        'IdentityInUse',
        `${path} authenticates with the hub's system-assigned identity (authenticationType identityBased, no userAssignedIdentity), so the identity type must include SystemAssigned (it is '${settings.identity.type}'). Change the endpoint first.`,
      );
    }
    if (uai && !attached.has(uai.toLowerCase())) {
      throw armErrors.badRequest(
        'IdentityInUse',
        `${path} authenticates with the user-assigned identity '${uai}', which is not attached to the hub (identity.userAssignedIdentities). Attach it, or change the endpoint first.`,
      );
    }
  }
}
