import { generateKey } from '../../core/ids.js';
import { resourceCovers, serviceBusSignatureMatches, type SasToken } from '../../core/sas.js';
import type { ServiceBusRecord, ServiceBusStore } from '../../store/serviceBus.js';
import { durationMs } from './duration.js';
import { ServiceBusError, sbErrors } from './errors.js';
import { ruleMatcher, type MessageMatcher } from './rules.js';
import {
  queueDefaults,
  subscriptionDefaults,
  topicDefaults,
  type AccessRight,
  type AuthorizationRule,
  type IncomingMessage,
  type NamespaceDescription,
  type QueueDescription,
  type QueueProperties,
  type RuleDescription,
  type RuleProperties,
  type StoredMessage,
  type SubscriptionDescription,
  type SubscriptionProperties,
  type TopicDescription,
  type TopicProperties,
} from './types.js';

/** Standard tier's message size limit (the whole batch, for a batch). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
export const DEAD_LETTER_QUEUE = '$DeadLetterQueue';
const ENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/;
const NAMESPACE_NAME = /^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$/;

/** The domain reads what it needs of an opaque message payload through this (the protocol's codec). */
export interface MessageReader {
  describe(payload: Buffer): IncomingMessage;
}

interface SubscriptionState {
  description: SubscriptionDescription;
  rules: Map<string, { description: RuleDescription; matcher: MessageMatcher }>;
}
interface TopicState {
  description: TopicDescription;
  subscriptions: Map<string, SubscriptionState>;
}
interface NamespaceState {
  description: NamespaceDescription;
  queues: Map<string, QueueDescription>;
  topics: Map<string, TopicState>;
  /** By `${entity lower}#${name lower}`; entity '' for the namespace's own rules. */
  authorizationRules: Map<string, { entity: string; rule: AuthorizationRule }>;
}

/** A receivable entity a link address names. */
export interface ReceivableEntity {
  namespace: string;
  /** The stored path: `q`, `t/Subscriptions/s`, with `/$DeadLetterQueue` for the subqueue. */
  path: string;
  /** The queue or topic the entity belongs to (what authorization rules are scoped to). */
  root: string;
  lockDurationMs: number;
  maxDeliveryCount: number;
  deadLetteringOnMessageExpiration: boolean;
  deadLetter: boolean;
  requiresSession: boolean;
}

export type Settlement =
  | { outcome: 'complete' }
  | { outcome: 'abandon'; properties?: Record<string, unknown> }
  | { outcome: 'defer'; properties?: Record<string, unknown> }
  | { outcome: 'deadLetter'; reason?: string; description?: string; properties?: Record<string, unknown> };

/** What a verified SAS token grants on a connection. */
export interface ServiceBusGrant {
  namespace: string;
  rights: AccessRight[];
  /** The queue or topic the signing policy belongs to; undefined for a namespace policy. */
  entity?: string;
  /** The resource (audience) the token was signed for, host included. */
  resource: string;
  expiresAt: number;
  keyName: string;
}

/**
 * Local Service Bus namespaces: queues, topics, subscriptions, rules and authorization rules
 * (configuration kept in memory, written through to the store), and the message engine
 * behind them: send with topic fan-out through rules, peek-lock and receive-and-delete,
 * settlement, lock renewal and expiry, deferral, scheduling, TTL and dead-lettering.
 */
