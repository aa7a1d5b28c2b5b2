/**
 * `Microsoft.ServiceBus/namespaces` with `queues`, `topics`, `topics/subscriptions`,
 * `topics/subscriptions/rules` and `authorizationRules` (namespace, queue and topic level,
 * `listKeys`, `regenerateKeys`). As for Event Hubs: the record (group, location, tags, sku) is the
 * control plane's, the entities the Service Bus namespace service's; the configuration only seeds.
 */
import type { Tenancy } from '../../identity/types.js';
import type { ServiceBusNamespaces } from '../../namespaces/serviceBus/namespaces.js';
import type { CorrelationFilter, QueueDescription, RuleDescription, RuleProperties, SubscriptionDescription, TopicDescription } from '../../namespaces/serviceBus/types.js';
import type { ControlResourceStore, ResourceRecord } from '../../store/control.js';
import { ArmError, armErrors } from '../errors.js';
import { groupName } from '../iotHubs/iotHubs.js';
import type { ArmResource, ResourceTypeProvider } from '../provider.js';
import { resourceId, type ResourceId } from '../resourceIds.js';
import { authorizationRules, type RuleOwner } from './authorizationRules.js';
import {
  EVENTHUB_NAMESPACES_TYPE,
  SERVICEBUS_NAMESPACES_TYPE,
  asArm,
  bodyProperties,
  childNotFound,
  isObj,
  lower,
  NamespaceRecords,
  optionalBool,
  optionalInt,
  optionalString,
  parentNotFound,
  refuseTrue,
  serviceBusEndpoint,
  type NamespaceEndpoints,
  type NamespaceRecordBody,
  type Obj,
} from './common.js';

const T = {
  namespace: 'Microsoft.ServiceBus/Namespaces',
  queue: 'Microsoft.ServiceBus/Namespaces/Queues',
  topic: 'Microsoft.ServiceBus/Namespaces/Topics',
  subscription: 'Microsoft.ServiceBus/Namespaces/Topics/Subscriptions',
  rule: 'Microsoft.ServiceBus/Namespaces/Topics/Subscriptions/Rules',
  namespaceRule: 'Microsoft.ServiceBus/Namespaces/AuthorizationRules',
  queueRule: 'Microsoft.ServiceBus/Namespaces/Queues/AuthorizationRules',
  topicRule: 'Microsoft.ServiceBus/Namespaces/Topics/AuthorizationRules',
};

/** Features of entities Fleethub has not: refused when asked for. */
const UNSUPPORTED_FLAGS = ['requiresSession', 'requiresDuplicateDetection', 'enablePartitioning', 'enableExpress'];

export class ServiceBusNamespaceResources implements ResourceTypeProvider {
  readonly namespace = 'Microsoft.ServiceBus';
  readonly type = 'namespaces';
  readonly apiVersions = ['2024-01-01', '2022-10-01-preview', '2022-01-01-preview', '2021-11-01', '2021-06-01-preview', '2021-01-01-preview', '2017-04-01'];
  private readonly records: NamespaceRecords;

  constructor(
    private readonly deps: {
      store: ControlResourceStore;
      tenancy: Tenancy;
      service: () => ServiceBusNamespaces | undefined;
      endpoints: NamespaceEndpoints;
      /** The namespace names of the configuration file (`serviceBusNamespaces`). */
      configured: () => string[];
    },
  ) {
    this.records = new NamespaceRecords(deps.store, SERVICEBUS_NAMESPACES_TYPE, EVENTHUB_NAMESPACES_TYPE);
  }

  shouldSeed(name: string): boolean {
    return !this.records.byName(name);
  }

  resourceIdOf(name: string): string | undefined {
    return this.records.byName(name)?.id;
  }

