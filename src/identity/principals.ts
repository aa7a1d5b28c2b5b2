import { randomUUID } from 'node:crypto';
import type { IdentityStore } from '../store/identity.js';
import type { Principal, Principals } from './types.js';

/** Managed-identity and service principals, kept in the identity store. */
export class StoredPrincipals implements Principals {
  constructor(
    private readonly store: IdentityStore,
    private readonly tenantId: string,
  ) {}

  get(principalId: string) {
    return this.store.principal(principalId);
  }
  byClientId(clientId: string) {
    return this.store.principalByClientId(clientId);
  }
  byResourceId(resourceId: string) {
    return this.store.principalByResourceId(resourceId);
  }

  async create(kind: 'systemAssigned' | 'userAssigned', resourceId: string, displayName: string): Promise<Principal> {
    const principal = this.newPrincipal(kind, resourceId, displayName);
    await this.store.insertPrincipal(principal);
    return principal;
  }

  /** A principal with fresh ids, not yet stored (for writes that store it with other changes). */
  newPrincipal(kind: 'systemAssigned' | 'userAssigned', resourceId: string, displayName: string): Principal {
    return { principalId: randomUUID(), clientId: randomUUID(), tenantId: this.tenantId, kind, displayName, resourceId };
  }

  async delete(principalId: string): Promise<void> {
    await this.store.deletePrincipal(principalId);
  }
}
