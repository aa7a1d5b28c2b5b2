import type { EventHubsNamespaces } from '../../../namespaces/eventHubs/namespaces.js';
import type { NamespaceAzureAd } from '../../../namespaces/azureAd.js';
import type { EventHubAccess } from '../eventhub/access.js';
import { managementRoutes } from '../eventhub/management.js';
import { partitionReceiverRoute } from '../eventhub/partitionReceiver.js';
import type { CbsTokenFamily } from '../cbs.js';
import type { LinkRoute } from '../link.js';
import { EventHubsConnections } from './connection.js';
import { eventHubsSendRoute } from './send.js';

export interface EventHubsAmqp {
  /** Offered every token put on `$cbs` before the hub's authorizer. */
  cbs: CbsTokenFamily;
  /** Link families; they take links only on connections that belong to a namespace. */
  routes: LinkRoute[];
}

/**
 * Local Event Hubs namespaces on the hub's AMQP endpoint: producers' send links, and the same
 * partition receivers and $management node as the built-in endpoint's, on the connection's
 * namespace's event hubs, authorized by its SAS rules, or by Azure AD tokens and data roles when
 * `azureAd` is given.
 */
export function eventHubsAmqp(namespaces: EventHubsNamespaces, azureAd?: NamespaceAzureAd): EventHubsAmqp {
  const connections = new EventHubsConnections(namespaces, azureAd);
  const access: EventHubAccess = {
    accepts: (c) => connections.namespaceOf(c) !== undefined,
    find: (c, name) => {
      const ns = connections.namespaceOf(c);
      return ns ? namespaces.served(ns, name) : undefined;
    },
    authorize: async (c, right, entity, _path, holder) => connections.authorizeNow(c, right, entity, holder),
    release: (c, holder) => connections.release(c, holder),
    putRequestToken: async (c, token) => {
      await connections.put(c, `$management-request`, token).catch(() => false);
    },
  };
  return {
    cbs: connections,
    routes: [...managementRoutes(access), partitionReceiverRoute(access), eventHubsSendRoute(namespaces, connections)],
  };
}
