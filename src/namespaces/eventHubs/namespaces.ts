import { randomBytes } from 'node:crypto';
import { HubError } from '../../core/errors.js';
import { partitionForKey } from '../../core/partitionKey.js';
import { serviceBusSignatureMatches, type SasToken } from '../../core/sas.js';
import { AppendNotifier } from '../../hub/eventhub/appends.js';
import { partitionNumber, type EventHubEntity, type EventHubProperties as ServedProperties } from '../../hub/eventhub/entity.js';
import { PartitionOwnership } from '../../hub/eventhub/ownership.js';
import type { EventLog, EventLogs, PartitionInfo, PropertyValue, StoredEvent } from '../../store/eventLog.js';
import type { EventHubsStore } from '../../store/eventHubs.js';
import {
  DEFAULT_CONSUMER_GROUP,
  ROOT_RULE,
  eventHubDefaults,
  type AccessRight,
  type AuthorizationRule,
  type ConsumerGroupDescription,
  type EventHubDescription,
  type EventHubProperties,
  type NamespaceDescription,
} from './types.js';

/** Event Hubs' naming rules. */
const NAMESPACE_NAME = /^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$/;
const ENTITY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/;
const GROUP_NAME = /^(?:\$Default|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?)$/i;
const RULE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/;
const RIGHTS: AccessRight[] = ['Listen', 'Manage', 'Send'];

/** Event Hubs' largest event (Standard tier): 1 MB, batches included. */
export const MAX_EVENT_BYTES = 1024 * 1024;

/** The log entity key of a namespace's event hub. */
export const entityKey = (namespace: string, eventHub: string) => `${namespace.toLowerCase()}/${eventHub.toLowerCase()}`;

/** What a SAS token signed by one of a namespace's (or event hub's) rules grants. */
export interface EventHubsGrant {
  namespace: string;
  /** Set when the signing rule is an event hub's own: the grant covers only that event hub. */
  eventHub?: string;
  rule: string;
  rights: AccessRight[];
  /** The token's resource (`sb://host/path`). */
  resource: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** One event as a producer sends it: where it goes is a partition id, a partition key, or neither. */
export interface EventToSend {
  body: Buffer;
  systemProperties: Record<string, PropertyValue>;
  properties: Record<string, PropertyValue>;
}

const notFound = (what: string) => new HubError('NotFound', `The messaging entity '${what}' could not be found.`);
const invalid = (message: string) => new HubError('ArgumentInvalid', message);
const newKey = () => randomBytes(32).toString('base64');

/**
 * Local Event Hubs namespaces: namespaces with event hubs, consumer groups and authorization
 * rules (ARM's shapes), SAS verification, and the event hubs served from the event log.
 */
export class EventHubsNamespaces {
  private readonly servedHubs = new Map<string, NamespaceEventHub>();
  private readonly roundRobin = new Map<string, number>();

  constructor(
    private readonly store: EventHubsStore,
    private readonly logs: EventLogs,
    private readonly now: () => number = Date.now,
  ) {}

  // Namespaces

  listNamespaces(): NamespaceDescription[] {
    return this.store.listNamespaces();
  }

  getNamespace(name: string): NamespaceDescription | undefined {
    return this.store.getNamespace(name);
  }

  /** Creates the namespace with its RootManageSharedAccessKey rule; an existing one is left as it is. */
  createNamespace(name: string): NamespaceDescription {
    if (!NAMESPACE_NAME.test(name)) throw invalid(`Invalid namespace name '${name}': 6-50 letters, digits and hyphens, starting with a letter, ending with a letter or digit`);
    const existing = this.store.getNamespace(name);
    if (existing) return existing;
    const ns = { name, createdAt: new Date(this.now()).toISOString() };
    this.store.insertNamespace(ns);
    this.store.putAuthorizationRule(name, { name: ROOT_RULE, rights: [...RIGHTS], primaryKey: newKey(), secondaryKey: newKey() });
    return ns;
  }

  async deleteNamespace(name: string): Promise<void> {
    const ns = this.requireNamespace(name);
    for (const hub of this.store.deleteNamespace(ns.name)) await this.dropServed(ns.name, hub.name);
  }

  // Event hubs

  listEventHubs(namespace: string): EventHubDescription[] {
    return this.store.listEventHubs(this.requireNamespace(namespace).name);
  }

  getEventHub(namespace: string, name: string): EventHubDescription | undefined {
    const ns = this.store.getNamespace(namespace);
    return ns ? this.store.getEventHub(ns.name, name) : undefined;
  }

