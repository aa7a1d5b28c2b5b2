/**
 * `Microsoft.Devices/IotHubs`: the process's hubs as ARM resources. The control plane owns their
 * settings (identity, routing, storage, file upload, cloud-to-device); hubs created by PUT are
 * started through the HubHost and started again at every start of the process.
 */
import type { Logger } from 'pino';
import type { HubHost } from '../../hosting/types.js';
import type { Tenancy, Principals } from '../../identity/types.js';
import type { RunningHub } from '../../main.js';
import type { ControlResourceStore, ResourceRecord } from '../../store/control.js';
import { ArmError, armErrors } from '../errors.js';
import type { HubIdentitySettings } from '../ports.js';
import { nameAvailability, type ArmResource, type ResourceTypeProvider } from '../provider.js';
import { resourceId, type ResourceId } from '../resourceIds.js';
import { defaultSettings, parseSettings, SKUS, type HubSettings } from './settings.js';
import { HubError } from '../../core/errors.js';
import { ConsumerGroups } from '../../hub/eventhub/consumerGroups.js';
import { HubCertificates, type CertificateDescription } from '../../hub/certificates/certificates.js';
import type { FileUploadSettings } from '../../hub/files/settings.js';
import type { EndpointKind, EndpointSettings, RoutingSettings } from '../../hub/routing/types.js';
import { routingOperation } from './routing.js';
import { sbEndpoint } from '../../core/sbEndpoint.js';

export const IOT_HUBS_TYPE = 'Microsoft.Devices/IotHubs';
type HubRecordBody = HubSettings & { createdByControlPlane?: boolean; hostName: string };

export class IotHubs implements ResourceTypeProvider {
  readonly namespace = 'Microsoft.Devices';
  readonly type = 'IotHubs';
  readonly apiVersions = ['2023-06-30', '2022-04-30-preview', '2021-07-02', '2021-03-31'];

  constructor(
    private readonly deps: {
      store: ControlResourceStore;
      tenancy: Tenancy;
      hubs: HubHost;
      hubIdentities: HubIdentitySettings;
      principals: Principals;
      hubDomain: string;
      logger: Logger;
    },
  ) {}

  /** Records for the configured hubs (in the default group), and hubs created by PUT started again. */
  async sync(): Promise<void> {
    const { store, tenancy, hubs } = this.deps;
    for (const hub of hubs.list()) {
      if (this.recordByName(hub.config.hubName)) continue;
      const now = new Date().toISOString();
      const seeded = defaultSettings(hub.config.eventLog.partitions);
      // The config file may seed a configured hub's file-upload settings at its first start; from
      // then on the resource is their one writer.
      Object.assign(seeded.properties, hub.fileUploadSettings.current());
      const body: HubRecordBody = { ...seeded, hostName: hub.config.hostName };
      store.resources.put({
        id: resourceId(tenancy.subscriptionId, tenancy.defaultResourceGroup, this.namespace, this.type, hub.config.hubName),
        type: IOT_HUBS_TYPE,
        resourceGroup: tenancy.defaultResourceGroup,
        name: hub.config.hubName,
        location: tenancy.location,
        tags: {},
        body,
        etag: etag(1),
        createdAt: now,
        updatedAt: now,
      });
    }
    for (const record of store.resources.list({ type: IOT_HUBS_TYPE })) {
      const body = record.body as HubRecordBody;
      if (body.createdByControlPlane && !hubs.get(record.name)) {
        await hubs.create({ hubName: record.name, hostName: body.hostName });
        await applySettings(hubs.get(record.name), body, this.deps.logger);
      } else if (!body.createdByControlPlane && !hubs.get(record.name)) {
        // A hub removed from the configuration file: its resource goes too (its identity with it).
        await this.deps.hubIdentities.setHubIdentity(record.id, { system: false, userAssigned: [] });
        store.resources.delete(record.id);
      } else {
        await applySettings(hubs.get(record.name), body, this.deps.logger);
      }
    }
  }

  /** The ARM id of the hub named `hubName` (what RBAC scopes and hub identities are keyed by). */
  resourceIdOf(hubName: string): string | undefined {
    return this.recordByName(hubName)?.id;
  }

