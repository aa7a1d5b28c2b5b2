/**
 * `Microsoft.EventHub/namespaces` with `eventhubs`, `eventhubs/consumergroups` and
 * `authorizationRules` (namespace and event hub level, `listKeys`, `regenerateKeys`). The control
 * plane is their writer: the namespace's ARM record (group, location, tags, sku) is here, its
 * entities are the Event Hubs namespace service's (served at once on the AMQP listeners). The
 * configuration file only seeds a namespace that has no record yet (its first start).
 */
import type { Tenancy } from '../../identity/types.js';
import type { EventHubsNamespaces } from '../../namespaces/eventHubs/namespaces.js';
import type { EventHubDescription } from '../../namespaces/eventHubs/types.js';
import type { ControlResourceStore, ResourceRecord } from '../../store/control.js';
import { ArmError, armErrors } from '../errors.js';
import { groupName } from '../iotHubs/iotHubs.js';
import type { ArmResource, ResourceTypeProvider } from '../provider.js';
import { resourceId, type ResourceId } from '../resourceIds.js';
import { authorizationRules } from './authorizationRules.js';
import {
  EVENTHUB_NAMESPACES_TYPE,
  SERVICEBUS_NAMESPACES_TYPE,
  asArm,
  bodyProperties,
  childNotFound,
  isObj,
  lower,
  NamespaceRecords,
  optionalInt,
  optionalString,
  parentNotFound,
  serviceBusEndpoint,
  type NamespaceEndpoints,
  type NamespaceRecordBody,
  type Obj,
} from './common.js';

const T = {
  namespace: 'Microsoft.EventHub/Namespaces',
  eventHub: 'Microsoft.EventHub/Namespaces/EventHubs',
  consumerGroup: 'Microsoft.EventHub/Namespaces/EventHubs/ConsumerGroups',
  namespaceRule: 'Microsoft.EventHub/Namespaces/AuthorizationRules',
  eventHubRule: 'Microsoft.EventHub/Namespaces/EventHubs/AuthorizationRules',
};

export class EventHubsNamespaceResources implements ResourceTypeProvider {
  readonly namespace = 'Microsoft.EventHub';
  readonly type = 'namespaces';
  readonly apiVersions = ['2026-01-01', '2025-05-01-preview', '2024-05-01-preview', '2024-01-01', '2022-10-01-preview', '2022-01-01-preview', '2021-11-01', '2021-06-01-preview', '2017-04-01'];
  private readonly records: NamespaceRecords;

  constructor(
    private readonly deps: {
      store: ControlResourceStore;
      tenancy: Tenancy;
      /** The namespace service (on the primary hub); undefined before it runs. */
      service: () => EventHubsNamespaces | undefined;
      endpoints: NamespaceEndpoints;
      /** The namespace names of the configuration file (`eventHubsNamespaces`). */
      configured: () => string[];
    },
  ) {
    this.records = new NamespaceRecords(deps.store, EVENTHUB_NAMESPACES_TYPE, SERVICEBUS_NAMESPACES_TYPE);
  }

  /** Whether the configuration may seed `name`: only before the control plane has a record of it. */
  shouldSeed(name: string): boolean {
    return !this.records.byName(name);
  }

  /** The ARM id of the namespace `name` (what role assignments are scoped to), or undefined. */
  resourceIdOf(name: string): string | undefined {
    return this.records.byName(name)?.id;
  }