export class ServiceBusNamespaces {
  private readonly namespaces = new Map<string, NamespaceState>();
  private readonly listeners = new Map<string, Set<() => void>>();
  /** Work waiting for the next group commit (see `commitSoon`). */
  private pending: { work: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  /** While a group commit runs: the entities to wake once it has committed. */
  private deferredNotify: Set<string> | undefined;

  constructor(
    private readonly store: ServiceBusStore,
    private readonly reader: MessageReader,
    private readonly now: () => number = Date.now,
  ) {
    this.load(store.records());
  }

  // ---- namespaces and entities -------------------------------------------------------------

  listNamespaces(): NamespaceDescription[] {
    return [...this.namespaces.values()].map((n) => n.description);
  }

  getNamespace(name: string): NamespaceDescription | undefined {
    return this.namespaces.get(name.toLowerCase())?.description;
  }

  /** Creates a namespace with its RootManageSharedAccessKey rule, as Azure does; returns the existing one unchanged. */
  createNamespace(name: string): NamespaceDescription {
    const existing = this.namespaces.get(name.toLowerCase());
    if (existing) return existing.description;
    if (!NAMESPACE_NAME.test(name)) {
      throw sbErrors.argument(`The namespace name '${name}' is invalid: 6-50 letters, digits and hyphens, starting with a letter and ending with a letter or digit.`);
    }
    const description: NamespaceDescription = { name, createdAt: new Date(this.now()).toISOString() };
    this.store.transaction(() => {
      this.store.putRecord({ namespace: name, kind: 'namespace', path: '', doc: JSON.stringify(description) });
    });
    this.namespaces.set(name.toLowerCase(), { description, queues: new Map(), topics: new Map(), authorizationRules: new Map() });
    this.putAuthorizationRule(name, '', 'RootManageSharedAccessKey', ['Listen', 'Manage', 'Send']);
    return description;
  }

  deleteNamespace(name: string): void {
    this.ns(name);
    this.store.deleteNamespace(name);
    this.namespaces.delete(name.toLowerCase());
  }

  listQueues(namespace: string): QueueDescription[] {
    return [...this.ns(namespace).queues.values()];
  }
  getQueue(namespace: string, name: string): QueueDescription | undefined {
    return this.ns(namespace).queues.get(name.toLowerCase());
  }
  putQueue(namespace: string, name: string, properties: Partial<QueueProperties> = {}): QueueDescription {
    const ns = this.ns(namespace);
    checkEntityName(name, 'queue');
    if (ns.topics.has(name.toLowerCase())) throw sbErrors.alreadyExists(`${namespace}:${name}`);
    const merged = { ...queueDefaults, ...ns.queues.get(name.toLowerCase())?.properties, ...definedOnly(properties) };
    checkReceiverProperties(merged);
    const description: QueueDescription = { name: ns.queues.get(name.toLowerCase())?.name ?? name, properties: merged, createdAt: ns.queues.get(name.toLowerCase())?.createdAt ?? new Date(this.now()).toISOString() };
    this.store.putRecord({ namespace: ns.description.name, kind: 'queue', path: description.name, doc: JSON.stringify(description) });
    ns.queues.set(name.toLowerCase(), description);
    return description;
  }
  deleteQueue(namespace: string, name: string): void {
    const ns = this.ns(namespace);
    const q = ns.queues.get(name.toLowerCase());
    if (!q) throw sbErrors.entityNotFound(namespace, name);
    this.store.deleteRecord(ns.description.name, 'queue', q.name);
    ns.queues.delete(name.toLowerCase());
    this.dropRulesOf(ns, q.name);
  }

  listTopics(namespace: string): TopicDescription[] {
    return [...this.ns(namespace).topics.values()].map((t) => t.description);
  }
  getTopic(namespace: string, name: string): TopicDescription | undefined {
    return this.ns(namespace).topics.get(name.toLowerCase())?.description;
  }
  putTopic(namespace: string, name: string, properties: Partial<TopicProperties> = {}): TopicDescription {
    const ns = this.ns(namespace);
    checkEntityName(name, 'topic');
    if (ns.queues.has(name.toLowerCase())) throw sbErrors.alreadyExists(`${namespace}:${name}`);
    const existing = ns.topics.get(name.toLowerCase());
    const merged = { ...topicDefaults, ...existing?.description.properties, ...definedOnly(properties) };
    durationMs(merged.defaultMessageTimeToLive, 'defaultMessageTimeToLive');
    const description: TopicDescription = { name: existing?.description.name ?? name, properties: merged, createdAt: existing?.description.createdAt ?? new Date(this.now()).toISOString() };
    this.store.putRecord({ namespace: ns.description.name, kind: 'topic', path: description.name, doc: JSON.stringify(description) });
    if (existing) existing.description = description;
    else ns.topics.set(name.toLowerCase(), { description, subscriptions: new Map() });
    return description;
  }
  deleteTopic(namespace: string, name: string): void {
    const ns = this.ns(namespace);
    const t = ns.topics.get(name.toLowerCase());
    if (!t) throw sbErrors.entityNotFound(namespace, name);
    this.store.deleteRecord(ns.description.name, 'topic', t.description.name);
    ns.topics.delete(name.toLowerCase());
    this.dropRulesOf(ns, t.description.name);
  }

  listSubscriptions(namespace: string, topic: string): SubscriptionDescription[] {
    return [...this.topic(namespace, topic).subscriptions.values()].map((s) => s.description);
  }
  getSubscription(namespace: string, topic: string, name: string): SubscriptionDescription | undefined {
    return this.topic(namespace, topic).subscriptions.get(name.toLowerCase())?.description;
  }
  /** A new subscription gets the `$Default` rule with a true filter, as on Azure. */
  putSubscription(namespace: string, topic: string, name: string, properties: Partial<SubscriptionProperties> = {}): SubscriptionDescription {
    const ns = this.ns(namespace);
    const t = this.topic(namespace, topic);
    checkEntityName(name, 'subscription');
    if (name.length > 50) throw sbErrors.argument(`The subscription name '${name}' is longer than 50 characters.`);
    const existing = t.subscriptions.get(name.toLowerCase());
    const merged = { ...subscriptionDefaults, ...existing?.description.properties, ...definedOnly(properties) };
    checkReceiverProperties(merged);
    const description: SubscriptionDescription = {
      topic: t.description.name,
      name: existing?.description.name ?? name,
      properties: merged,
      createdAt: existing?.description.createdAt ?? new Date(this.now()).toISOString(),
    };
    this.store.putRecord({ namespace: ns.description.name, kind: 'subscription', path: subscriptionPath(t.description.name, description.name), doc: JSON.stringify(description) });
    if (existing) existing.description = description;
    else {
      t.subscriptions.set(name.toLowerCase(), { description, rules: new Map() });
      this.putRule(namespace, topic, name, '$Default', { filterType: 'SqlFilter', sqlFilter: { sqlExpression: '1=1' } });
    }
    return description;
  }
  deleteSubscription(namespace: string, topic: string, name: string): void {
    const ns = this.ns(namespace);
    const t = this.topic(namespace, topic);
    const s = t.subscriptions.get(name.toLowerCase());
    if (!s) throw sbErrors.entityNotFound(namespace, subscriptionPath(t.description.name, name));
    this.store.deleteRecord(ns.description.name, 'subscription', subscriptionPath(t.description.name, s.description.name));
    t.subscriptions.delete(name.toLowerCase());
  }

  listRules(namespace: string, topic: string, subscription: string): RuleDescription[] {
    return [...this.subscription(namespace, topic, subscription).rules.values()].map((r) => r.description);
  }
  /** Validates the filter (a SQL filter that does not parse is refused, naming the position). */
  putRule(namespace: string, topic: string, subscription: string, name: string, properties: RuleProperties): RuleDescription {
    const ns = this.ns(namespace);
    const s = this.subscription(namespace, topic, subscription);
    if (!/^[A-Za-z0-9$][A-Za-z0-9._$-]{0,49}$/.test(name)) throw sbErrors.argument(`The rule name '${name}' is invalid.`);
    const matcher = ruleMatcher(properties);
    const description: RuleDescription = { topic: s.description.topic, subscription: s.description.name, name, properties };
    this.store.putRecord({ namespace: ns.description.name, kind: 'rule', path: rulePath(s.description.topic, s.description.name, name), doc: JSON.stringify(description) });
    s.rules.set(name.toLowerCase(), { description, matcher });
    return description;
  }
  deleteRule(namespace: string, topic: string, subscription: string, name: string): void {
    const ns = this.ns(namespace);
    const s = this.subscription(namespace, topic, subscription);
    const r = s.rules.get(name.toLowerCase());
    if (!r) throw sbErrors.entityNotFound(namespace, rulePath(s.description.topic, s.description.name, name));
    this.store.deleteRecord(ns.description.name, 'rule', rulePath(s.description.topic, s.description.name, r.description.name));
    s.rules.delete(name.toLowerCase());
  }

  /** Authorization rules of the namespace (entity '') or of a queue or topic. */
  listAuthorizationRules(namespace: string, entity = ''): AuthorizationRule[] {
    return [...this.ns(namespace).authorizationRules.values()].filter((r) => r.entity.toLowerCase() === entity.toLowerCase()).map((r) => r.rule);
  }
  /** Creates or updates a rule; keys are generated when it is new and kept otherwise. */
  putAuthorizationRule(namespace: string, entity: string, name: string, rights: AccessRight[]): AuthorizationRule {
    const ns = this.ns(namespace);
    if (entity && !ns.queues.has(entity.toLowerCase()) && !ns.topics.has(entity.toLowerCase())) throw sbErrors.entityNotFound(namespace, entity);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$/.test(name)) throw sbErrors.argument(`The authorization rule name '${name}' is invalid.`);
    const unique = [...new Set(rights)];
    if (!unique.length || unique.some((r) => !['Send', 'Listen', 'Manage'].includes(r))) throw sbErrors.argument("Rights must be some of 'Send', 'Listen' and 'Manage'.");
    if (unique.includes('Manage') && !(unique.includes('Send') && unique.includes('Listen'))) throw sbErrors.argument("'Manage' needs 'Send' and 'Listen' too.");
    const key = `${entity.toLowerCase()}#${name.toLowerCase()}`;
    const existing = ns.authorizationRules.get(key);
    const rule: AuthorizationRule = { name: existing?.rule.name ?? name, rights: unique, primaryKey: existing?.rule.primaryKey ?? generateKey(), secondaryKey: existing?.rule.secondaryKey ?? generateKey() };
    this.store.putRecord({ namespace: ns.description.name, kind: 'authorizationRule', path: `${entity}#${rule.name}`, doc: JSON.stringify({ entity, rule }) });
    ns.authorizationRules.set(key, { entity, rule });
    return rule;
  }
  deleteAuthorizationRule(namespace: string, entity: string, name: string): void {
    const ns = this.ns(namespace);
    const key = `${entity.toLowerCase()}#${name.toLowerCase()}`;
    const existing = ns.authorizationRules.get(key);
    if (!existing) throw sbErrors.entityNotFound(namespace, `${entity ? entity + '/' : ''}authorizationRules/${name}`);
    this.store.deleteRecord(ns.description.name, 'authorizationRule', `${existing.entity}#${existing.rule.name}`);
    ns.authorizationRules.delete(key);
  }
  regenerateKey(namespace: string, entity: string, name: string, which: 'PrimaryKey' | 'SecondaryKey'): AuthorizationRule {
    const ns = this.ns(namespace);
    const existing = ns.authorizationRules.get(`${entity.toLowerCase()}#${name.toLowerCase()}`);
    if (!existing) throw sbErrors.entityNotFound(namespace, `${entity ? entity + '/' : ''}authorizationRules/${name}`);
    const rule = { ...existing.rule, [which === 'PrimaryKey' ? 'primaryKey' : 'secondaryKey']: generateKey() };
    this.store.putRecord({ namespace: ns.description.name, kind: 'authorizationRule', path: `${existing.entity}#${rule.name}`, doc: JSON.stringify({ entity: existing.entity, rule }) });
    existing.rule = rule;
    return rule;
  }