  /**
   * Creates or updates an event hub (ARM's PUT): partitionCount 1-32, fixed once created (as on
   * the Standard tier); messageRetentionInDays 1-7. A new one gets its partitions in the event log
   * and the $Default consumer group.
   */
  async putEventHub(namespace: string, name: string, properties: Partial<Pick<EventHubProperties, 'partitionCount' | 'messageRetentionInDays'>> = {}): Promise<EventHubDescription> {
    const ns = this.requireNamespace(namespace);
    if (!ENTITY_NAME.test(name)) throw invalid(`Invalid event hub name '${name}': 1-256 letters, digits, '.', '-' and '_', starting and ending with a letter or digit`);
    const existing = this.store.getEventHub(ns.name, name);
    const partitionCount = properties.partitionCount ?? existing?.properties.partitionCount ?? eventHubDefaults.partitionCount;
    const retention = properties.messageRetentionInDays ?? existing?.properties.messageRetentionInDays ?? eventHubDefaults.messageRetentionInDays;
    if (!Number.isInteger(partitionCount) || partitionCount < 1 || partitionCount > 32) throw invalid(`partitionCount must be an integer from 1 to 32, not ${String(partitionCount)}`);
    if (!Number.isInteger(retention) || retention < 1 || retention > 7) throw invalid(`messageRetentionInDays must be an integer from 1 to 7, not ${String(retention)}`);
    if (existing && existing.properties.partitionCount !== partitionCount) {
      throw new HubError('InvalidOperation', `The partition count of event hub '${existing.name}' is ${existing.properties.partitionCount}; it cannot be changed`);
    }
    const at = new Date(this.now()).toISOString();
    const hub: EventHubDescription = {
      namespace: ns.name,
      name: existing?.name ?? name,
      properties: {
        partitionCount,
        messageRetentionInDays: retention,
        status: 'Active',
        partitionIds: Array.from({ length: partitionCount }, (_, i) => String(i)),
        createdAt: existing?.properties.createdAt ?? at,
        updatedAt: at,
      },
    };
    if (!existing) {
      // A leftover log of an event hub of that name deleted earlier is not the new one's.
      await this.logs.drop(entityKey(ns.name, name));
      await this.logs.entity(entityKey(ns.name, name)).ensurePartitions(partitionCount);
    }
    this.store.putEventHub(hub);
    if (!existing) this.store.putConsumerGroup(ns.name, hub.name, { name: DEFAULT_CONSUMER_GROUP, properties: { createdAt: at, updatedAt: at } });
    return hub;
  }

  async deleteEventHub(namespace: string, name: string): Promise<void> {
    const hub = this.requireEventHub(namespace, name);
    this.store.deleteEventHub(hub.namespace, hub.name);
    await this.dropServed(hub.namespace, hub.name);
  }

  // Consumer groups

  listConsumerGroups(namespace: string, eventHub: string): ConsumerGroupDescription[] {
    const hub = this.requireEventHub(namespace, eventHub);
    return this.store.listConsumerGroups(hub.namespace, hub.name);
  }

  putConsumerGroup(namespace: string, eventHub: string, name: string, userMetadata?: string): ConsumerGroupDescription {
    const hub = this.requireEventHub(namespace, eventHub);
    if (!GROUP_NAME.test(name)) throw invalid(`Invalid consumer group name '${name}': 1-50 letters, digits, '.', '_' or '-', starting and ending with a letter or digit`);
    const existing = this.store.listConsumerGroups(hub.namespace, hub.name).find((g) => g.name.toLowerCase() === name.toLowerCase());
    const at = new Date(this.now()).toISOString();
    const group: ConsumerGroupDescription = {
      name: existing?.name ?? name,
      properties: { ...(userMetadata !== undefined ? { userMetadata } : {}), createdAt: existing?.properties.createdAt ?? at, updatedAt: at },
    };
    this.store.putConsumerGroup(hub.namespace, hub.name, group);
    return group;
  }

  deleteConsumerGroup(namespace: string, eventHub: string, name: string): void {
    const hub = this.requireEventHub(namespace, eventHub);
    if (name.toLowerCase() === DEFAULT_CONSUMER_GROUP.toLowerCase()) throw new HubError('InvalidOperation', 'The $Default consumer group cannot be deleted');
    if (!this.store.deleteConsumerGroup(hub.namespace, hub.name, name)) throw notFound(`${hub.name}/ConsumerGroups/${name}`);
  }

  // Authorization rules (namespace level when eventHub is undefined)

  listAuthorizationRules(namespace: string, eventHub?: string): AuthorizationRule[] {
    const ns = this.requireNamespace(namespace);
    const hub = eventHub === undefined ? undefined : this.requireEventHub(ns.name, eventHub);
    return this.store.listAuthorizationRules(ns.name, hub?.name);
  }

