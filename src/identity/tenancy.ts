import { randomBytes, randomUUID } from 'node:crypto';
import type { IdentityStore } from '../store/identity.js';
import type { Principal, Tenancy } from './types.js';

export const DEFAULT_RESOURCE_GROUP = 'fleethub';
export const DEFAULT_LOCATION = 'local';

/**
 * The tenant, subscription and administrator service principal, created with the data directory
 * and fixed from then on (like the hub's keys, the data directory is the trust boundary).
 */
export async function ensureTenancy(store: IdentityStore): Promise<Tenancy> {
  const tenancy = await store.tenancy(() => ({
    tenantId: randomUUID(),
    subscriptionId: randomUUID(),
    subscriptionDisplayName: 'Fleethub',
    defaultResourceGroup: DEFAULT_RESOURCE_GROUP,
    location: DEFAULT_LOCATION,
    // Azure AD client secrets are 40 characters of this alphabet.
    administrator: { principalId: randomUUID(), clientId: randomUUID(), clientSecret: randomBytes(30).toString('base64url') },
  }));
  if (!(await store.principal(tenancy.administrator.principalId))) await store.insertPrincipal(administratorPrincipal(tenancy));
  return tenancy;
}

export function administratorPrincipal(tenancy: Tenancy): Principal {
  return {
    principalId: tenancy.administrator.principalId,
    clientId: tenancy.administrator.clientId,
    tenantId: tenancy.tenantId,
    kind: 'servicePrincipal',
    displayName: 'fleethub-administrator',
  };
}