  // ---- authentication ------------------------------------------------------------------------

  /**
   * Which namespace's policy signed this SAS token (`skn` names the policy; keys are random per
   * namespace, so the signature picks one), optionally only within `namespace`. Throws
   * Unauthorized when none did or it has expired.
   */
  verifySas(token: SasToken, namespace?: string): ServiceBusGrant {
    if (token.expiry * 1000 <= this.now()) throw new ServiceBusError('Unauthorized', 'ExpiredToken: The token is expired.');
    const candidates = namespace ? [this.ns(namespace)] : [...this.namespaces.values()];
    for (const ns of candidates) {
      for (const { entity, rule } of ns.authorizationRules.values()) {
        if (token.keyName === undefined || rule.name.toLowerCase() !== token.keyName.toLowerCase()) continue;
        if (!serviceBusSignatureMatches(token, rule.primaryKey) && !serviceBusSignatureMatches(token, rule.secondaryKey)) continue;
        return { namespace: ns.description.name, rights: rule.rights, ...(entity ? { entity } : {}), resource: token.resource, expiresAt: token.expiry * 1000, keyName: rule.name };
      }
    }
    throw new ServiceBusError('Unauthorized', `InvalidSignature: The token has an invalid signature.`);
  }

  /** Throws Unauthorized unless the grant allows `right` on the entity whose path is given (`q`, `t/Subscriptions/s`, …). */
  checkGrant(grant: ServiceBusGrant, right: 'Send' | 'Listen', entityPath: string): void {
    const root = entityPath.split('/')[0]!;
    const tokenPath = grant.resource.replace(/^[a-z]+:\/\/[^/]*/i, '').replace(/^\/+|\/+$/g, '').replace(/\/?\$management$/i, '');
    const scoped = !grant.entity || grant.entity.toLowerCase() === root.toLowerCase();
    const covers = tokenPath === '' || resourceCovers('x/' + tokenPath, 'x/' + entityPath.replace(/\/\$management$/i, ''));
    if (!scoped || !covers || !(grant.rights.includes(right) || grant.rights.includes('Manage'))) {
      throw new ServiceBusError('Unauthorized', `Unauthorized access. '${right}' claim(s) are required to perform this operation. Resource: 'sb://${grant.namespace}/${entityPath.toLowerCase()}'.`);
    }
  }