  /** Records for namespaces that have none (seeded by the configuration: the default group); namespaces for records that lost theirs. */
  sync(): void {
    const service = this.deps.service();
    if (!service) return;
    const { tenancy } = this.deps;
    const configured = new Set(this.deps.configured().map(lower));
    for (const ns of service.listNamespaces()) {
      if (this.records.byName(ns.name)) continue;
      const body: NamespaceRecordBody = { sku: { name: 'Standard', tier: 'Standard', capacity: 1 }, ...(configured.has(lower(ns.name)) ? { seeded: true } : {}) };
      this.records.put({
        id: resourceId(tenancy.subscriptionId, tenancy.defaultResourceGroup, this.namespace, this.type, ns.name),
        type: EVENTHUB_NAMESPACES_TYPE,
        resourceGroup: tenancy.defaultResourceGroup,
        name: ns.name,
        location: tenancy.location,
        tags: {},
        body,
        etag: this.records.nextEtag(undefined),
        createdAt: ns.createdAt,
        updatedAt: ns.createdAt,
      });
    }
    // A record written just before a crash, whose namespace was not yet created.
    for (const r of this.records.list({})) if (!service.getNamespace(r.name)) service.createNamespace(r.name);
  }

  private service(): EventHubsNamespaces {
    const s = this.deps.service();
    if (!s) throw new ArmError(500, 'InternalServerError', 'The Event Hubs namespaces are not running.');
    return s;
  }

  private toArm(r: ResourceRecord): ArmResource {
    const body = r.body as NamespaceRecordBody;
    const ns = this.deps.service()?.getNamespace(r.name);
    return {
      id: r.id,
      name: r.name,
      type: T.namespace,
      location: r.location,
      tags: r.tags,
      sku: { name: body.sku.name, tier: body.sku.tier, capacity: body.sku.capacity ?? 1 },
      properties: {
        provisioningState: 'Succeeded',
        status: 'Active',
        createdAt: ns?.createdAt ?? r.createdAt,
        updatedAt: r.updatedAt,
        serviceBusEndpoint: serviceBusEndpoint(r.name, this.deps.endpoints),
        metricId: `${this.deps.tenancy.subscriptionId}:${r.name.toLowerCase()}`,
        isAutoInflateEnabled: false,
        maximumThroughputUnits: 0,
        kafkaEnabled: false,
        zoneRedundant: false,
        disableLocalAuth: false,
        minimumTlsVersion: '1.2',
        publicNetworkAccess: 'Enabled',
      },
      systemData: { createdAt: r.createdAt, lastModifiedAt: r.updatedAt },
    };
  }

  /** The namespace's own rules (RootManageSharedAccessKey, …), for templates' `listKeys()`. */
  keyedChildren(id: string): string[] {
    const r = this.deps.store.resources.get(id);
    const service = this.deps.service();
    if (!r || !service?.getNamespace(r.name)) return [];
    return service.listAuthorizationRules(r.name).map((rule) => `${r.id}/authorizationRules/${rule.name}`);
  }

  async get(id: ResourceId) {
    const r = id.children.length ? undefined : this.records.of(id);
    return r ? this.toArm(r) : undefined;
  }

  async list(filter: { resourceGroup?: string }) {
    return this.records.list(filter).map((r) => this.toArm(r));
  }

  async put(id: ResourceId, body: Record<string, unknown>) {
    this.records.checkNewName(id);
    const existing = this.records.of(id);
    const parsed = this.records.parse(body, existing);
    if (!parsed.location) throw armErrors.invalidContent("The 'location' of the namespace is required.");
    const service = this.service();
    const now = new Date().toISOString();
    const group = groupName(this.deps.store, id.resourceGroup);
    const record: ResourceRecord = existing
      ? { ...existing, tags: parsed.tags, body: { ...(existing.body as NamespaceRecordBody), sku: parsed.sku }, etag: this.records.nextEtag(existing.etag), updatedAt: now }
      : { id: resourceId(this.deps.tenancy.subscriptionId, group, this.namespace, this.type, id.name), type: EVENTHUB_NAMESPACES_TYPE, resourceGroup: group, name: id.name, location: parsed.location, tags: parsed.tags, body: { sku: parsed.sku }, etag: this.records.nextEtag(undefined), createdAt: now, updatedAt: now };
    // The record first: a crash before the namespace exists is mended by the next start's sync.
    this.records.put(record);
    if (!existing) {
      try {
        await asArm(() => service.createNamespace(record.name));
      } catch (e) {
        this.records.delete(record.id);
        throw e;
      }
    }
    return { resource: this.toArm(record), created: !existing };
  }

