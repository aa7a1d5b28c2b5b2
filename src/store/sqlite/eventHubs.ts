import type { Db } from './database.js';
import type { EventHubsStore } from '../eventHubs.js';
import type { AuthorizationRule, ConsumerGroupDescription, EventHubDescription, NamespaceDescription } from '../../namespaces/eventHubs/types.js';

/** Local Event Hubs namespaces' tables (migration '600-eventhubs-namespaces'); documents as JSON. */
export const eventHubsMigrationSql = `
  CREATE TABLE eventhubs_namespaces (
    name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
    doc TEXT NOT NULL
  );
  CREATE TABLE eventhubs_entities (
    namespace TEXT NOT NULL COLLATE NOCASE REFERENCES eventhubs_namespaces(name) ON DELETE CASCADE,
    name TEXT NOT NULL COLLATE NOCASE,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
  );
  CREATE TABLE eventhubs_consumer_groups (
    namespace TEXT NOT NULL COLLATE NOCASE,
    eventhub TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, eventhub, name),
    FOREIGN KEY (namespace, eventhub) REFERENCES eventhubs_entities(namespace, name) ON DELETE CASCADE
  );
  CREATE TABLE eventhubs_authorization_rules (
    namespace TEXT NOT NULL COLLATE NOCASE REFERENCES eventhubs_namespaces(name) ON DELETE CASCADE,
    eventhub TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    doc TEXT NOT NULL,
    PRIMARY KEY (namespace, eventhub, name)
  );
  CREATE INDEX eventhubs_rules_by_name ON eventhubs_authorization_rules (name);`;

export class SqliteEventHubsStore implements EventHubsStore {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      namespaces: db.prepare<[], { doc: string }>('SELECT doc FROM eventhubs_namespaces ORDER BY name'),
      namespace: db.prepare<[string], { doc: string }>('SELECT doc FROM eventhubs_namespaces WHERE name = ?'),
      insertNamespace: db.prepare<[string, string]>('INSERT OR IGNORE INTO eventhubs_namespaces (name, doc) VALUES (?, ?)'),
      deleteNamespace: db.prepare<[string]>('DELETE FROM eventhubs_namespaces WHERE name = ?'),
      hubs: db.prepare<[string], { doc: string }>('SELECT doc FROM eventhubs_entities WHERE namespace = ? ORDER BY name'),
      hub: db.prepare<[string, string], { doc: string }>('SELECT doc FROM eventhubs_entities WHERE namespace = ? AND name = ?'),
      putHub: db.prepare<[string, string, string]>('INSERT INTO eventhubs_entities (namespace, name, doc) VALUES (?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET doc = excluded.doc'),
      deleteHub: db.prepare<[string, string]>('DELETE FROM eventhubs_entities WHERE namespace = ? AND name = ?'),
      deleteHubRules: db.prepare<[string, string]>('DELETE FROM eventhubs_authorization_rules WHERE namespace = ? AND eventhub = ?'),
      groups: db.prepare<[string, string], { doc: string }>('SELECT doc FROM eventhubs_consumer_groups WHERE namespace = ? AND eventhub = ? ORDER BY rowid'),
      putGroup: db.prepare<[string, string, string, string]>(
        'INSERT INTO eventhubs_consumer_groups (namespace, eventhub, name, doc) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, eventhub, name) DO UPDATE SET doc = excluded.doc',
      ),
      deleteGroup: db.prepare<[string, string, string]>('DELETE FROM eventhubs_consumer_groups WHERE namespace = ? AND eventhub = ? AND name = ?'),
      rules: db.prepare<[string, string], { doc: string }>('SELECT doc FROM eventhubs_authorization_rules WHERE namespace = ? AND eventhub = ? ORDER BY rowid'),
      rulesByName: db.prepare<[string], { namespace: string; doc: string }>('SELECT namespace, doc FROM eventhubs_authorization_rules WHERE name = ?'),
      putRule: db.prepare<[string, string, string, string]>(
        'INSERT INTO eventhubs_authorization_rules (namespace, eventhub, name, doc) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, eventhub, name) DO UPDATE SET doc = excluded.doc',
      ),
      deleteRule: db.prepare<[string, string, string]>('DELETE FROM eventhubs_authorization_rules WHERE namespace = ? AND eventhub = ? AND name = ?'),
    };
  }

  listNamespaces(): NamespaceDescription[] {
    return this.s.namespaces.all().map((r) => JSON.parse(r.doc) as NamespaceDescription);
  }

  getNamespace(name: string): NamespaceDescription | undefined {
    const r = this.s.namespace.get(name);
    return r ? (JSON.parse(r.doc) as NamespaceDescription) : undefined;
  }

  insertNamespace(ns: NamespaceDescription): boolean {
    return this.s.insertNamespace.run(ns.name, JSON.stringify(ns)).changes === 1;
  }

  deleteNamespace(name: string): EventHubDescription[] {
    return this.db.transaction(() => {
      const hubs = this.listEventHubs(name);
      this.s.deleteNamespace.run(name);
      return hubs;
    })();
  }

  listEventHubs(namespace: string): EventHubDescription[] {
    return this.s.hubs.all(namespace).map((r) => JSON.parse(r.doc) as EventHubDescription);
  }

  getEventHub(namespace: string, name: string): EventHubDescription | undefined {
    const r = this.s.hub.get(namespace, name);
    return r ? (JSON.parse(r.doc) as EventHubDescription) : undefined;
  }

  putEventHub(hub: EventHubDescription): void {
    this.s.putHub.run(hub.namespace, hub.name, JSON.stringify(hub));
  }

  deleteEventHub(namespace: string, name: string): boolean {
    return this.db.transaction(() => {
      this.s.deleteHubRules.run(namespace, name);
      return this.s.deleteHub.run(namespace, name).changes === 1;
    })();
  }

  listConsumerGroups(namespace: string, eventHub: string): ConsumerGroupDescription[] {
    return this.s.groups.all(namespace, eventHub).map((r) => JSON.parse(r.doc) as ConsumerGroupDescription);
  }

  putConsumerGroup(namespace: string, eventHub: string, group: ConsumerGroupDescription): void {
    this.s.putGroup.run(namespace, eventHub, group.name, JSON.stringify(group));
  }

  deleteConsumerGroup(namespace: string, eventHub: string, name: string): boolean {
    return this.s.deleteGroup.run(namespace, eventHub, name).changes === 1;
  }

  listAuthorizationRules(namespace: string, eventHub?: string): AuthorizationRule[] {
    return this.s.rules.all(namespace, eventHub ?? '').map((r) => JSON.parse(r.doc) as AuthorizationRule);
  }

  findAuthorizationRules(name: string): (AuthorizationRule & { namespace: string })[] {
    return this.s.rulesByName.all(name).map((r) => ({ ...(JSON.parse(r.doc) as AuthorizationRule), namespace: r.namespace }));
  }

  putAuthorizationRule(namespace: string, rule: AuthorizationRule): void {
    this.s.putRule.run(namespace, rule.eventHub ?? '', rule.name, JSON.stringify(rule));
  }

  deleteAuthorizationRule(namespace: string, eventHub: string | undefined, name: string): boolean {
    return this.s.deleteRule.run(namespace, eventHub ?? '', name).changes === 1;
  }
}