  // ---- entity resolution ---------------------------------------------------------------------

  /** The queue or topic a sender's address names; throws MessagingEntityNotFound. */
  sendTarget(namespace: string, address: string): { kind: 'queue' | 'topic'; path: string } {
    const ns = this.ns(namespace);
    const q = ns.queues.get(address.toLowerCase());
    if (q) return { kind: 'queue', path: q.name };
    const t = ns.topics.get(address.toLowerCase());
    if (t) return { kind: 'topic', path: t.description.name };
    throw sbErrors.entityNotFound(namespace, address);
  }

  /** The queue, subscription or dead-letter subqueue a receiver's address names. */
  receivable(namespace: string, address: string): ReceivableEntity {
    const ns = this.ns(namespace);
    const parts = address.split('/');
    let deadLetter = false;
    if (parts.length > 1 && parts[parts.length - 1]!.toLowerCase() === DEAD_LETTER_QUEUE.toLowerCase()) {
      deadLetter = true;
      parts.pop();
    }
    const dl = (p: string) => (deadLetter ? `${p}/${DEAD_LETTER_QUEUE}` : p);
    if (parts.length === 1) {
      const q = ns.queues.get(parts[0]!.toLowerCase());
      if (q) return { namespace: ns.description.name, path: dl(q.name), root: q.name, ...receiverSettings(q.properties), deadLetter };
    } else if (parts.length === 3 && parts[1]!.toLowerCase() === 'subscriptions') {
      const t = ns.topics.get(parts[0]!.toLowerCase());
      const s = t?.subscriptions.get(parts[2]!.toLowerCase());
      if (t && s) return { namespace: ns.description.name, path: dl(subscriptionPath(t.description.name, s.description.name)), root: t.description.name, ...receiverSettings(s.description.properties), deadLetter };
    }
    throw sbErrors.entityNotFound(namespace, address);
  }

