import type { EventHubsNamespaces } from './namespaces.js';
import { sbEndpoint } from '../../core/sbEndpoint.js';

/** Where a namespace is reached: TLS on the hub's AMQP port, and plain on loopback (emulator style; port 0 = none). */
export interface NamespaceEndpoint {
  hostName: string;
  amqpPort: number;
  emulatorHost: string;
  emulatorPort: number;
}

/**
 * A namespace's connection strings with its RootManageSharedAccessKey rule (or its first rule), for
 * Event Hubs and Service Bus namespaces alike.
 */
export function rootConnectionStrings(
  rules: { name: string; primaryKey: string }[],
  endpoint: NamespaceEndpoint,
): { connectionString: string; emulatorConnectionString: string } {
  const rule = rules.find((r) => r.name === 'RootManageSharedAccessKey') ?? rules[0];
  const key = rule ? `SharedAccessKeyName=${rule.name};SharedAccessKey=${rule.primaryKey}` : '';
  return {
    connectionString: `Endpoint=${sbEndpoint(endpoint.hostName, endpoint.amqpPort)};${key}`,
    emulatorConnectionString: endpoint.emulatorPort
      ? `Endpoint=${sbEndpoint(endpoint.emulatorHost, endpoint.emulatorPort, 5672)};${key};UseDevelopmentEmulator=true`
      : '',
  };
}

/** Connection strings of each Event Hubs namespace, with its event hubs' names. */
export function eventHubsConnectionStrings(
  namespaces: EventHubsNamespaces,
  endpoint: NamespaceEndpoint,
): { name: string; eventHubs: string[]; connectionString: string; emulatorConnectionString: string }[] {
  return namespaces.listNamespaces().map((n) => ({
    name: n.name,
    eventHubs: namespaces.listEventHubs(n.name).map((h) => h.name),
    ...rootConnectionStrings(namespaces.listAuthorizationRules(n.name), endpoint),
  }));
}
