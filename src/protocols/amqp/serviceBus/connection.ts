import { parseSasToken } from '../../../core/sas.js';
import { HubError } from '../../../core/errors.js';
import { ServiceBusError } from '../../../namespaces/serviceBus/errors.js';
import type { ServiceBusGrant, ServiceBusNamespaces } from '../../../namespaces/serviceBus/namespaces.js';
import type { CbsTokenFamily } from '../cbs.js';
import type { ClientConnection } from '../link.js';
import { looksLikeJwt } from '../../../hub/auth/bearer.js';
import { claimRequired, SERVICE_BUS_DATA_ACTIONS, type NamespaceAzureAd } from '../../../namespaces/azureAd.js';
import type { ExpiryHolder } from '../eventhub/access.js';
import { AzureAdClaims } from '../azureAdClaims.js';
import { latestExpiry, SasLinks } from '../sasLinks.js';

/** The namespace host names Fleethub answers to: `{namespace}.servicebus.{anything}`, e.g. `orders.servicebus.localhost`. */
const NAMESPACE_HOST = /^([A-Za-z][A-Za-z0-9-]*)\.servicebus\./i;

interface ServiceBusConnectionState {
  namespace: string;
  /** Grants by the audience they were put for (lower case); a later put renews. */
  grants: Map<string, ServiceBusGrant>;
  /** Links to end when no SAS token allows them any more. */
  links: SasLinks;
  /** Azure AD tokens (`jwt`) put on the connection, when the namespaces take them. */
  aad?: AzureAdClaims;
}

/**
 * Which namespace a connection talks to, and what its tokens grant. A connection belongs to a
 * namespace when its AMQP open frame's hostname is `{namespace}.servicebus.…`, or else when the
 * first token put on `$cbs` was signed by one of that namespace's authorization rules (keys are
 * random per namespace, so the signature picks it: emulator-style `Endpoint=sb://localhost`
 * connection strings and IP addresses reach the right namespace). Tokens no namespace signed
 * are left to the hub. Azure AD tokens (`type` `jwt`) are taken on connections bound to a
 * namespace, and authorized by the data roles at the queue's or topic's scope.
 */
export class ServiceBusConnections implements CbsTokenFamily {
  private readonly states = new WeakMap<ClientConnection, ServiceBusConnectionState>();

  constructor(
    private readonly namespaces: ServiceBusNamespaces,
    private readonly azureAd?: NamespaceAzureAd,
  ) {}

  /** The namespace the connection belongs to, if any. */
  namespaceOf(connection: ClientConnection): string | undefined {
    return (this.states.get(connection) ?? this.bindByHost(connection))?.namespace;
  }

  async put(connection: ClientConnection, audience: string, token: string): Promise<boolean> {
    const state = this.states.get(connection) ?? this.bindByHost(connection);
    if (state && this.azureAd && looksLikeJwt(token)) {
      await this.azureAdOf(connection, state).put(audience, token);
      return true;
    }
    const sas = parseSasToken(token);
    if (!sas) {
      if (state) throw new HubError('IotHubUnauthorizedAccess', 'InvalidSignature: The token is not a SharedAccessSignature.');
      return false;
    }
    let grant: ServiceBusGrant;
    try {
      grant = this.namespaces.verifySas(sas, state?.namespace);
    } catch (e) {
      if (!(e instanceof ServiceBusError)) throw e;
      if (!state) return false;
      throw new HubError('IotHubUnauthorizedAccess', e.message);
    }
    if (state && state.namespace.toLowerCase() !== grant.namespace.toLowerCase()) {
      throw new HubError('IotHubUnauthorizedAccess', `The token is for namespace '${grant.namespace}', not '${state.namespace}'.`);
    }
    const bound = state ?? this.bind(connection, grant.namespace);
    bound.grants.set(audience.toLowerCase(), { ...grant, resource: audience });
    return true;
  }

