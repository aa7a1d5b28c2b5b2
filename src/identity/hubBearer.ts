import { errors } from '../core/errors.js';
import type { BearerVerifier } from '../hub/auth/bearer.js';
import { UnauthenticatedError, type AccessControl, type TokenService } from './types.js';

/** IoT Hub's data-plane audience, as Azure AD tokens for it carry it. */
export const IOT_HUB_AUDIENCES = ['https://iothubs.azure.net'];

/** Bearer tokens on one hub: audience `https://iothubs.azure.net`, data roles at the hub's resource id. */
export function hubBearer(tokens: TokenService, access: AccessControl, hubResourceId: () => string | undefined): BearerVerifier {
  return {
    async authorize(token, dataActions = []) {
      let verified;
      try {
        verified = await tokens.verify(token, IOT_HUB_AUDIENCES);
      } catch (e) {
        if (e instanceof UnauthenticatedError) throw errors.unauthorized(e.message);
        throw e;
      }
      const scope = hubResourceId();
      const principalId = verified.principal.principalId;
      for (const action of dataActions) {
        if (!scope || !(await access.allows(principalId, scope, action, true))) {
          throw errors.unauthorized(`Unauthorized: principal ${principalId} has no role granting ${action} on this hub`);
        }
      }
      return { principalId, expiresAt: verified.expiresOn.getTime() };
    },
  };
}
