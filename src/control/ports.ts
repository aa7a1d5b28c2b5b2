/**
 * What the control plane needs from the identity area beyond src/identity/types.ts, named as the
 * issue's split names them (the identity area implements them).
 */
import type { AccessControl, HubIdentities, Principal, Principals, RoleAssignments, RoleDefinition, Tenancy, TokenService } from '../identity/types.js';
import type { HubHost } from '../hosting/types.js';

/** Sets which identities a hub has; turning the system identity off deletes its principal, on creates a new one. */
export interface HubIdentitySettings extends HubIdentities {
  setHubIdentity(
    hubResourceId: string,
    identity: { system: boolean; userAssigned: string[] },
  ): Promise<{ systemAssigned?: Principal; userAssigned: Map<string, Principal> }>;
}

/** Azure's built-in role definitions. */
export interface RoleDefinitions {
  list(): RoleDefinition[];
  get(id: string): RoleDefinition | undefined;
}

/** Everything the control plane is composed from. */
export interface ControlDependencies {
  tenancy: Tenancy;
  tokens: TokenService;
  principals: Principals;
  hubIdentities: HubIdentitySettings;
  roleAssignments: RoleAssignments;
  roleDefinitions: RoleDefinitions;
  access: AccessControl;
  hubs: HubHost;
  /** Host names of hubs created by PUT: `{name}.{hubDomain}`. */
  hubDomain: string;
}
