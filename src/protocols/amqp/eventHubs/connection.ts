import { HubError } from '../../../core/errors.js';
import { parseSasToken } from '../../../core/sas.js';
import type { EventHubsGrant, EventHubsNamespaces } from '../../../namespaces/eventHubs/namespaces.js';
import type { AccessRight } from '../../../namespaces/eventHubs/types.js';
import type { ExpiryHolder } from '../eventhub/access.js';
import type { CbsTokenFamily } from '../cbs.js';
import type { ClientConnection } from '../link.js';
import { looksLikeJwt } from '../../../hub/auth/bearer.js';
import { claimRequired, EVENT_HUBS_DATA_ACTIONS, type NamespaceAzureAd } from '../../../namespaces/azureAd.js';
import { AzureAdClaims } from '../azureAdClaims.js';
import { latestExpiry, SasLinks } from '../sasLinks.js';

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
  /** Links to end when no token allows them any more. */
  links: SasLinks;
  /** Azure AD tokens (`jwt`) put on the connection, when the namespaces take them. */
  aad?: AzureAdClaims;
}

/**
 * Which Event Hubs namespace a connection talks to, and what its tokens grant. A connection
 * belongs to a namespace when its AMQP open frame's hostname (or a token's audience host) is
 * `{namespace}.servicebus.…`, or else when the first token put on `$cbs` was signed by one of
 * that namespace's rules (namespace or event hub level): keys are random per rule, so the
 * signature picks the namespace, and emulator-style `Endpoint=sb://localhost;…;
 * UseDevelopmentEmulator=true` connection strings reach the right one. Tokens no namespace
 * signed are left to the other families and the hub. Azure AD tokens (`type` `jwt`) are taken on
 * connections bound to a namespace, and authorized by the data roles at the event hub's scope.
 */
export class EventHubsConnections implements CbsTokenFamily {
  private readonly states = new WeakMap<ClientConnection, ConnectionState>();

  constructor(
    private readonly namespaces: EventHubsNamespaces,
    private readonly azureAd?: NamespaceAzureAd,
  ) {}

  namespaceOf(connection: ClientConnection): string | undefined {
    return (this.states.get(connection) ?? this.bindByHost(connection))?.namespace;
  }

  async put(connection: ClientConnection, audience: string, token: string): Promise<boolean> {
    const state = this.states.get(connection) ?? this.bindByHost(connection, audience);
    if (state && this.azureAd && looksLikeJwt(token)) {
      await this.azureAdOf(state).put(audience, token);
      return true;
    }
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
   * Returns when an unexpired token of the connection allows `right` on `eventHub` (for each
   * message on an authorized link: Azure AD tokens by the roles as last looked up); throws
   * IotHubUnauthorizedAccess (the last refusal) otherwise. `holder` is ended when that token expires.
   */
  authorize(connection: ClientConnection, right: AccessRight, eventHub: string, holder?: ExpiryHolder): void {
    const refusal = this.sasRefusal(connection, right, eventHub, holder);
    if (refusal === undefined) return;
    const decided = right === 'Manage' ? undefined : this.states.get(connection)?.aad?.decided(right, eventHub);
    if (decided === null) return;
    if (decided !== undefined && right !== 'Manage') throw new HubError('IotHubUnauthorizedAccess', claimRequired(right, decided));
    throw refusal;
  }

  /**
   * As `authorize`, for a link being attached or a `$management` request: Azure AD tokens' roles
   * are looked up now (a deleted role assignment counts from here).
   */
  async authorizeNow(connection: ClientConnection, right: 'Send' | 'Listen', eventHub: string, holder?: ExpiryHolder): Promise<void> {
    const refusal = this.sasRefusal(connection, right, eventHub, holder);
    if (refusal === undefined) return;
    const why = await this.states.get(connection)?.aad?.authorize(right, eventHub, holder);
    if (why === null) return;
    if (why !== undefined) throw new HubError('IotHubUnauthorizedAccess', claimRequired(right, why));
    throw refusal;
  }

  /** Undefined when a SAS token of the connection allows `right` on `eventHub`; otherwise the last refusal. */
  private sasRefusal(connection: ClientConnection, right: AccessRight, eventHub: string, holder?: ExpiryHolder): unknown {
    const state = this.states.get(connection);
    let refusal: unknown = new HubError('IotHubUnauthorizedAccess', `Unauthorized access. '${right}' claim(s) are required to perform this operation: no token has been put on $cbs for '${eventHub}'.`);
    for (const grant of state?.grants.values() ?? []) {
      try {
        this.namespaces.checkGrant(grant, right, eventHub);
      } catch (e) {
        refusal = e;
        continue;
      }
      if (holder && state) state.links.hold(holder, grant.expiresAt, () => latestExpiry(state.grants.values(), (g) => this.namespaces.checkGrant(g, right, eventHub)));
      return undefined;
    }
    return refusal;
  }

  release(connection: ClientConnection, holder: ExpiryHolder): void {
    const state = this.states.get(connection);
    state?.links.release(holder);
    state?.aad?.release(holder);
  }

  private azureAdOf(state: ConnectionState): AzureAdClaims {
    const ad = this.azureAd!;
    state.aad ??= new AzureAdClaims(ad.tokens, (principalId, right, eventHub) => {
      const namespace = ad.resourceIdOf(state.namespace);
      return ad.tokens.refusal(principalId, eventHub ? `${namespace}/eventhubs/${eventHub}` : namespace, EVENT_HUBS_DATA_ACTIONS[right]);
    });
    return state.aad;
  }

  private bind(connection: ClientConnection, namespace: string): ConnectionState {
    const state: ConnectionState = { namespace, grants: new Map(), links: new SasLinks() };
    this.states.set(connection, state);
    connection.onClose(() => {
      state.links.close();
      state.aad?.close();
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
