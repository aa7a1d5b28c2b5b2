import type { Logger } from 'pino';
import type { EventHubsNamespaceConfig } from '../../config/index.js';
import { eventHubsAmqp, type EventHubsAmqp } from '../../protocols/amqp/eventHubs/index.js';
import type { EventLogs } from '../../store/eventLog.js';
import type { EventHubsStore } from '../../store/eventHubs.js';
import { EventHubsNamespaces } from './namespaces.js';
import type { AccessRight } from './types.js';
import type { NamespaceAzureAd } from '../azureAd.js';

export interface EventHubsArea {
  namespaces: EventHubsNamespaces;
  /**
   * The ARM id of a namespace (`/subscriptions/…/providers/Microsoft.EventHub/namespaces/{name}`), or
   * of one of its event hubs (`…/eventhubs/{eventHub}`): the scopes role assignments name. Undefined
   * for a namespace the control plane has no record of.
   */
  resourceIdOf(namespace: string, eventHub?: string): string | undefined;
  amqp: EventHubsAmqp;
  close(): void;
}

/**
 * Creates (or updates) the configured namespaces, event hubs, consumer groups and rules; nothing
 * configured is deleted, and keys, once made, are kept.
 */
export async function applyEventHubsConfig(namespaces: EventHubsNamespaces, config: EventHubsNamespaceConfig[]): Promise<void> {
  for (const n of config) {
    namespaces.createNamespace(n.name);
    for (const r of n.authorizationRules ?? []) namespaces.putAuthorizationRule(n.name, undefined, r.name, r.rights as AccessRight[]);
    for (const hub of n.eventHubs ?? []) {
      await namespaces.putEventHub(n.name, hub.name, {
        ...(hub.partitionCount !== undefined ? { partitionCount: hub.partitionCount } : {}),
        ...(hub.messageRetentionInDays !== undefined ? { messageRetentionInDays: hub.messageRetentionInDays } : {}),
      });
      for (const g of hub.consumerGroups ?? []) namespaces.putConsumerGroup(n.name, hub.name, g);
      for (const r of hub.authorizationRules ?? []) namespaces.putAuthorizationRule(n.name, hub.name, r.name, r.rights as AccessRight[]);
    }
  }
}

/**
 * Local Event Hubs namespaces: the namespace service over the hub's store and event log (one
 * engine with the built-in endpoint's), the configured namespaces applied, retention swept
 * periodically, and the AMQP link families the hub's endpoint serves.
 * `azureAd`: Azure AD tokens and data roles on the namespaces' links (besides SAS).
 */
export async function eventHubsArea(deps: {
  store: EventHubsStore;
  logs: EventLogs;
  /** The configured namespaces to seed (those the control plane has no record of yet). */
  namespaces: EventHubsNamespaceConfig[];
  logger: Logger;
  retentionSweepMs?: number;
  /** The namespace's ARM id, from the control plane. */
  namespaceResourceId?: (namespace: string) => string | undefined;
  azureAd?: NamespaceAzureAd;
}): Promise<EventHubsArea> {
  const namespaces = new EventHubsNamespaces(deps.store, deps.logs);
  await applyEventHubsConfig(namespaces, deps.namespaces);
  const sweep = () =>
    namespaces.applyRetention().catch((e: unknown) => {
      deps.logger.warn({ err: e }, 'Event Hubs namespaces retention failed');
      return 0;
    });
  const timer = setInterval(() => void sweep(), deps.retentionSweepMs ?? 60_000);
  timer.unref();
  void sweep();
  return {
    namespaces,
    resourceIdOf: (namespace, eventHub) => {
      const id = deps.namespaceResourceId?.(namespace);
      const hub = id && eventHub !== undefined ? namespaces.getEventHub(namespace, eventHub) : undefined;
      return !id || eventHub === undefined ? id : `${id}/eventhubs/${hub?.name ?? eventHub}`;
    },
    amqp: eventHubsAmqp(namespaces, deps.azureAd),
    close: () => clearInterval(timer),
  };
}

