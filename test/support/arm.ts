/**
 * Management-plane credentials for tests. INTERIM: tokens come from the in-process token service
 * (the control plane's); once the identity area is merged, the administrator signs in with the
 * unmodified ClientSecretCredential (management.clientId/clientSecret of `fleethub info --json`).
 */
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import type { Principal } from '../../src/identity/types.js';
import type { TestHub } from './hub.js';

const resourceOf = (scopes: string | string[]) => (Array.isArray(scopes) ? scopes[0]! : scopes).replace(/\/\.default$/, '');

/** A TokenCredential for `principal` (the administrator by default). */
export function managementCredential(t: TestHub, principal?: () => Promise<Principal | undefined>): TokenCredential {
  return {
    async getToken(scopes): Promise<AccessToken> {
      const { deps } = t.hub.control!;
      const p = principal ? await principal() : await deps.principals.get(deps.tenancy.administrator.principalId);
      if (!p) throw new Error('no such principal');
      return deps.tokens.issue(p, resourceOf(scopes));
    },
  };
}

export const armEndpoint = (t: TestHub) => ({ endpoint: `https://${t.host}`, credentialScopes: ['https://management.azure.com/.default'] });
export const subscriptionId = (t: TestHub) => t.hub.control!.deps.tenancy.subscriptionId;
export const defaultGroup = (t: TestHub) => t.hub.control!.deps.tenancy.defaultResourceGroup;

/** A management token for raw requests. */
export async function managementToken(t: TestHub): Promise<string> {
  return (await managementCredential(t).getToken('https://management.azure.com/.default'))!.token;
}
