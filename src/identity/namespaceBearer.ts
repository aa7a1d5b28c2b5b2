import { TokenRefused, type DataPlaneTokens } from '../namespaces/azureAd.js';
import { BUILT_IN_ROLES, roleGrants } from './roles.js';
import { UnauthenticatedError, type AccessControl, type TokenService } from './types.js';

/**
 * Azure AD tokens on a family of local namespaces (Event Hubs or Service Bus): one of `audiences`,
 * and data roles at the entity's scope or above, looked up at every call (no cache: a deleted
 * assignment counts from the next check).
 */
export function namespaceBearer(tokens: TokenService, access: AccessControl, audiences: readonly string[]): DataPlaneTokens {
  return {
    async verify(token) {
      try {
        const verified = await tokens.verify(token, audiences);
        return { principalId: verified.principal.principalId, expiresAt: verified.expiresOn.getTime() };
      } catch (e) {
        if (e instanceof UnauthenticatedError) throw new TokenRefused(e.message);
        throw e;
      }
    },
    async refusal(principalId, scope, dataAction) {
      if (await access.allows(principalId, scope, dataAction, true)) return undefined;
      const roles = BUILT_IN_ROLES.filter((r) => roleGrants(r, dataAction, true)).map((r) => r.roleName);
      return `Principal '${principalId}' has no role assignment granting '${dataAction}' at '${scope}' or above (roles that grant it: ${roles.join(', ')}).`;
    },
  };
}
