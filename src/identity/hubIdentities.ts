import type { IdentityStore } from '../store/identity.js';
import { IdentityError } from './errors.js';
import type { StoredPrincipals } from './principals.js';
import type { HubIdentities, Principal } from './types.js';

export interface HubIdentityState {
  systemAssigned?: Principal;
  userAssigned: Map<string, Principal>;
}

/**
 * Which identities each hub has. The control plane sets them from the hub resource's `identity`
 * (the one writer); turning the system-assigned identity off deletes its principal, turning it
 * on again makes a new one (a new principal id), as Azure does.
 */
export class StoredHubIdentities implements HubIdentities {
  constructor(
    private readonly store: IdentityStore,
    private readonly principals: StoredPrincipals,
  ) {}

  async get(hubResourceId: string): Promise<HubIdentityState> {
    const record = await this.store.hubIdentity(hubResourceId);
    const systemAssigned = record?.systemPrincipalId ? await this.principals.get(record.systemPrincipalId) : undefined;
    const userAssigned = new Map<string, Principal>();
    for (const id of record?.userAssigned ?? []) {
      const p = await this.principals.byResourceId(id);
      if (p) userAssigned.set(id, p);
    }
    return { ...(systemAssigned ? { systemAssigned } : {}), userAssigned };
  }

  /**
   * Sets the hub's identities: `system` on or off, and exactly these user-assigned identities
   * (resource ids of `Microsoft.ManagedIdentity/userAssignedIdentities` whose principals exist).
   * Refuses an unknown user-assigned identity and changes nothing then.
   */
  async setHubIdentity(hubResourceId: string, wanted: { system: boolean; userAssigned: string[] }): Promise<HubIdentityState> {
    const record = await this.store.hubIdentity(hubResourceId);
    const seen = new Set<string>();
    const userAssigned: string[] = [];
    for (const id of wanted.userAssigned) {
      if (!(await this.principals.byResourceId(id))) {
        throw new IdentityError('InvalidUserAssignedIdentity', `The user-assigned identity '${id}' does not exist.`, 400);
      }
      if (!seen.has(id.toLowerCase())) userAssigned.push(id);
      seen.add(id.toLowerCase());
    }
    const current = record?.systemPrincipalId;
    let systemPrincipalId = current;
    const remove: string[] = [];
    const create: Principal[] = [];
    if (wanted.system && !current) {
      const p = this.principals.newPrincipal('systemAssigned', hubResourceId, hubResourceId.split('/').pop() ?? hubResourceId);
      create.push(p);
      systemPrincipalId = p.principalId;
    } else if (!wanted.system && current) {
      remove.push(current);
      systemPrincipalId = undefined;
    }
    await this.store.putHubIdentity({ hubResourceId, ...(systemPrincipalId ? { systemPrincipalId } : {}), userAssigned }, remove, create);
    return this.get(hubResourceId);
  }

  /** Forgets a deleted hub: its system-assigned principal goes with it. */
  async removeHub(hubResourceId: string): Promise<void> {
    await this.setHubIdentity(hubResourceId, { system: false, userAssigned: [] });
  }
}
