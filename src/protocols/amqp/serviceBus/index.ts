import type { ServiceBusNamespaces } from '../../../namespaces/serviceBus/namespaces.js';
import type { NamespaceAzureAd } from '../../../namespaces/azureAd.js';
import type { CbsTokenFamily } from '../cbs.js';
import type { LinkRoute } from '../link.js';
import { ServiceBusConnections } from './connection.js';
import { serviceBusReceiveRoute, serviceBusSendRoute } from './links.js';
import { serviceBusManagementRoutes } from './management.js';

export interface ServiceBusAmqp {
  /** Offered every token put on `$cbs` before the hub's authorizer. */
  cbs: CbsTokenFamily;
  /** Link families; they take links only on connections that belong to a namespace. */
  routes: LinkRoute[];
}

/** Local Service Bus namespaces on the hub's AMQP endpoint: SAS, and Azure AD tokens with data roles when `azureAd` is given. */
export function serviceBusAmqp(namespaces: ServiceBusNamespaces, azureAd?: NamespaceAzureAd): ServiceBusAmqp {
  const connections = new ServiceBusConnections(namespaces, azureAd);
  return {
    cbs: connections,
    routes: [...serviceBusManagementRoutes(namespaces, connections), serviceBusSendRoute(namespaces, connections), serviceBusReceiveRoute(namespaces, connections)],
  };
}