  // ---- messages ------------------------------------------------------------------------------

  /**
   * Stores messages sent to a queue or topic (a topic: one copy per subscription whose rules
   * match), committed before this returns. Messages with a scheduled enqueue time are held
   * until then. Returns the sequence numbers (of the queue's or topic's own messages).
   */
  send(namespace: string, target: { kind: 'queue' | 'topic'; path: string }, payloads: Buffer[]): number[] {
    const ns = this.ns(namespace);
    const total = payloads.reduce((n, p) => n + p.length, 0);
    if (total > MAX_MESSAGE_BYTES) {
      throw new ServiceBusError('MessageSizeExceeded', `The received message (size ${total} bytes) exceeds the limit (${MAX_MESSAGE_BYTES} bytes) currently allowed on the link.`);
    }
    const now = this.now();
    const described = payloads.map((payload) => ({ payload, message: this.reader.describe(payload) }));
    const touched = new Set<string>();
    const sequenceNumbers = this.store.transaction(() =>
      described.map(({ payload, message }) => {
        const scheduled = message.scheduledEnqueueTime !== undefined && message.scheduledEnqueueTime > now;
        if (target.kind === 'queue' || scheduled) {
          const ttl = Math.min(message.timeToLive ?? Infinity, this.defaultTtl(ns, target.path));
          const visibleAt = scheduled ? message.scheduledEnqueueTime! : now;
          touched.add(target.path);
          return this.store.enqueue(ns.description.name, [
            { entity: target.path, payload, state: scheduled ? 'scheduled' : 'active', enqueuedTime: now, visibleAt, ...(Number.isFinite(ttl) ? { expiresAt: visibleAt + ttl } : {}) },
          ])[0]!;
        }
        return this.fanOut(ns, target.path, payload, message, now, touched);
      }),
    );
    for (const path of touched) this.notify(ns.description.name, path);
    return sequenceNumbers;
  }

  /** Copies a topic message into every subscription whose rules match; the first copy's sequence number stands for the topic's. */
  private fanOut(ns: NamespaceState, topic: string, payload: Buffer, message: IncomingMessage, now: number, touched: Set<string>): number {
    const t = ns.topics.get(topic.toLowerCase());
    if (!t) return 0;
    const topicTtl = durationMs(t.description.properties.defaultMessageTimeToLive);
    let first: number | undefined;
    for (const s of t.subscriptions.values()) {
      if (![...s.rules.values()].some((r) => r.matcher(message))) continue;
      const ttl = Math.min(message.timeToLive ?? Infinity, topicTtl, durationMs(s.description.properties.defaultMessageTimeToLive));
      const path = subscriptionPath(t.description.name, s.description.name);
      const [seq] = this.store.enqueue(ns.description.name, [{ entity: path, payload, state: 'active', enqueuedTime: now, visibleAt: now, ...(Number.isFinite(ttl) ? { expiresAt: now + ttl } : {}) }]);
      first ??= seq;
      touched.add(path);
    }
    // No matching subscription: the message is dropped, as on Azure (filteringMessagesBeforePublishing off).
    return first ?? 0;
  }

  /** Locks (peek-lock) or removes (receive-and-delete) up to `max` messages in sequence order. */
  receive(entity: ReceivableEntity, max: number, mode: 'peekLock' | 'receiveAndDelete'): StoredMessage[] {
    const now = this.now();
    return this.store.lockNext({ namespace: entity.namespace, entity: entity.path, max, now, lockedUntil: now + entity.lockDurationMs, remove: mode === 'receiveAndDelete' });
  }