  private recordByName(name: string): ResourceRecord | undefined {
    return this.deps.store.resources.list({ type: IOT_HUBS_TYPE }).find((r) => r.name.toLowerCase() === name.toLowerCase());
  }

  private record(id: ResourceId): ResourceRecord | undefined {
    const r = this.recordByName(id.name);
    return r && r.resourceGroup.toLowerCase() === id.resourceGroup.toLowerCase() && id.children.length === 0 ? r : undefined;
  }

  private hub(record: ResourceRecord): RunningHub {
    const hub = this.deps.hubs.get(record.name);
    if (!hub) throw new ArmError(500, 'InternalServerError', `The hub '${record.name}' is not running.`);
    return hub;
  }

  async toArm(record: ResourceRecord): Promise<ArmResource> {
    const body = record.body as HubRecordBody;
    const identities = await this.deps.hubIdentities.get(record.id);
    const identity: Record<string, unknown> = { type: body.identity.type };
    if (identities.systemAssigned) {
      identity.principalId = identities.systemAssigned.principalId;
      identity.tenantId = identities.systemAssigned.tenantId;
    }
    if (body.identity.userAssignedIdentities.length) {
      identity.userAssignedIdentities = Object.fromEntries(
        body.identity.userAssignedIdentities.map((id) => {
          const p = [...identities.userAssigned.entries()].find(([k]) => k.toLowerCase() === id.toLowerCase())?.[1];
          return [id, { clientId: p?.clientId, principalId: p?.principalId }];
        }),
      );
    }
    const partitions = body.properties.eventHubEndpoints.events.partitionCount;
    return {
      id: record.id,
      name: record.name,
      type: IOT_HUBS_TYPE,
      location: record.location,
      tags: record.tags,
      etag: record.etag,
      sku: { name: body.sku.name, tier: SKUS[body.sku.name], capacity: body.sku.capacity },
      identity,
      properties: {
        provisioningState: 'Succeeded',
        state: 'Active',
        hostName: body.hostName,
        locations: [{ location: record.location, role: 'primary' }],
        ...body.properties,
        eventHubEndpoints: {
          events: {
            ...body.properties.eventHubEndpoints.events,
            partitionIds: Array.from({ length: partitions }, (_, i) => String(i)),
            path: record.name,
            // A hub listening elsewhere than 5671 says where, as its connection strings do.
            endpoint: sbEndpoint(body.hostName, this.deps.hubs.get(record.name)?.ports.amqp),
          },
        },
        features: 'None',
        enableDataResidency: false,
        disableLocalAuth: false,
      },
      systemData: { createdAt: record.createdAt, lastModifiedAt: record.updatedAt },
    };
  }

  async get(id: ResourceId) {
    const r = this.record(id);
    return r ? this.toArm(r) : undefined;
  }

  async list(filter: { resourceGroup?: string }) {
    return Promise.all(this.deps.store.resources.list({ type: IOT_HUBS_TYPE, ...filter }).map((r) => this.toArm(r)));
  }