  /** Tags and sku. */
  async patch(id: ResourceId, body: Record<string, unknown>) {
    const existing = this.records.of(id);
    if (!existing) throw armErrors.resourceNotFound(EVENTHUB_NAMESPACES_TYPE, id.name, id.resourceGroup);
    const parsed = this.records.parse(body, existing);
    const record = { ...existing, tags: parsed.tags, body: { ...(existing.body as NamespaceRecordBody), sku: parsed.sku }, etag: this.records.nextEtag(existing.etag), updatedAt: new Date().toISOString() };
    this.records.put(record);
    return this.toArm(record);
  }

  /** Removes the namespace, its event hubs and their events. */
  async delete(id: ResourceId) {
    const existing = this.records.of(id);
    if (!existing) return false;
    if (this.deps.configured().some((n) => lower(n) === lower(existing.name))) {
      throw armErrors.badRequest('CannotDeleteConfiguredNamespace', `The namespace '${existing.name}' comes from Fleethub's configuration file (eventHubsNamespaces); remove it there first.`);
    }
    const service = this.service();
    if (service.getNamespace(existing.name)) await service.deleteNamespace(existing.name);
    this.records.delete(existing.id);
    return true;
  }

  async child(method: string, id: ResourceId, body: unknown) {
    const parent = this.records.of({ ...id, children: [] });
    if (!parent) throw parentNotFound(EVENTHUB_NAMESPACES_TYPE, id.name);
    const service = this.service();
    const ns = parent.name;
    const c = id.children;
    const kind = lower(c[0]);
    const endpoints = this.deps.endpoints;
    return asArm(async () => {
      if (kind === 'authorizationrules') {
        return authorizationRules(
          {
            id: parent.id,
            type: T.namespaceRule,
            namespace: ns,
            list: () => service.listAuthorizationRules(ns),
            put: (name, rights) => service.putAuthorizationRule(ns, undefined, name, rights),
            delete: (name) => service.deleteAuthorizationRule(ns, undefined, name),
            regenerate: (name, which) => service.regenerateKey(ns, undefined, name, which),
          },
          endpoints,
          method,
          c.slice(1),
          body,
        );
      }
      if (kind !== 'eventhubs') return undefined;
      const hubId = (name: string) => `${parent.id}/eventhubs/${name}`;
      const hubToArm = (h: EventHubDescription) => ({
        id: hubId(h.name),
        name: h.name,
        type: T.eventHub,
        location: parent.location,
        properties: {
          partitionIds: h.properties.partitionIds,
          createdAt: h.properties.createdAt,
          updatedAt: h.properties.updatedAt,
          messageRetentionInDays: h.properties.messageRetentionInDays,
          partitionCount: h.properties.partitionCount,
          status: h.properties.status,
          retentionDescription: { cleanupPolicy: 'Delete', retentionTimeInHours: h.properties.messageRetentionInDays * 24 },
        },
      });
      if (c.length === 1) return method === 'GET' ? { status: 200, body: { value: service.listEventHubs(ns).map(hubToArm) } } : undefined;
      const hubName = c[1]!;
      if (c.length === 2) {
        if (method === 'GET') {
          const h = service.getEventHub(ns, hubName);
          if (!h) throw childNotFound(T.eventHub, `${ns}/${hubName}`, parent.resourceGroup);
          return { status: 200, body: hubToArm(h) };
        }
        if (method === 'PUT') return { status: 200, body: hubToArm(await service.putEventHub(ns, hubName, eventHubProperties(bodyProperties(body)))) };
        if (method === 'DELETE') {
          if (!service.getEventHub(ns, hubName)) return { status: 204 };
          await service.deleteEventHub(ns, hubName);
          return { status: 200 };
        }
        return undefined;
      }
      const hub = service.getEventHub(ns, hubName);
      if (!hub) throw parentNotFound(T.eventHub, hubName);
      const sub = lower(c[2]);
      if (sub === 'authorizationrules') {
        return authorizationRules(
          {
            id: hubId(hub.name),
            type: T.eventHubRule,
            namespace: ns,
            entityPath: hub.name,
            list: () => service.listAuthorizationRules(ns, hub.name),
            put: (name, rights) => service.putAuthorizationRule(ns, hub.name, name, rights),
            delete: (name) => service.deleteAuthorizationRule(ns, hub.name, name),
            regenerate: (name, which) => service.regenerateKey(ns, hub.name, name, which),
          },
          endpoints,
          method,
          c.slice(3),
          body,
        );
      }
      if (sub !== 'consumergroups' || c.length > 4) return undefined;
      const groupToArm = (g: { name: string; properties: { userMetadata?: string; createdAt: string; updatedAt: string } }) => ({
        id: `${hubId(hub.name)}/consumergroups/${g.name}`,
        name: g.name,
        type: T.consumerGroup,
        location: parent.location,
        properties: { createdAt: g.properties.createdAt, updatedAt: g.properties.updatedAt, ...(g.properties.userMetadata !== undefined ? { userMetadata: g.properties.userMetadata } : {}) },
      });
      const groups = () => service.listConsumerGroups(ns, hub.name);
      if (c.length === 3) return method === 'GET' ? { status: 200, body: { value: groups().map(groupToArm) } } : undefined;
      const name = c[3]!;
      const find = () => groups().find((g) => lower(g.name) === lower(name));
      if (method === 'GET') {
        const g = find();
        if (!g) throw childNotFound(T.consumerGroup, `${ns}/${hub.name}/${name}`, parent.resourceGroup);
        return { status: 200, body: groupToArm(g) };
      }
      if (method === 'PUT') return { status: 200, body: groupToArm(service.putConsumerGroup(ns, hub.name, name, optionalString(bodyProperties(body), 'userMetadata'))) };
      if (method === 'DELETE') {
        if (!find()) return { status: 204 };
        service.deleteConsumerGroup(ns, hub.name, name);
        return { status: 200 };
      }
      return undefined;
    });
  }
}