  receiveDeferred(entity: ReceivableEntity, sequenceNumbers: number[], mode: 'peekLock' | 'receiveAndDelete'): StoredMessage[] {
    const now = this.now();
    const found = this.store.lockDeferred({ namespace: entity.namespace, entity: entity.path, sequenceNumbers, now, lockedUntil: now + entity.lockDurationMs, remove: mode === 'receiveAndDelete' });
    if (found.length < sequenceNumbers.length) {
      const missing = sequenceNumbers.filter((s) => !found.some((m) => m.sequenceNumber === s));
      throw new ServiceBusError('MessageNotFound', `Failed to lock one or more specified messages. Either the message is not deferred or it does not exist. Sequence numbers: ${missing.join(', ')}.`);
    }
    return found;
  }

  /** Settles the message holding `lockToken`; throws MessageLockLost when the lock is gone. */
  settle(namespace: string, lockToken: string, settlement: Settlement): void {
    const ns = this.ns(namespace);
    const now = this.now();
    const locked = this.store.findLocked(ns.description.name, lockToken, now);
    if (!locked) throw sbErrors.lockLost();
    const entity = this.settingsOf(ns, locked.entity);
    this.store.transaction(() => {
      switch (settlement.outcome) {
        case 'complete':
          this.store.remove(ns.description.name, locked.sequenceNumber, lockToken);
          break;
        case 'abandon':
          this.release(ns, locked.entity, locked.sequenceNumber, locked.deliveryCount, entity, settlement.properties);
          break;
        case 'defer':
          this.store.unlock(ns.description.name, locked.sequenceNumber, { deliveryCountDelta: 0, state: 'deferred', ...(settlement.properties ? { overrides: settlement.properties } : {}) });
          break;
        case 'deadLetter':
          this.deadLetter(ns, locked.entity, locked.sequenceNumber, {
            ...settlement.properties,
            ...(settlement.reason !== undefined ? { DeadLetterReason: settlement.reason } : {}),
            ...(settlement.description !== undefined ? { DeadLetterErrorDescription: settlement.description } : {}),
          });
          break;
      }
    });
    if (settlement.outcome !== 'complete') this.notify(ns.description.name, locked.entity);
  }

  /** Extends a live lock by the entity's lock duration; returns the new expiry. */
  renewLock(namespace: string, lockToken: string): number {
    const ns = this.ns(namespace);
    const now = this.now();
    const locked = this.store.findLocked(ns.description.name, lockToken, now);
    if (!locked) throw sbErrors.lockLost();
    const until = now + this.settingsOf(ns, locked.entity).lockDurationMs;
    if (!this.store.renewLock(ns.description.name, lockToken, now, until)) throw sbErrors.lockLost();
    return until;
  }

  peek(entity: ReceivableEntity, fromSequenceNumber: number, max: number): StoredMessage[] {
    return this.store.peek(entity.namespace, entity.path, fromSequenceNumber, max);
  }

  /** Schedules messages on a queue or topic; returns their sequence numbers (for cancel). */
  schedule(namespace: string, target: { kind: 'queue' | 'topic'; path: string }, payloads: Buffer[]): number[] {
    return this.send(namespace, target, payloads);
  }

  cancelScheduled(namespace: string, target: { kind: 'queue' | 'topic'; path: string }, sequenceNumbers: number[]): void {
    this.store.cancelScheduled(this.ns(namespace).description.name, target.path, sequenceNumbers);
  }

  /**
   * One pass of the timers: expired locks come back (delivery count + 1, dead-lettered after
   * maxDeliveryCount), due scheduled messages become active (a topic's are fanned out), expired
   * messages are dead-lettered or dropped. Returns how many messages changed.
   */
  sweep(): number {
    const now = this.now();
    let changed = 0;
    const touched = new Set<string>();
    for (const lock of this.store.expiredLocks(now, 1000)) {
      const ns = this.namespaces.get(lock.namespace.toLowerCase());
      if (!ns) continue;
      this.store.transaction(() => this.release(ns, lock.entity, lock.sequenceNumber, lock.deliveryCount, this.settingsOf(ns, lock.entity)));
      touched.add(`${ns.description.name}\n${lock.entity}`);
      changed++;
    }
    for (const due of this.store.dueScheduled(now, 1000)) {
      const ns = this.namespaces.get(due.namespace.toLowerCase());
      if (!ns) continue;
      if (ns.topics.has(due.entity.toLowerCase())) {
        const local = new Set<string>();
        this.store.transaction(() => {
          this.store.remove(ns.description.name, due.message.sequenceNumber);
          this.fanOut(ns, due.entity, due.message.payload, this.reader.describe(due.message.payload), now, local);
        });
        for (const p of local) touched.add(`${ns.description.name}\n${p}`);
      } else {
        this.store.activate(ns.description.name, due.message.sequenceNumber);
        touched.add(`${ns.description.name}\n${due.entity}`);
      }
      changed++;
    }
    for (const expired of this.store.expiredMessages(now, 1000)) {
      const ns = this.namespaces.get(expired.namespace.toLowerCase());
      if (!ns) continue;
      const settings = this.settingsOf(ns, expired.entity);
      this.store.transaction(() => {
        if (settings.deadLetteringOnMessageExpiration && !settings.deadLetter) {
          this.deadLetter(ns, expired.entity, expired.sequenceNumber, { DeadLetterReason: 'TTLExpiredException', DeadLetterErrorDescription: 'The message expired and was dead lettered.' });
        } else this.store.remove(ns.description.name, expired.sequenceNumber);
      });
      changed++;
    }
    for (const key of touched) {
      const [ns, path] = key.split('\n') as [string, string];
      this.notify(ns, path);
    }
    return changed;
  }

