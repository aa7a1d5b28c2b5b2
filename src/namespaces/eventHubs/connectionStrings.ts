import type { EventHubsNamespaces } from './namespaces.js';

/** Connection strings of each namespace (RootManageSharedAccessKey): TLS on the hub's AMQP port, and plain on loopback (emulator style). */
export function eventHubsConnectionStrings(
  namespaces: EventHubsNamespaces,
  endpoint: { hostName: string; amqpPort: number; emulatorHost: string; emulatorPort: number },
): { name: string; eventHubs: string[]; connectionString: string; emulatorConnectionString: string }[] {
  return namespaces.listNamespaces().map((n) => {
    const rules = namespaces.listAuthorizationRules(n.name);
    const rule = rules.find((r) => r.name === 'RootManageSharedAccessKey') ?? rules[0];
    const key = rule ? `SharedAccessKeyName=${rule.name};SharedAccessKey=${rule.primaryKey}` : '';
    return {
      name: n.name,
      eventHubs: namespaces.listEventHubs(n.name).map((h) => h.name),
      connectionString: `Endpoint=sb://${endpoint.hostName}${endpoint.amqpPort === 5671 ? '' : `:${endpoint.amqpPort}`}/;${key}`,
      emulatorConnectionString: endpoint.emulatorPort
        ? `Endpoint=sb://${endpoint.emulatorHost}${endpoint.emulatorPort === 5672 ? '' : `:${endpoint.emulatorPort}`}/;${key};UseDevelopmentEmulator=true`
        : '',
    };
  });
}