  /** Creates or updates a rule's rights; its keys are kept (new ones when created). */
  putAuthorizationRule(namespace: string, eventHub: string | undefined, name: string, rights: AccessRight[]): AuthorizationRule {
    const ns = this.requireNamespace(namespace);
    const hub = eventHub === undefined ? undefined : this.requireEventHub(ns.name, eventHub);
    if (!RULE_NAME.test(name)) throw invalid(`Invalid authorization rule name '${name}'`);
    if (!Array.isArray(rights) || rights.length === 0 || rights.some((r) => !RIGHTS.includes(r))) throw invalid(`rights must be a non-empty list of Send, Listen, Manage`);
    // Manage comes with Send and Listen, as Event Hubs requires.
    if (rights.includes('Manage') && !(rights.includes('Send') && rights.includes('Listen'))) throw invalid('A rule with Manage must also have Send and Listen');
    const existing = this.store.listAuthorizationRules(ns.name, hub?.name).find((r) => r.name.toLowerCase() === name.toLowerCase());
    const rule: AuthorizationRule = {
      name: existing?.name ?? name,
      ...(hub ? { eventHub: hub.name } : {}),
      rights: RIGHTS.filter((r) => rights.includes(r)),
      primaryKey: existing?.primaryKey ?? newKey(),
      secondaryKey: existing?.secondaryKey ?? newKey(),
    };
    this.store.putAuthorizationRule(ns.name, rule);
    return rule;
  }

  deleteAuthorizationRule(namespace: string, eventHub: string | undefined, name: string): void {
    const ns = this.requireNamespace(namespace);
    const hub = eventHub === undefined ? undefined : this.requireEventHub(ns.name, eventHub);
    if (!this.store.deleteAuthorizationRule(ns.name, hub?.name, name)) throw notFound(`${hub ? `${hub.name}/` : ''}AuthorizationRules/${name}`);
  }

  regenerateKey(namespace: string, eventHub: string | undefined, name: string, keyType: 'PrimaryKey' | 'SecondaryKey'): AuthorizationRule {
    const rule = this.listAuthorizationRules(namespace, eventHub).find((r) => r.name.toLowerCase() === name.toLowerCase());
    if (!rule) throw notFound(`AuthorizationRules/${name}`);
    const next = { ...rule, ...(keyType === 'PrimaryKey' ? { primaryKey: newKey() } : { secondaryKey: newKey() }) };
    this.store.putAuthorizationRule(this.requireNamespace(namespace).name, next);
    return next;
  }

  // SAS

  /**
   * The grant of a SAS token: the rule named by `skn` whose primary or secondary key signed it
   * (of `namespace` when the connection is bound to one, else of any namespace: keys are random,
   * so the signature picks the namespace). Throws IotHubUnauthorizedAccess otherwise.
   */
  verifySas(token: SasToken, namespace?: string): EventHubsGrant {
    if (!token.keyName) throw new HubError('IotHubUnauthorizedAccess', 'InvalidSignature: The token has no key name (skn).');
    if (token.expiry * 1000 <= this.now()) throw new HubError('IotHubUnauthorizedAccess', 'ExpiredToken: The token is expired.');
    for (const rule of this.store.findAuthorizationRules(token.keyName)) {
      if (namespace && rule.namespace.toLowerCase() !== namespace.toLowerCase()) continue;
      if (!serviceBusSignatureMatches(token, rule.primaryKey) && !serviceBusSignatureMatches(token, rule.secondaryKey)) continue;
      return {
        namespace: rule.namespace,
        ...(rule.eventHub ? { eventHub: rule.eventHub } : {}),
        rule: rule.name,
        rights: rule.rights,
        resource: token.resource,
        expiresAt: token.expiry * 1000,
      };
    }
    throw new HubError('IotHubUnauthorizedAccess', `InvalidSignature: The token has an invalid signature (rule '${token.keyName}').`);
  }

  /**
   * Throws IotHubUnauthorizedAccess unless the grant allows `right` on the event hub: unexpired,
   * the right among the rule's (Manage includes both others), an event hub rule only for its own
   * event hub, and the token's resource covering the event hub's path.
   */
  checkGrant(grant: EventHubsGrant, right: AccessRight, eventHub: string): void {
    if (grant.expiresAt <= this.now()) throw new HubError('IotHubUnauthorizedAccess', 'ExpiredToken: The token is expired.');
    if (!grant.rights.includes(right) && !grant.rights.includes('Manage')) {
      throw new HubError('IotHubUnauthorizedAccess', `Unauthorized access. '${right}' claim(s) are required to perform this operation. Rule: '${grant.rule}'.`);
    }
    if (grant.eventHub && grant.eventHub.toLowerCase() !== eventHub.toLowerCase()) {
      throw new HubError('IotHubUnauthorizedAccess', `Unauthorized access. The rule '${grant.rule}' of event hub '${grant.eventHub}' does not cover '${eventHub}'.`);
    }
    // The audience is the namespace (`sb://host/`) or a path in the event hub (`sb://host/hub/Partitions/1`).
    const first = grant.resource.replace(/^[a-z]+:\/\/[^/]+/i, '').replace(/^\/+/, '').split('/')[0] ?? '';
    if (first !== '' && first.toLowerCase() !== eventHub.toLowerCase()) {
      throw new HubError('IotHubUnauthorizedAccess', `Unauthorized access. The token's audience '${grant.resource}' does not cover '${eventHub}'.`);
    }
  }