  sync(): void {
    const service = this.deps.service();
    if (!service) return;
    const { tenancy } = this.deps;
    const configured = new Set(this.deps.configured().map(lower));
    for (const ns of service.listNamespaces()) {
      if (this.records.byName(ns.name)) continue;
      const body: NamespaceRecordBody = { sku: { name: 'Standard', tier: 'Standard' }, ...(configured.has(lower(ns.name)) ? { seeded: true } : {}) };
      this.records.put({
        id: resourceId(tenancy.subscriptionId, tenancy.defaultResourceGroup, this.namespace, this.type, ns.name),
        type: SERVICEBUS_NAMESPACES_TYPE,
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
    for (const r of this.records.list({})) if (!service.getNamespace(r.name)) service.createNamespace(r.name);
  }

  private service(): ServiceBusNamespaces {
    const s = this.deps.service();
    if (!s) throw new ArmError(500, 'InternalServerError', 'The Service Bus namespaces are not running.');
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
      sku: { name: body.sku.name, tier: body.sku.tier, ...(body.sku.capacity !== undefined ? { capacity: body.sku.capacity } : {}) },
      properties: {
        provisioningState: 'Succeeded',
        status: 'Active',
        createdAt: ns?.createdAt ?? r.createdAt,
        updatedAt: r.updatedAt,
        serviceBusEndpoint: serviceBusEndpoint(r.name, this.deps.endpoints),
        metricId: `${this.deps.tenancy.subscriptionId}:${r.name.toLowerCase()}`,
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
      : { id: resourceId(this.deps.tenancy.subscriptionId, group, this.namespace, this.type, id.name), type: SERVICEBUS_NAMESPACES_TYPE, resourceGroup: group, name: id.name, location: parsed.location, tags: parsed.tags, body: { sku: parsed.sku }, etag: this.records.nextEtag(undefined), createdAt: now, updatedAt: now };
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

  async patch(id: ResourceId, body: Record<string, unknown>) {
    const existing = this.records.of(id);
    if (!existing) throw armErrors.resourceNotFound(SERVICEBUS_NAMESPACES_TYPE, id.name, id.resourceGroup);
    const parsed = this.records.parse(body, existing);
    const record = { ...existing, tags: parsed.tags, body: { ...(existing.body as NamespaceRecordBody), sku: parsed.sku }, etag: this.records.nextEtag(existing.etag), updatedAt: new Date().toISOString() };
    this.records.put(record);
    return this.toArm(record);
  }

  /** Removes the namespace, its entities and their messages. */
  async delete(id: ResourceId) {
    const existing = this.records.of(id);
    if (!existing) return false;
    if (this.deps.configured().some((n) => lower(n) === lower(existing.name))) {
      throw armErrors.badRequest('CannotDeleteConfiguredNamespace', `The namespace '${existing.name}' comes from Fleethub's configuration file (serviceBusNamespaces); remove it there first.`);
    }
    const service = this.service();
    if (service.getNamespace(existing.name)) service.deleteNamespace(existing.name);
    this.records.delete(existing.id);
    return true;
  }

  async child(method: string, id: ResourceId, body: unknown) {
    const parent = this.records.of({ ...id, children: [] });
    if (!parent) throw parentNotFound(SERVICEBUS_NAMESPACES_TYPE, id.name);
    const service = this.service();
    const ns = parent.name;
    const c = id.children;
    const kind = lower(c[0]);
    const endpoints = this.deps.endpoints;
    const rules = (owner: Omit<RuleOwner, 'list' | 'put' | 'delete' | 'regenerate' | 'namespace'>, entity: string, rest: string[]) =>
      authorizationRules(
        {
          ...owner,
          namespace: ns,
          list: () => service.listAuthorizationRules(ns, entity),
          put: (name, rights) => service.putAuthorizationRule(ns, entity, name, rights),
          delete: (name) => service.deleteAuthorizationRule(ns, entity, name),
          regenerate: (name, which) => service.regenerateKey(ns, entity, name, which),
        },
        endpoints,
        method,
        rest,
        body,
      );
    const crud = <D>(o: {
      type: string;
      path: string;
      name: string;
      get: () => D | undefined;
      put: () => D;
      remove: () => void;
      toArm: (d: D) => unknown;
    }) => {
      if (method === 'GET') {
        const d = o.get();
        if (!d) throw childNotFound(o.type, o.path, parent.resourceGroup);
        return { status: 200, body: o.toArm(d) };
      }
      if (method === 'PUT') return { status: 200, body: o.toArm(o.put()) };
      if (method === 'DELETE') {
        if (!o.get()) return { status: 204 };
        o.remove();
        return { status: 200 };
      }
      return undefined;
    };
    return asArm(async () => {
      if (kind === 'authorizationrules') return rules({ id: parent.id, type: T.namespaceRule }, '', c.slice(1));
      if (kind === 'queues') {
        const queueToArm = (q: QueueDescription) => ({ id: `${parent.id}/queues/${q.name}`, name: q.name, type: T.queue, location: parent.location, properties: queueView(q) });
        if (c.length === 1) return method === 'GET' ? { status: 200, body: { value: service.listQueues(ns).map(queueToArm) } } : undefined;
        const name = c[1]!;
        if (c.length === 2) {
          return crud({ type: T.queue, path: `${ns}/${name}`, name, get: () => service.getQueue(ns, name), put: () => service.putQueue(ns, name, receiverProperties(bodyProperties(body), true)), remove: () => service.deleteQueue(ns, name), toArm: queueToArm });
        }
        const q = service.getQueue(ns, name);
        if (!q) throw parentNotFound(T.queue, name);
        if (lower(c[2]) === 'authorizationrules') return rules({ id: `${parent.id}/queues/${q.name}`, type: T.queueRule, entityPath: q.name }, q.name, c.slice(3));
        return undefined;
      }
      if (kind !== 'topics') return undefined;
      const topicId = (t: string) => `${parent.id}/topics/${t}`;
      const topicToArm = (t: TopicDescription) => ({
        id: topicId(t.name),
        name: t.name,
        type: T.topic,
        location: parent.location,
        properties: { ...t.properties, createdAt: t.createdAt, updatedAt: t.createdAt, subscriptionCount: service.listSubscriptions(ns, t.name).length, requiresDuplicateDetection: false, enablePartitioning: false, enableBatchedOperations: true, supportOrdering: true, enableExpress: false },
      });
      if (c.length === 1) return method === 'GET' ? { status: 200, body: { value: service.listTopics(ns).map(topicToArm) } } : undefined;
      const topicName = c[1]!;
      if (c.length === 2) {
        return crud({ type: T.topic, path: `${ns}/${topicName}`, name: topicName, get: () => service.getTopic(ns, topicName), put: () => service.putTopic(ns, topicName, topicProperties(bodyProperties(body))), remove: () => service.deleteTopic(ns, topicName), toArm: topicToArm });
      }
      const topic = service.getTopic(ns, topicName);
      if (!topic) throw parentNotFound(T.topic, topicName);
      const sub = lower(c[2]);
      if (sub === 'authorizationrules') return rules({ id: topicId(topic.name), type: T.topicRule, entityPath: topic.name }, topic.name, c.slice(3));
      if (sub !== 'subscriptions') return undefined;
      const subId = (s: string) => `${topicId(topic.name)}/subscriptions/${s}`;
      const subToArm = (s: SubscriptionDescription) => ({ id: subId(s.name), name: s.name, type: T.subscription, location: parent.location, properties: subscriptionView(s) });
      if (c.length === 3) return method === 'GET' ? { status: 200, body: { value: service.listSubscriptions(ns, topic.name).map(subToArm) } } : undefined;
      const subName = c[3]!;
      if (c.length === 4) {
        return crud({
          type: T.subscription,
          path: `${ns}/${topic.name}/${subName}`,
          name: subName,
          get: () => service.getSubscription(ns, topic.name, subName),
          put: () => service.putSubscription(ns, topic.name, subName, receiverProperties(bodyProperties(body), false)),
          remove: () => service.deleteSubscription(ns, topic.name, subName),
          toArm: subToArm,
        });
      }
      const subscription = service.getSubscription(ns, topic.name, subName);
      if (!subscription) throw parentNotFound(T.subscription, subName);
      if (lower(c[4]) !== 'rules' || c.length > 6) return undefined;
      const ruleToArm = (r: RuleDescription) => ({ id: `${subId(subscription.name)}/rules/${r.name}`, name: r.name, type: T.rule, location: parent.location, properties: ruleView(r.properties) });
      const list = () => service.listRules(ns, topic.name, subscription.name);
      if (c.length === 5) return method === 'GET' ? { status: 200, body: { value: list().map(ruleToArm) } } : undefined;
      const ruleName = c[5]!;
      return crud({
        type: T.rule,
        path: `${ns}/${topic.name}/${subscription.name}/${ruleName}`,
        name: ruleName,
        get: () => list().find((r) => lower(r.name) === lower(ruleName)),
        put: () => service.putRule(ns, topic.name, subscription.name, ruleName, ruleProperties(bodyProperties(body))),
        remove: () => service.deleteRule(ns, topic.name, subscription.name, ruleName),
        toArm: ruleToArm,
      });
    });
  }
}

function queueView(q: QueueDescription) {
  return {
    ...q.properties,
    createdAt: q.createdAt,
    updatedAt: q.createdAt,
    requiresDuplicateDetection: false,
    enablePartitioning: false,
    enableBatchedOperations: true,
    enableExpress: false,
    maxMessageSizeInKilobytes: 256,
  };
}

function subscriptionView(s: SubscriptionDescription) {
  return { ...s.properties, createdAt: s.createdAt, updatedAt: s.createdAt, deadLetteringOnFilterEvaluationExceptions: false, enableBatchedOperations: true };
}

function ruleView(p: RuleProperties) {
  return {
    filterType: p.filterType,
    ...(p.sqlFilter ? { sqlFilter: { sqlExpression: p.sqlFilter.sqlExpression, compatibilityLevel: 20 } } : {}),
    ...(p.correlationFilter ? { correlationFilter: p.correlationFilter } : {}),
    action: {},
  };
}

/** Queue (`queue` true) or subscription PUT properties, as the namespace service names them. */
function receiverProperties(p: Obj, queue: boolean) {
  refuseTrue(p, UNSUPPORTED_FLAGS);
  for (const n of ['forwardTo', 'forwardDeadLetteredMessagesTo']) if (typeof p[n] === 'string' && p[n] !== '') throw armErrors.notSupported(`properties.${n}`, p[n]);
  if (p.status !== undefined && p.status !== null && p.status !== 'Active') throw armErrors.notSupported('properties.status', p.status);
  const out = {
    lockDuration: optionalString(p, 'lockDuration'),
    maxDeliveryCount: optionalInt(p, 'maxDeliveryCount'),
    defaultMessageTimeToLive: optionalString(p, 'defaultMessageTimeToLive'),
    deadLetteringOnMessageExpiration: optionalBool(p, 'deadLetteringOnMessageExpiration'),
    ...(queue ? { maxSizeInMegabytes: optionalInt(p, 'maxSizeInMegabytes') } : {}),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

function topicProperties(p: Obj) {
  refuseTrue(p, UNSUPPORTED_FLAGS);
  if (p.status !== undefined && p.status !== null && p.status !== 'Active') throw armErrors.notSupported('properties.status', p.status);
  const out = { defaultMessageTimeToLive: optionalString(p, 'defaultMessageTimeToLive'), maxSizeInMegabytes: optionalInt(p, 'maxSizeInMegabytes') };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

const CORRELATION_FIELDS = ['correlationId', 'messageId', 'to', 'replyTo', 'label', 'sessionId', 'replyToSessionId', 'contentType'] as const;

/** A rule's PUT properties: a SqlFilter or a CorrelationFilter (the filter type follows the one given when not named). */
function ruleProperties(p: Obj): RuleProperties {
  const action = p.action;
  const filterType = typeof p.filterType === 'string' ? p.filterType : isObj(p.correlationFilter) ? 'CorrelationFilter' : 'SqlFilter';
  const out: RuleProperties = { filterType: filterType as RuleProperties['filterType'] };
  if (isObj(action) && typeof action.sqlExpression === 'string' && action.sqlExpression.trim() !== '') out.action = { sqlExpression: action.sqlExpression };
  if (lower(filterType) === 'sqlfilter') {
    out.filterType = 'SqlFilter';
    const f = p.sqlFilter;
    if (f === undefined || f === null) out.sqlFilter = { sqlExpression: '1=1' };
    else if (!isObj(f) || typeof f.sqlExpression !== 'string') throw armErrors.invalidContent("'properties.sqlFilter.sqlExpression' must be a string.");
    else out.sqlFilter = { sqlExpression: f.sqlExpression };
  } else if (lower(filterType) === 'correlationfilter') {
    out.filterType = 'CorrelationFilter';
    const f = p.correlationFilter;
    if (!isObj(f)) throw armErrors.invalidContent("A CorrelationFilter rule needs 'properties.correlationFilter'.");
    const cf: CorrelationFilter = {};
    for (const k of CORRELATION_FIELDS) {
      const v = f[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string') throw armErrors.invalidContent(`'properties.correlationFilter.${k}' must be a string.`);
      cf[k] = v;
    }
    if (f.properties !== undefined && f.properties !== null) {
      if (!isObj(f.properties) || Object.values(f.properties).some((v) => !['string', 'number', 'boolean'].includes(typeof v))) throw armErrors.invalidContent("'properties.correlationFilter.properties' must be an object of strings, numbers and booleans.");
      cf.properties = f.properties as Record<string, string | number | boolean>;
    }
    out.correlationFilter = cf;
  } else throw armErrors.invalidContent(`'properties.filterType' must be 'SqlFilter' or 'CorrelationFilter', not '${filterType}'.`);
  return out;
}
