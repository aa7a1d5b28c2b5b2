import type { BuiltInEndpoint } from '../../hub/eventhub/builtInEndpoint.js';
import { cbsRoutes } from './cbs.js';
import { managementRoutes } from './eventhub/management.js';
import { partitionReceiverRoute } from './eventhub/partitionReceiver.js';
import type { LinkRoute } from './link.js';

export interface AmqpServices {
  eventHub?: BuiltInEndpoint;
}

/** Every AMQP link family the hub serves, in matching order. */
export function amqpRoutes(services: AmqpServices): LinkRoute[] {
  return [
    ...cbsRoutes,
    ...(services.eventHub ? [partitionReceiverRoute(services.eventHub), ...managementRoutes(services.eventHub)] : []),
  ];
}