  /**
   * The grant that allows `right` on `entityPath`; throws ServiceBusError Unauthorized (the
   * last refusal) when no unexpired token does.
   */
  authorize(connection: ClientConnection, right: 'Send' | 'Listen', entityPath: string): ServiceBusGrant {
    const state = this.states.get(connection);
    let refusal: unknown = new ServiceBusError('Unauthorized', `Unauthorized access. '${right}' claim(s) are required to perform this operation: no token has been put on $cbs for '${entityPath}'.`);
    for (const grant of state?.grants.values() ?? []) {
      if (grant.expiresAt <= Date.now()) {
        refusal = new ServiceBusError('Unauthorized', 'ExpiredToken: The token is expired.');
        continue;
      }
      try {
        this.namespaces.checkGrant(grant, right, entityPath);
        return grant;
      } catch (e) {
        refusal = e;
      }
    }
    throw refusal;
  }

  /**
   * As `authorize`, for a link being attached or a `$management` request: Azure AD tokens' roles
   * are looked up now (a deleted role assignment counts from here). `holder` (a link) is ended
   * when its Azure AD token expires or a renewal finds its role gone.
   */
  async authorizeNow(connection: ClientConnection, right: 'Send' | 'Listen', entityPath: string, holder?: ExpiryHolder): Promise<void> {
    let refusal: unknown;
    try {
      const grant = this.authorize(connection, right, entityPath);
      const state = this.states.get(connection)!;
      if (holder) state.links.hold(holder, grant.expiresAt, () => latestExpiry(state.grants.values(), (g) => this.namespaces.checkGrant(g, right, entityPath)));
      return;
    } catch (e) {
      refusal = e;
    }
    const why = await this.states.get(connection)?.aad?.authorize(right, entityPath, holder);
    if (why === null) return;
    if (why !== undefined) throw new ServiceBusError('Unauthorized', claimRequired(right, why));
    throw refusal;
  }

  /** Forgets `holder` (its link ended). */
  release(connection: ClientConnection, holder: ExpiryHolder): void {
    const state = this.states.get(connection);
    state?.links.release(holder);
    state?.aad?.release(holder);
  }

  private azureAdOf(connection: ClientConnection, state: ServiceBusConnectionState): AzureAdClaims {
    if (state.aad) return state.aad;
    const ad = this.azureAd!;
    const claims = new AzureAdClaims(ad.tokens, (principalId, right, entityPath) =>
      ad.tokens.refusal(principalId, this.scopeOf(ad.resourceIdOf(state.namespace), state.namespace, entityPath), SERVICE_BUS_DATA_ACTIONS[right]),
    );
    state.aad = claims;
    connection.onClose(() => claims.close());
    return claims;
  }

  /** The ARM scope of an entity path: its queue or topic (a subscription's is its topic's); the namespace when it names neither. */
  private scopeOf(namespaceId: string, namespace: string, entityPath: string): string {
    const root = entityPath.split('/')[0] ?? '';
    const queue = root ? this.namespaces.getQueue(namespace, root) : undefined;
    if (queue) return `${namespaceId}/queues/${queue.name}`;
    const topic = root ? this.namespaces.getTopic(namespace, root) : undefined;
    if (topic) return `${namespaceId}/topics/${topic.name}`;
    return namespaceId;
  }

  private bindByHost(connection: ClientConnection): ServiceBusConnectionState | undefined {
    const remote = (connection.rhea as unknown as { remote?: { open?: { hostname?: string } } }).remote;
    const host = remote?.open?.hostname;
    const m = host ? NAMESPACE_HOST.exec(host) : null;
    if (!m || !this.namespaces.getNamespace(m[1]!)) return undefined;
    return this.bind(connection, this.namespaces.getNamespace(m[1]!)!.name);
  }

  private bind(connection: ClientConnection, namespace: string): ServiceBusConnectionState {
    const state: ServiceBusConnectionState = { namespace, grants: new Map(), links: new SasLinks() };
    this.states.set(connection, state);
    connection.onClose(() => state.links.close());
    return state;
  }
}