  // Serving

  /** The event hub as AMQP links serve it; undefined when it does not exist. */
  served(namespace: string, name: string): NamespaceEventHub | undefined {
    const hub = this.getEventHub(namespace, name);
    if (!hub) return undefined;
    const key = entityKey(hub.namespace, hub.name);
    let served = this.servedHubs.get(key);
    if (!served) {
      served = new NamespaceEventHub(hub, this.logs.entity(key), () => this.store.listConsumerGroups(hub.namespace, hub.name).map((g) => g.name));
      this.servedHubs.set(key, served);
    }
    return served;
  }

  /**
   * Appends the events to one partition in one transaction (all committed when this resolves,
   * or none): `partitionId` when given, else the partition key's hash, else round robin.
   */
  async send(namespace: string, eventHub: string, events: EventToSend[], target: { partitionId?: string; partitionKey?: string } = {}): Promise<StoredEvent[]> {
    const hub = this.served(namespace, eventHub);
    if (!hub) throw notFound(`${namespace}/${eventHub}`);
    let partition: number;
    if (target.partitionId !== undefined) {
      const p = hub.partition(target.partitionId);
      if (p === undefined) throw notFound(`${hub.name}/Partitions/${target.partitionId}`);
      partition = p;
    } else if (target.partitionKey !== undefined) partition = partitionForKey(target.partitionKey, hub.partitionCount);
    else {
      const next = this.roundRobin.get(hub.key) ?? 0;
      this.roundRobin.set(hub.key, (next + 1) % hub.partitionCount);
      partition = next % hub.partitionCount;
    }
    const enqueuedTime = this.now();
    const stored = await hub.writableLog.append(events.map((e) => ({ partition, enqueuedTime, ...e })));
    hub.appends.appended([partition]);
    return stored;
  }

  /** Drops events older than each event hub's retention. */
  async applyRetention(): Promise<number> {
    let deleted = 0;
    for (const ns of this.store.listNamespaces()) {
      for (const hub of this.store.listEventHubs(ns.name)) {
        deleted += await this.logs.entity(entityKey(ns.name, hub.name)).deleteBefore(this.now() - hub.properties.messageRetentionInDays * 86_400_000);
      }
    }
    return deleted;
  }

  private async dropServed(namespace: string, name: string): Promise<void> {
    const key = entityKey(namespace, name);
    this.servedHubs.get(key)?.ownership.closeAll('The event hub was deleted.');
    this.servedHubs.delete(key);
    await this.logs.drop(key);
  }

  private requireNamespace(name: string): NamespaceDescription {
    const ns = this.store.getNamespace(name);
    if (!ns) throw notFound(name);
    return ns;
  }

  private requireEventHub(namespace: string, name: string): EventHubDescription {
    const ns = this.requireNamespace(namespace);
    const hub = this.store.getEventHub(ns.name, name);
    if (!hub) throw notFound(`${ns.name}/${name}`);
    return hub;
  }
}

/** A namespace's event hub as the Event Hubs links serve it. */
export class NamespaceEventHub implements EventHubEntity {
  readonly ownership = new PartitionOwnership();
  readonly appends = new AppendNotifier();
  readonly name: string;
  readonly partitionCount: number;
  readonly key: string;

  constructor(
    private readonly description: EventHubDescription,
    readonly writableLog: EventLog,
    private readonly groups: () => string[],
  ) {
    this.name = description.name;
    this.partitionCount = description.properties.partitionCount;
    this.key = entityKey(description.namespace, description.name);
  }

  get namespace(): string {
    return this.description.namespace;
  }

  get log(): Pick<EventLog, 'read' | 'partitionInfo'> {
    return this.writableLog;
  }

  async consumerGroup(name: string): Promise<string | undefined> {
    return this.groups().find((g) => g.toLowerCase() === name.toLowerCase());
  }

  properties(): ServedProperties {
    return { name: this.name, createdAt: new Date(this.description.properties.createdAt), partitionIds: this.description.properties.partitionIds };
  }

  partition(partitionId: string): number | undefined {
    return partitionNumber(partitionId, this.partitionCount);
  }

  partitionProperties(partition: number): Promise<PartitionInfo> {
    return this.writableLog.partitionInfo(partition);
  }
}
