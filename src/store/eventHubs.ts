import type { AuthorizationRule, ConsumerGroupDescription, EventHubDescription, NamespaceDescription } from '../namespaces/eventHubs/types.js';

/**
 * Local Event Hubs namespaces' metadata: namespaces, event hubs, consumer groups and
 * authorization rules (their events are in the event log). Names compare case-insensitively.
 */
export interface EventHubsStore {
  listNamespaces(): NamespaceDescription[];
  getNamespace(name: string): NamespaceDescription | undefined;
  /** False when it exists already. */
  insertNamespace(ns: NamespaceDescription): boolean;
  /** Deletes the namespace with everything in it; returns the event hubs it held. */
  deleteNamespace(name: string): EventHubDescription[];

  listEventHubs(namespace: string): EventHubDescription[];
  getEventHub(namespace: string, name: string): EventHubDescription | undefined;
  putEventHub(hub: EventHubDescription): void;
  /** Deletes the event hub with its consumer groups and rules. */
  deleteEventHub(namespace: string, name: string): boolean;

  listConsumerGroups(namespace: string, eventHub: string): ConsumerGroupDescription[];
  putConsumerGroup(namespace: string, eventHub: string, group: ConsumerGroupDescription): void;
  deleteConsumerGroup(namespace: string, eventHub: string, name: string): boolean;

  /** Namespace rules when `eventHub` is undefined, else that event hub's. */
  listAuthorizationRules(namespace: string, eventHub?: string): AuthorizationRule[];
  /** Every rule of every namespace and event hub named `name` (to find the key that signed a token). */
  findAuthorizationRules(name: string): (AuthorizationRule & { namespace: string })[];
  putAuthorizationRule(namespace: string, rule: AuthorizationRule): void;
  deleteAuthorizationRule(namespace: string, eventHub: string | undefined, name: string): boolean;
}
