import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ServiceBusNamespaceConfig } from '../../config/index.js';
import { amqpMessageReader } from '../../protocols/amqp/serviceBus/codec.js';
import { serviceBusAmqp, type ServiceBusAmqp } from '../../protocols/amqp/serviceBus/index.js';
import { openSqliteServiceBusStore } from '../../store/sqlite/serviceBus.js';
import { ServiceBusNamespaces } from './namespaces.js';
import { applyServiceBusConfig } from './seed.js';
import type { NamespaceAzureAd } from '../azureAd.js';

export interface ServiceBusArea {
  namespaces: ServiceBusNamespaces;
  /**
   * The ARM id of a namespace (`/subscriptions/…/providers/Microsoft.ServiceBus/namespaces/{name}`),
   * or of an entity by its path: a queue `q` (`…/queues/q`), a topic `t` (`…/topics/t`), a
   * subscription `t/Subscriptions/s` (`…/topics/t/subscriptions/s`): the scopes role assignments
   * name. Undefined for a namespace the control plane has no record of.
   */
  resourceIdOf(namespace: string, entityPath?: string): string | undefined;
  amqp: ServiceBusAmqp;
  /** `Endpoint=sb://…;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=…` per namespace, for `endpoint` (a host). */
  connectionStrings(endpointHost: string): { namespace: string; connectionString: string }[];
  close(): void;
}

/**
 * Local Service Bus namespaces: the store (`<dataDir>/servicebus.db`), the namespace service
 * with the configured namespaces applied, the timer for locks, schedules and expiry, and the
 * AMQP link families the hub's endpoint serves.
 * `azureAd`: Azure AD tokens and data roles on the namespaces' links (besides SAS).
 */
export function serviceBusArea(deps: {
  dataDir: string;
  /** The configured namespaces to seed (those the control plane has no record of yet). */
  namespaces: ServiceBusNamespaceConfig[];
  timerMs: number;
  logger: Logger;
  /** The namespace's ARM id, from the control plane. */
  namespaceResourceId?: (namespace: string) => string | undefined;
  azureAd?: NamespaceAzureAd;
}): ServiceBusArea {
  const store = openSqliteServiceBusStore(join(deps.dataDir, 'servicebus.db'), randomUUID);
  try {
    const namespaces = new ServiceBusNamespaces(store, amqpMessageReader);
    applyServiceBusConfig(namespaces, deps.namespaces);
    const timer = setInterval(() => {
      try {
        namespaces.sweep();
      } catch (e) {
        deps.logger.warn({ err: e }, 'Service Bus timer failed');
      }
    }, deps.timerMs);
    timer.unref();
    return {
      namespaces,
      resourceIdOf: (namespace, entityPath) => {
        const id = deps.namespaceResourceId?.(namespace);
        if (!id || !entityPath) return id;
        const [entity, sub, subscription] = entityPath.split('/');
        if (sub?.toLowerCase() === 'subscriptions' && subscription) return `${id}/topics/${entity}/subscriptions/${subscription}`;
        return namespaces.getNamespace(namespace) && namespaces.getTopic(namespace, entity!) ? `${id}/topics/${entity}` : `${id}/queues/${entity}`;
      },
      amqp: serviceBusAmqp(namespaces, deps.azureAd),
      connectionStrings: (host) =>
        namespaces.listNamespaces().map((n) => {
          const rule = namespaces.listAuthorizationRules(n.name).find((r) => r.name === 'RootManageSharedAccessKey') ?? namespaces.listAuthorizationRules(n.name)[0];
          return { namespace: n.name, connectionString: `Endpoint=sb://${host}/;SharedAccessKeyName=${rule?.name};SharedAccessKey=${rule?.primaryKey}` };
        }),
      close() {
        clearInterval(timer);
        store.close();
      },
    };
  } catch (e) {
    store.close();
    throw e;
  }
}
