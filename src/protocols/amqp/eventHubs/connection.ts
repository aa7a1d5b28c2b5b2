import { HubError } from '../../../core/errors.js';
import { parseSasToken } from '../../../core/sas.js';
import type { EventHubsGrant, EventHubsNamespaces } from '../../../namespaces/eventHubs/namespaces.js';
import type { AccessRight } from '../../../namespaces/eventHubs/types.js';
import type { ExpiryHolder } from '../eventhub/access.js';
import type { CbsTokenFamily } from '../cbs.js';
import type { ClientConnection } from '../link.js';

/**
 * The namespace host names Fleethub answers to: `{namespace}.servicebus.{anything}`, e.g.
 * `telemetry.servicebus.localhost` (Event Hubs namespaces share Service Bus's host names on Azure;
 * the same rule as the Service Bus family's).
 */
const NAMESPACE_HOST = /^([A-Za-z][A-Za-z0-9-]*)\.servicebus\./i;

interface ConnectionState {
  namespace: string;
  /** Grants by the audience they were put for (lower case); a later put renews. */
  grants: Map<string, EventHubsGrant>;
  /** Links to end when their grant expires. */
  holders: Map<ExpiryHolder, NodeJS.Timeout>;
}

/**
 * Which Event Hubs namespace a connection talks to, and what its tokens grant. A connection
 * belongs to a namespace when its AMQP open frame's hostname (or a token's audience host) is
 * `{namespace}.servicebus.…`, or else when the first token put on `$cbs` was signed by one of
 * that namespace's rules (namespace or event hub level): keys are random per rule, so the
 * signature picks the namespace, and emulator-style `Endpoint=sb://localhost;…;
 * UseDevelopmentEmulator=true` connection strings reach the right one. Tokens no namespace
 * signed are left to the other families and the hub.
 */
export class EventHubsConnections implements CbsTokenFamily {
  private readonly states = new WeakMap<ClientConnection, ConnectionState>();

  constructor(private readonly namespaces: EventHubsNamespaces) {}

  namespaceOf(connection: ClientConnection): string | undefined {
    return (this.states.get(connection) ?? this.bindByHost(connection))?.namespace;
  }

  async put(connection: ClientConnection, audience: string, token: string): Promise<boolean> {
    const state = this.states.get(connection) ?? this.bindByHost(connection, audience);
    const sas = parseSasToken(token);
    if (!sas) {
      if (state) throw new HubError('IotHubUnauthorizedAccess', 'InvalidSignature: The token is not a SharedAccessSignature.');
      return false;
    }
    let grant: EventHubsGrant;
    try {
      grant = this.namespaces.verifySas(sas, state?.namespace);
    } catch (e) {
      if (!(e instanceof HubError) || !state) return false;
      throw e;
    }
    const bound = state ?? this.bind(connection, grant.namespace);
    bound.grants.set(audience.toLowerCase(), grant);
    return true;
  }

  /**
   * Resolves when an unexpired token of the connection allows `right` on `eventHub`; throws
   * IotHubUnauthorizedAccess (the last refusal) otherwise. `holder` is ended when that token expires.
   */
  authorize(connection: ClientConnection, right: AccessRight, eventHub: string, holder?: ExpiryHolder): void {
    const state = this.states.get(connection);
    let refusal: unknown = new HubError('IotHubUnauthorizedAccess', `Unauthorized access. '${right}' claim(s) are required to perform this operation: no token has been put on $cbs for '${eventHub}'.`);
    for (const grant of state?.grants.values() ?? []) {
      try {
        this.namespaces.checkGrant(grant, right, eventHub);
      } catch (e) {
        refusal = e;
        continue;
      }
      if (holder && state) {
        const timer = setTimeout(() => holder.expire('ExpiredToken: The token that authorized this link expired.'), Math.min(grant.expiresAt - Date.now(), 2 ** 31 - 1));
        timer.unref();
        state.holders.set(holder, timer);
      }
      return;
    }
    throw refusal;
  }

  release(connection: ClientConnection, holder: ExpiryHolder): void {
    const state = this.states.get(connection);
    const timer = state?.holders.get(holder);
    if (timer) clearTimeout(timer);
    state?.holders.delete(holder);
  }

  private bind(connection: ClientConnection, namespace: string): ConnectionState {
    const state: ConnectionState = { namespace, grants: new Map(), holders: new Map() };
    this.states.set(connection, state);
    connection.onClose(() => {
      for (const timer of state.holders.values()) clearTimeout(timer);
      state.holders.clear();
    });
    return state;
  }

  private bindByHost(connection: ClientConnection, audience?: string): ConnectionState | undefined {
    const remote = (connection.rhea as unknown as { remote?: { open?: { hostname?: string } } }).remote;
    const hosts = [remote?.open?.hostname, audience ? /^[a-z]+:\/\/([^/:]+)/i.exec(audience)?.[1] : undefined];
    for (const host of hosts) {
      const m = host ? NAMESPACE_HOST.exec(host) : null;
      const ns = m ? this.namespaces.getNamespace(m[1]!) : undefined;
      if (ns) return this.bind(connection, ns.name);
    }
    return undefined;
  }
}