  async put(id: ResourceId, body: Record<string, unknown>, context: { ifMatch?: string }) {
    const { store, tenancy, hubs, hubIdentities, principals } = this.deps;
    checkHubName(id.name);
    const existing = this.recordByName(id.name);
    if (existing && existing.resourceGroup.toLowerCase() !== id.resourceGroup.toLowerCase()) {
      throw armErrors.conflict('IotHubNameNotAvailable', `The IoT hub name '${id.name}' is already taken (by a hub in resource group '${existing.resourceGroup}').`);
    }
    if (context.ifMatch && context.ifMatch !== '*' && context.ifMatch !== existing?.etag) {
      throw new ArmError(412, 'PreconditionFailed', `The etag '${context.ifMatch}' does not match the hub's current etag.`);
    }
    const running = existing ? this.hub(existing) : undefined;
    const partitionCount = running?.config.eventLog.partitions ?? hubs.list()[0]!.config.eventLog.partitions;
    const policies = running ? (await running.store.policies.list()).map((p) => ({ keyName: p.keyName, rights: p.rights.join(', ') })) : undefined;
    const settings = parseSettings(body, { partitionCount, ...(policies ? { policies } : {}) });
    const location = typeof body.location === 'string' && body.location ? body.location : undefined;
    if (!location) throw armErrors.invalidContent("The 'location' of the hub is required.");
    const tags = parseTags(body.tags);
    // Every attached user-assigned identity must exist (ARM's error, and nothing changes).
    for (const uai of settings.identity.userAssignedIdentities) {
      if (!(await principals.byResourceId(uai)) || !store.resources.get(uai)) {
        throw armErrors.badRequest(
          'FailedIdentityOperation',
          `Identity operation for resource '${id.name}' failed: the user-assigned identity '${uai}' was not found.`,
        );
      }
    }
    const now = new Date().toISOString();
    const hostName = existing ? (existing.body as HubRecordBody).hostName : `${id.name.toLowerCase()}.${this.deps.hubDomain}`;
    const fullId = existing?.id ?? resourceId(tenancy.subscriptionId, id.resourceGroup, this.namespace, this.type, id.name);
    if (!existing) {
      // Durable first (so that a crash mid-way re-creates it at the next start), then started.
      const record: ResourceRecord = { id: fullId, type: IOT_HUBS_TYPE, resourceGroup: groupName(store, id.resourceGroup), name: id.name, location, tags, body: { ...settings, hostName, createdByControlPlane: true }, etag: etag(1), createdAt: now, updatedAt: now };
      store.resources.put(record);
      try {
        await hubs.create({ hubName: id.name, hostName });
      } catch (e) {
        store.resources.delete(fullId);
        throw new ArmError(500, 'InternalServerError', `The hub could not be started: ${(e as Error).message}`);
      }
    }
    await hubIdentities.setHubIdentity(fullId, { system: settings.identity.type.includes('SystemAssigned'), userAssigned: settings.identity.userAssignedIdentities });
    const previous = existing ?? store.resources.get(fullId)!;
    const record: ResourceRecord = {
      ...previous,
      location: existing ? existing.location : location,
      tags,
      body: { ...settings, hostName, ...((previous.body as HubRecordBody).createdByControlPlane ? { createdByControlPlane: true } : {}) },
      etag: existing ? nextEtag(existing.etag) : previous.etag,
      updatedAt: now,
    };
    store.resources.put(record);
    await applySettings(this.deps.hubs.get(record.name), record.body as HubRecordBody, this.deps.logger);
    return { resource: await this.toArm(record), created: !existing };
  }

  /** IoT Hub's PATCH updates tags only. */
  async patch(id: ResourceId, body: Record<string, unknown>) {
    const record = this.record(id);
    if (!record) throw armErrors.resourceNotFound(IOT_HUBS_TYPE, id.name, id.resourceGroup);
    for (const k of Object.keys(body)) if (k !== 'tags') throw armErrors.invalidContent(`An IoT hub's PATCH updates 'tags' only (not '${k}'); use PUT for the rest.`);
    const updated = { ...record, tags: parseTags(body.tags), etag: nextEtag(record.etag), updatedAt: new Date().toISOString() };
    this.deps.store.resources.put(updated);
    return this.toArm(updated);
  }

  async delete(id: ResourceId) {
    const record = this.record(id);
    if (!record) return false;
    if (!(record.body as HubRecordBody).createdByControlPlane) {
      throw armErrors.badRequest('CannotDeleteConfiguredHub', `The hub '${record.name}' comes from Fleethub's configuration file; remove it there.`);
    }
    await this.deps.hubIdentities.setHubIdentity(record.id, { system: false, userAssigned: [] });
    this.deps.store.resources.delete(record.id);
    await this.deps.hubs.remove(record.name);
    return true;
  }

