/**
 * Management-plane credentials for tests: the administrator signs in with the unmodified
 * ClientSecretCredential (management.* of `fleethub info --json`); other principals (no secret
 * of their own) get tokens from the in-process token service.
 */
import { ClientSecretCredential } from '@azure/identity';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import type { Principal } from '../../src/identity/types.js';
import type { TestHub } from './hub.js';

const resourceOf = (scopes: string | string[]) => (Array.isArray(scopes) ? scopes[0]! : scopes).replace(/\/\.default$/, '');

/** A TokenCredential for `principal`, or the administrator through ClientSecretCredential. */
export function managementCredential(t: TestHub, principal?: () => Promise<Principal | undefined>): TokenCredential {
  if (!principal) {
    let cred: ClientSecretCredential | undefined;
    return {
      async getToken(scopes, options) {
        if (!cred) {
          const { management } = (await t.hub.info()) as unknown as { management: { tenantId: string; clientId: string; clientSecret: string; authorityHost: string } };
          cred = new ClientSecretCredential(management.tenantId, management.clientId, management.clientSecret, { authorityHost: management.authorityHost, disableInstanceDiscovery: true });
        }
        return cred.getToken(scopes, options);
      },
    };
  }
  return {
    async getToken(scopes): Promise<AccessToken> {
      const p = await principal();
      if (!p) throw new Error('no such principal');
      return t.hub.control!.deps.tokens.issue(p, resourceOf(scopes));
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
