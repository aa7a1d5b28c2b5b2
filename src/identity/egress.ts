import { IdentityError } from './errors.js';
import type { HubIdentityState } from './hubIdentities.js';
import { resourceOfScope } from './tokens.js';
import type { EgressCredential, EgressCredentials, OutboundAuthentication, Principal, Principals, TokenCredentialLike, TokenService } from './types.js';

/** Where an identity's tokens come from: Fleethub's own token service, or Azure's managed-identity endpoint. */
export interface IdentityTokenProvider {
  systemAssigned(hubResourceId: string, principal: Principal): TokenCredentialLike;
  userAssigned(resourceId: string, principal: Principal): TokenCredentialLike;
}

/**
 * The egress seam: the credential an outbound connection of a hub uses, by IoT Hub's rules.
 * keyBased → the connection string; identityBased without a user-assigned id → the system-assigned
 * identity; with one → that identity, which must be attached to the hub.
 */
export class HubEgressCredentials implements EgressCredentials {
  constructor(
    private readonly identities: { get(hubResourceId: string): Promise<HubIdentityState> },
    private readonly provider: IdentityTokenProvider,
  ) {}

  async forConnection(hubResourceId: string, settings: OutboundAuthentication): Promise<EgressCredential> {
    const type = settings.authenticationType ?? 'keyBased';
    if (type === 'keyBased') {
      if (!settings.connectionString) throw new IdentityError('InvalidEndpoint', 'A keyBased endpoint needs a connection string.');
      return { kind: 'key', connectionString: settings.connectionString };
    }
    if (type !== 'identityBased') {
      throw new IdentityError('InvalidAuthenticationType', `authenticationType must be keyBased or identityBased, not '${type}'.`);
    }
    const hub = await this.identities.get(hubResourceId);
    const wanted = settings.identity?.userAssignedIdentity;
    if (wanted) {
      const match = [...hub.userAssigned].find(([id]) => id.toLowerCase() === wanted.toLowerCase());
      if (!match) {
        throw new IdentityError('UserAssignedIdentityNotAttached', `The user-assigned identity '${wanted}' is not attached to the hub '${hubResourceId}'.`);
      }
      const [id, principal] = match;
      return { kind: 'identity', identity: 'userAssigned', userAssignedIdentity: id, principalId: principal.principalId, credential: this.provider.userAssigned(id, principal) };
    }
    if (!hub.systemAssigned) {
      throw new IdentityError(
        'SystemAssignedIdentityNotEnabled',
        `identityBased authentication without a user-assigned identity uses the hub's system-assigned identity, which is not enabled on '${hubResourceId}'.`,
      );
    }
    const principal = hub.systemAssigned;
    return { kind: 'identity', identity: 'systemAssigned', principalId: principal.principalId, credential: this.provider.systemAssigned(hubResourceId, principal) };
  }
}

/** Tokens from Fleethub's own token service, checked against the principal at every call (a deleted one gets none). */
export class LocalIdentityTokens implements IdentityTokenProvider {
  constructor(
    private readonly tokens: TokenService,
    private readonly principals: Principals,
  ) {}

  systemAssigned(_hub: string, principal: Principal): TokenCredentialLike {
    return this.credential(principal);
  }
  userAssigned(_id: string, principal: Principal): TokenCredentialLike {
    return this.credential(principal);
  }

  private credential(principal: Principal): TokenCredentialLike {
    return {
      getToken: async (scopes) => {
        const scope = Array.isArray(scopes) ? scopes[0] : scopes;
        if (!scope) throw new IdentityError('InvalidScope', 'getToken needs a scope');
        const current = await this.principals.get(principal.principalId);
        if (!current) throw new IdentityError('IdentityNotFound', `The identity ${principal.principalId} no longer exists.`);
        return this.tokens.issue(current, resourceOfScope(scope));
      },
    };
  }
}