  /** Child resources (consumer groups, certificates) and actions (listkeys) of a hub. */
  async child(method: string, id: ResourceId, body: unknown, context: { ifMatch?: string } = {}) {
    const parent = this.record({ ...id, children: [] });
    if (!parent) throw armErrors.resourceNotFound(IOT_HUBS_TYPE, id.name, id.resourceGroup);
    const hub = this.hub(parent);
    const c = id.children;
    const [first, second, third] = c.map((x) => x.toLowerCase());
    return asArmError(async () => {
      if (method === 'POST' && first === 'listkeys' && c.length === 1) {
        const policies = await hub.store.policies.list();
        return { status: 200, body: { value: policies.map((p) => ({ keyName: p.keyName, primaryKey: p.primaryKey, secondaryKey: p.secondaryKey, rights: p.rights.join(', ') })) } };
      }
      if (method === 'POST' && first === 'iothubkeys' && c.length === 3 && third === 'listkeys') {
        const p = await hub.store.policies.get(c[1]!);
        if (!p) throw armErrors.notFound(`The shared access policy '${c[1]}' does not exist.`);
        return { status: 200, body: { keyName: p.keyName, primaryKey: p.primaryKey, secondaryKey: p.secondaryKey, rights: p.rights.join(', ') } };
      }
      // eventHubEndpoints/events/ConsumerGroups[/{name}]
      if (first === 'eventhubendpoints' && c[2]?.toLowerCase() === 'consumergroups' && (c.length === 3 || c.length === 4)) {
        if (second !== 'events') throw armErrors.notFound(`The event hub endpoint '${c[1]}' does not exist (the built-in one is 'events').`);
        const groups = new ConsumerGroups(hub.config.consumerGroups, hub.store.consumerGroups);
        const cgId = (name: string) => `${parent.id}/eventHubEndpoints/events/ConsumerGroups/${name}`;
        const toArm = (name: string) => ({ id: cgId(name), name, type: 'Microsoft.Devices/IotHubs/EventHubEndpoints/ConsumerGroups', etag: null, properties: { name } });
        if (c.length === 3) {
          if (method !== 'GET') return undefined;
          return { status: 200, body: { value: (await groups.list()).map(toArm) } };
        }
        const name = c[3]!;
        if (method === 'GET') {
          const found = await groups.find(name);
          if (!found) throw armErrors.notFound(`The consumer group '${name}' does not exist.`);
          return { status: 200, body: toArm(found) };
        }
        if (method === 'PUT') {
          const props = (body as { properties?: { name?: unknown } } | undefined)?.properties;
          if (props?.name !== undefined && props.name !== name) throw armErrors.invalidContent(`'properties.name' (${String(props.name)}) must be the consumer group's name in the path (${name}).`);
          const existing = await groups.find(name);
          return { status: 200, body: toArm(existing ?? (await groups.add(name))) };
        }
        if (method === 'DELETE') {
          if (!(await groups.find(name))) return { status: 204 };
          await groups.delete(name);
          return { status: 200 };
        }
        return undefined;
      }
      // certificates[/{name}[/generateVerificationCode|/verify]]
      if (first === 'certificates' && c.length >= 1 && c.length <= 3) {
        const certificates = new HubCertificates(hub.store.caCertificates);
        const toArm = (d: CertificateDescription) => ({ id: `${parent.id}/certificates/${d.name}`, name: d.name, type: 'Microsoft.Devices/IotHubs/Certificates', etag: d.etag, properties: d.properties });
        const pem = (b: unknown) => ((b as { properties?: { certificate?: unknown }; certificate?: unknown } | undefined)?.properties?.certificate ?? (b as { certificate?: unknown } | undefined)?.certificate);
        if (c.length === 1) return method === 'GET' ? { status: 200, body: { value: (await certificates.list()).map(toArm) } } : undefined;
        const name = c[1]!;
        if (c.length === 2) {
          if (method === 'GET') return { status: 200, body: toArm(await certificates.get(name)) };
          if (method === 'PUT') {
            const isVerified = (body as { properties?: { isVerified?: unknown } } | undefined)?.properties?.isVerified;
            if (isVerified === true) throw armErrors.notSupported('properties.isVerified', true);
            const existed = (await certificates.list()).some((x) => x.name.toLowerCase() === name.toLowerCase());
            return { status: existed ? 200 : 201, body: toArm(await certificates.put(name, pem(body), context.ifMatch)) };
          }
          if (method === 'DELETE') {
            await certificates.delete(name, context.ifMatch);
            return { status: 200 };
          }
          return undefined;
        }
        if (method === 'POST' && second !== undefined && c[2]!.toLowerCase() === 'generateverificationcode') return { status: 200, body: toArm(await certificates.generateVerificationCode(name, context.ifMatch)) };
        if (method === 'POST' && c[2]!.toLowerCase() === 'verify') return { status: 200, body: toArm(await certificates.verify(name, pem(body), context.ifMatch)) };
        return undefined;
      }
      return routingOperation(method, c, hub, parent.body as HubRecordBody, body);
    });
  }