  /** Calls `listener` whenever messages may have become available on an entity; returns the unsubscribe. */
  onAvailable(namespace: string, path: string, listener: () => void): () => void {
    const key = `${namespace}\n${path}`.toLowerCase();
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (!set.size) this.listeners.delete(key);
    };
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Group commit: `work` runs with the other work queued in this turn of the event loop, all in
   * one transaction (each in a savepoint of its own, so one failure undoes only its own writes);
   * the promise settles after that transaction committed, so an acknowledgement sent on it is
   * one of committed state. One commit per batch instead of per message or settlement is where
   * the throughput comes from (as the hub's EventLogWriter does for telemetry).
   */
  commitSoon<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve: resolve as (v: unknown) => void, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  /** Sends as `send` does, committed with the other work of this turn. */
  sendSoon(namespace: string, target: { kind: 'queue' | 'topic'; path: string }, payloads: Buffer[]): Promise<number[]> {
    return this.commitSoon(() => this.send(namespace, target, payloads));
  }

  /** Settles as `settle` does, committed with the other work of this turn. */
  settleSoon(namespace: string, lockToken: string, settlement: Settlement): Promise<void> {
    return this.commitSoon(() => this.settle(namespace, lockToken, settlement));
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    const wake = (this.deferredNotify = new Set());
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.store.transaction(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: this.store.transaction(item.work) });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      this.deferredNotify = undefined;
      for (const item of batch) item.reject(error);
      return;
    }
    this.deferredNotify = undefined;
    batch.forEach((item, i) => {
      const o = outcomes[i]!;
      if (o.ok) item.resolve(o.value);
      else item.reject(o.error);
    });
    for (const key of wake) {
      const [ns, path] = key.split('\n') as [string, string];
      this.notify(ns, path);
    }
  }

  private notify(namespace: string, path: string): void {
    if (this.deferredNotify) {
      this.deferredNotify.add(`${namespace}\n${path}`);
      return;
    }
    for (const l of [...(this.listeners.get(`${namespace}\n${path}`.toLowerCase()) ?? [])]) l();
    // A dead-letter subqueue's receivers listen on its own path; nothing else to wake.
  }

  private release(ns: NamespaceState, entity: string, sequenceNumber: number, deliveryCount: number, settings: ReceivableEntity, properties?: Record<string, unknown>): void {
    if (!settings.deadLetter && deliveryCount + 1 >= settings.maxDeliveryCount) {
      this.store.unlock(ns.description.name, sequenceNumber, { deliveryCountDelta: 1 });
      this.deadLetter(ns, entity, sequenceNumber, {
        ...properties,
        DeadLetterReason: 'MaxDeliveryCountExceeded',
        DeadLetterErrorDescription: `Message could not be consumed after ${settings.maxDeliveryCount} delivery attempts.`,
      });
    } else this.store.unlock(ns.description.name, sequenceNumber, { deliveryCountDelta: 1, ...(properties ? { overrides: properties } : {}) });
  }

  private deadLetter(ns: NamespaceState, entity: string, sequenceNumber: number, overrides: Record<string, unknown>): void {
    if (entity.toLowerCase().endsWith('/' + DEAD_LETTER_QUEUE.toLowerCase())) {
      // Already dead-lettered: Azure keeps it there.
      this.store.unlock(ns.description.name, sequenceNumber, { deliveryCountDelta: 0, overrides });
      return;
    }
    const to = `${entity}/${DEAD_LETTER_QUEUE}`;
    this.store.move(ns.description.name, sequenceNumber, to, overrides, entity);
    this.notify(ns.description.name, to);
  }

  private settingsOf(ns: NamespaceState, path: string): ReceivableEntity {
    try {
      return this.receivable(ns.description.name, path);
    } catch {
      // The entity was deleted under a lock: nothing to dead-letter into; let it go.
      return { namespace: ns.description.name, path, root: path.split('/')[0]!, lockDurationMs: 60_000, maxDeliveryCount: Infinity, deadLetteringOnMessageExpiration: false, deadLetter: true, requiresSession: false };
    }
  }

  private defaultTtl(ns: NamespaceState, path: string): number {
    const q = ns.queues.get(path.toLowerCase());
    if (q) return durationMs(q.properties.defaultMessageTimeToLive);
    const t = ns.topics.get(path.toLowerCase());
    return t ? durationMs(t.description.properties.defaultMessageTimeToLive) : Infinity;
  }

  private dropRulesOf(ns: NamespaceState, entity: string): void {
    for (const [key, r] of ns.authorizationRules) if (r.entity.toLowerCase() === entity.toLowerCase()) ns.authorizationRules.delete(key);
  }

  private ns(name: string): NamespaceState {
    const ns = this.namespaces.get(name.toLowerCase());
    if (!ns) throw new ServiceBusError('MessagingEntityNotFound', `The namespace '${name}' could not be found.`);
    return ns;
  }
  private topic(namespace: string, topic: string): TopicState {
    const t = this.ns(namespace).topics.get(topic.toLowerCase());
    if (!t) throw sbErrors.entityNotFound(namespace, topic);
    return t;
  }
  private subscription(namespace: string, topic: string, subscription: string): SubscriptionState {
    const s = this.topic(namespace, topic).subscriptions.get(subscription.toLowerCase());
    if (!s) throw sbErrors.entityNotFound(namespace, subscriptionPath(topic, subscription));
    return s;
  }

  private load(records: ServiceBusRecord[]): void {
    const order = ['namespace', 'queue', 'topic', 'subscription', 'rule', 'authorizationRule'];
    for (const r of [...records].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))) {
      const doc = JSON.parse(r.doc);
      if (r.kind === 'namespace') {
        this.namespaces.set(r.namespace.toLowerCase(), { description: doc, queues: new Map(), topics: new Map(), authorizationRules: new Map() });
        continue;
      }
      const ns = this.namespaces.get(r.namespace.toLowerCase());
      if (!ns) continue;
      if (r.kind === 'queue') ns.queues.set(doc.name.toLowerCase(), doc);
      else if (r.kind === 'topic') ns.topics.set(doc.name.toLowerCase(), { description: doc, subscriptions: new Map() });
      else if (r.kind === 'subscription') ns.topics.get(doc.topic.toLowerCase())?.subscriptions.set(doc.name.toLowerCase(), { description: doc, rules: new Map() });
      else if (r.kind === 'rule') {
        ns.topics.get(doc.topic.toLowerCase())?.subscriptions.get(doc.subscription.toLowerCase())?.rules.set(doc.name.toLowerCase(), { description: doc, matcher: ruleMatcher(doc.properties) });
      } else if (r.kind === 'authorizationRule') ns.authorizationRules.set(`${doc.entity.toLowerCase()}#${doc.rule.name.toLowerCase()}`, doc);
    }
  }
}