/** An event hub's PUT properties: partitionCount, and retention in days or (2024-01-01) in hours. */
function eventHubProperties(p: Obj): { partitionCount?: number; messageRetentionInDays?: number } {
  const partitionCount = optionalInt(p, 'partitionCount');
  let days = optionalInt(p, 'messageRetentionInDays');
  const rd = p.retentionDescription;
  if (rd !== undefined && rd !== null) {
    if (!isObj(rd)) throw armErrors.invalidContent("'properties.retentionDescription' must be an object.");
    if (rd.cleanupPolicy !== undefined && rd.cleanupPolicy !== null && lower(String(rd.cleanupPolicy)) !== 'delete') throw armErrors.notSupported('properties.retentionDescription.cleanupPolicy', rd.cleanupPolicy);
    const hours = rd.retentionTimeInHours;
    if (hours !== undefined && hours !== null) {
      if (typeof hours !== 'number' || !Number.isInteger(hours) || hours < 1) throw armErrors.invalidContent("'properties.retentionDescription.retentionTimeInHours' must be a positive integer.");
      if (hours % 24 !== 0) throw armErrors.notSupported('properties.retentionDescription.retentionTimeInHours', hours);
      if (days !== undefined && days * 24 !== hours) throw armErrors.invalidContent("'messageRetentionInDays' and 'retentionDescription.retentionTimeInHours' disagree.");
      days = hours / 24;
    }
  }
  if (isObj(p.captureDescription) && p.captureDescription.enabled === true) throw armErrors.notSupported('properties.captureDescription.enabled', true);
  if (p.status !== undefined && p.status !== null && p.status !== 'Active') throw armErrors.notSupported('properties.status', p.status);
  return { ...(partitionCount !== undefined ? { partitionCount } : {}), ...(days !== undefined ? { messageRetentionInDays: days } : {}) };
}