  /**
   * `POST providers/Microsoft.Devices/checkNameAvailability` (`{"name"}`): IoT hub names are unique
   * (host names), so a name any group's hub has is `AlreadyExists`; one IoT Hub would refuse, `Invalid`.
   * azure-cli asks it before `az iot hub show|update --resource-group`.
   */
  async providerAction(action: string, body: Record<string, unknown>) {
    if (action !== 'checknameavailability') return undefined;
    return nameAvailability(body, 'IoT hub', {
      invalid: hubNameProblem,
      taken: (name) => this.recordByName(name) !== undefined,
      takenMessage: (name) => `IotHub name '${name}' is not available`,
    });
  }

  /** The hub resource ids that have `uaiId` attached. */
  hubsUsingIdentity(uaiId: string): string[] {
    return this.deps.store.resources
      .list({ type: IOT_HUBS_TYPE })
      .filter((r) => (r.body as HubRecordBody).identity.userAssignedIdentities.some((x) => x.toLowerCase() === uaiId.toLowerCase()))
      .map((r) => r.id);
  }
}

/** Why `name` is not a valid IoT hub name; undefined when it is. */
function hubNameProblem(name: string): string | undefined {
  return /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{1,48}[a-zA-Z0-9])$/.test(name)
    ? undefined
    : `'${name}' is not a valid IoT hub name: 3-50 letters, digits and hyphens, starting and ending with a letter or digit.`;
}

function checkHubName(name: string): void {
  const problem = hubNameProblem(name);
  if (problem) throw armErrors.badRequest('InvalidIotHubName', problem);
}

export function parseTags(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw armErrors.invalidContent("'tags' must be an object of strings.");
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw armErrors.invalidContent(`The tag '${k}' must be a string.`);
  return v as Record<string, string>;
}

/** The group's name as stored (ids keep the spelling of the group). */
export function groupName(store: ControlResourceStore, name: string): string {
  return store.groups.get(name)?.name ?? name;
}

/** IoT Hub's etags: base64 of an 8-byte version. */
export function etag(version: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(version));
  return b.toString('base64');
}
export function nextEtag(current: string): string {
  const b = Buffer.from(current, 'base64');
  return etag(b.length === 8 ? Number(b.readBigUInt64BE()) + 1 : 1);
}

/** The hub's own errors (consumer groups, certificates) as ARM errors with the same status and code. */
async function asArmError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof HubError) throw new ArmError(e.status, e.code === 'ArgumentInvalid' ? 'InvalidRequestContent' : e.code, e.message);
    throw e;
  }
}

/** Hands a hub the settings its resource holds that it acts on (file upload, cloud-to-device, routing). */
async function applySettings(hub: RunningHub | undefined, body: HubRecordBody, logger: Logger): Promise<void> {
  if (!hub) return;
  const { storageEndpoints, enableFileUploadNotifications, messagingEndpoints, cloudToDevice } = body.properties;
  hub.cloudToDeviceSettings.set(cloudToDevice);
  hub.fileUploadSettings.set({
    storageEndpoints: { $default: storageEndpoints.$default! } as FileUploadSettings['storageEndpoints'],
    enableFileUploadNotifications,
    messagingEndpoints,
  });
  // Routing acts on what was stored: a failure is logged (and shows in endpoint health), the PUT stands.
  await hub.routing.apply(routingSettings(body.properties.routing)).catch((e) => logger.error({ err: e, hub: hub.config.hubName }, 'applying routing settings failed'));
}

/** The hub resource's `properties.routing` in routing's words (cosmosDBSqlContainers endpoints are not routed to). */
function routingSettings(r: HubSettings['properties']['routing']): RoutingSettings {
  const list = (kind: EndpointKind) => ((r.endpoints[kind] ?? []) as unknown as EndpointSettings[]).map((e) => ({ ...e, kind }));
  return {
    endpoints: { eventHubs: list('eventHubs'), serviceBusQueues: list('serviceBusQueues'), serviceBusTopics: list('serviceBusTopics'), storageContainers: list('storageContainers') },
    routes: r.routes.map((x) => ({ ...x, condition: x.condition ?? 'true' })),
    fallbackRoute: r.fallbackRoute,
    enrichments: r.enrichments,
  };
}