export function subscriptionPath(topic: string, subscription: string): string {
  return `${topic}/Subscriptions/${subscription}`;
}
function rulePath(topic: string, subscription: string, rule: string): string {
  return `${subscriptionPath(topic, subscription)}/Rules/${rule}`;
}

function receiverSettings(p: QueueProperties | SubscriptionProperties) {
  return {
    lockDurationMs: durationMs(p.lockDuration),
    maxDeliveryCount: p.maxDeliveryCount,
    deadLetteringOnMessageExpiration: p.deadLetteringOnMessageExpiration,
    requiresSession: p.requiresSession,
  };
}

function checkEntityName(name: string, what: string): void {
  if (typeof name !== 'string' || !ENTITY_NAME.test(name) || name.endsWith('.') || /\/|\$/.test(name)) {
    throw sbErrors.argument(`The ${what} name '${name}' is invalid: up to 260 letters, digits, '.', '_' and '-', starting with a letter or digit.`);
  }
}

function checkReceiverProperties(p: QueueProperties | SubscriptionProperties): void {
  const lock = durationMs(p.lockDuration, 'lockDuration');
  if (lock > 5 * 60_000) throw sbErrors.argument(`'lockDuration' must be at most 5 minutes (PT5M), not '${p.lockDuration}'.`);
  if (lock <= 0) throw sbErrors.argument(`'lockDuration' must be positive.`);
  durationMs(p.defaultMessageTimeToLive, 'defaultMessageTimeToLive');
  if (!Number.isInteger(p.maxDeliveryCount) || p.maxDeliveryCount < 1) throw sbErrors.argument(`'maxDeliveryCount' must be a positive integer.`);
  if ('maxSizeInMegabytes' in p && (!Number.isInteger(p.maxSizeInMegabytes) || p.maxSizeInMegabytes < 1)) throw sbErrors.argument(`'maxSizeInMegabytes' must be a positive integer.`);
  if (p.requiresSession) throw new ServiceBusError('SessionsNotSupported', 'Sessions (requiresSession) are not supported by Fleethub yet.');
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
