/**
 * What the identity area (token service, principals, role assignments, hub identities) keeps,
 * in its own words. Implementation: ./sqlite/identity.ts on control.db.
 */
import type { Principal, RoleAssignment, Tenancy } from '../identity/types.js';

export interface HubIdentityRecord {
  hubResourceId: string;
  systemPrincipalId?: string;
  /** Resource ids of the attached user-assigned identities, as given. */
  userAssigned: string[];
}

export interface IdentityStore {
  /** The tenancy fixed at first start; `create` runs only when there is none yet (in one transaction). */
  tenancy(create: () => Tenancy): Promise<Tenancy>;
  /** The token signing key (a private JWK, never logged); `create` runs only when there is none yet. */
  signingKey(create: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>>;

  principal(principalId: string): Promise<Principal | undefined>;
  principalByClientId(clientId: string): Promise<Principal | undefined>;
  principalByResourceId(resourceId: string): Promise<Principal | undefined>;
  insertPrincipal(principal: Principal): Promise<void>;
  deletePrincipal(principalId: string): Promise<boolean>;

  roleAssignment(id: string): Promise<RoleAssignment | undefined>;
  roleAssignments(): Promise<RoleAssignment[]>;
  /** false when one with that id exists. */
  insertRoleAssignment(assignment: RoleAssignment): Promise<boolean>;
  deleteRoleAssignment(id: string): Promise<boolean>;

  hubIdentity(hubResourceId: string): Promise<HubIdentityRecord | undefined>;
  /** Writes the record; `deletePrincipalIds` are removed in the same transaction. */
  putHubIdentity(record: HubIdentityRecord, deletePrincipalIds: string[], createPrincipals: Principal[]): Promise<void>;

  /** The secret (`IDENTITY_HEADER`) of a hub's managed-identity endpoint; `create` runs only when there is none yet. */
  identityHeader(hubName: string, create: () => string): Promise<string>;
}
