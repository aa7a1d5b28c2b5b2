/**
 * The contract between the local Azure AD (token service, managed identities, role assignments),
 * the control plane (ARM resources) and the hub's data plane. Implementations live beside this
 * file (identity/) and in control/; this file only names what each side may rely on.
 */

/** An Azure AD principal known to Fleethub's token service. */
export interface Principal {
  /** The object id (`oid`, `sub` of its tokens); what role assignments name. */
  principalId: string;
  /** The application (client) id (`appid` of its tokens). */
  clientId: string;
  tenantId: string;
  kind: 'servicePrincipal' | 'systemAssigned' | 'userAssigned';
  displayName: string;
  /**
   * For managed identities, the ARM resource id they belong to: the hub (system-assigned, also
   * `xms_mirid`) or the `Microsoft.ManagedIdentity/userAssignedIdentities` resource.
   */
  resourceId?: string;
}

/** A token the service issued, decoded and checked (signature, issuer, lifetime, audience). */
export interface VerifiedToken {
  principal: Principal;
  audience: string;
  expiresOn: Date;
  claims: Record<string, unknown>;
}

export interface AccessToken {
  token: string;
  /** Milliseconds since the epoch, as @azure/core-auth's AccessToken has it. */
  expiresOnTimestamp: number;
}

/** Fleethub's own Azure AD for local use. */
export interface TokenService {
  readonly tenantId: string;
  /** The issuer of its tokens: `https://sts.windows.net/{tid}/` (Azure AD v1 tokens). */
  readonly issuer: string;
  /** A token for `principal`, audience `resource` (a trailing slash is kept as requested). */
  issue(principal: Principal, resource: string): Promise<AccessToken>;
  /**
   * Checks a bearer token for one of `audiences` (matched with or without a trailing slash);
   * the principal must still exist. Throws an `UnauthenticatedError` when it does not hold.
   */
  verify(token: string, audiences: readonly string[]): Promise<VerifiedToken>;
}

export class UnauthenticatedError extends Error {
  override name = 'UnauthenticatedError';
}

/**
 * Azure RBAC over ARM scopes: role assignments at a scope apply to everything below it
 * (subscription → resource group → resource → child resource).
 */
export interface AccessControl {
  /**
   * Whether `principalId` may perform `operation` at `scope` (a resource id). `operation` is an
   * ARM action (`Microsoft.Devices/IotHubs/write`) or a data action
   * (`Microsoft.EventHub/namespaces/messages/send/action`); `dataAction` says which.
   */
  allows(principalId: string, scope: string, operation: string, dataAction?: boolean): Promise<boolean>;
}

/** The settings of one of a hub's outbound connections (routing endpoint, storage, import/export). */
export interface OutboundAuthentication {
  authenticationType?: 'keyBased' | 'identityBased' | string;
  /** `identity.userAssignedIdentity`: the resource id of a user-assigned identity attached to the hub. */
  identity?: { userAssignedIdentity?: string | null } | null;
  /** For keyBased: the connection string. */
  connectionString?: string;
}

/** What an outbound connection authenticates with. */
export type EgressCredential =
  | { kind: 'key'; connectionString: string }
  | { kind: 'identity'; credential: TokenCredentialLike; principalId?: string; identity: 'systemAssigned' | 'userAssigned'; userAssignedIdentity?: string };

/** @azure/core-auth's TokenCredential, structurally (so that domain code does not import the SDK). */
export interface TokenCredentialLike {
  getToken(scopes: string | string[], options?: unknown): Promise<AccessToken | null>;
}

/** The ids fixed when the data directory is created: Fleethub's one tenant and subscription. */
export interface Tenancy {
  tenantId: string;
  subscriptionId: string;
  subscriptionDisplayName: string;
  /** The resource group the process's configured hubs and DPS live in. */
  defaultResourceGroup: string;
  /** The location resources report (`local`). */
  location: string;
  /** The local administrator service principal: Owner of the subscription. */
  administrator: { principalId: string; clientId: string; clientSecret: string };
}

/** Managed-identity and service principals, by any of their ids. */
export interface Principals {
  get(principalId: string): Promise<Principal | undefined>;
  byClientId(clientId: string): Promise<Principal | undefined>;
  byResourceId(resourceId: string): Promise<Principal | undefined>;
  /** A new principal with fresh ids (`systemAssigned` for a hub, `userAssigned` for an identity resource). */
  create(kind: 'systemAssigned' | 'userAssigned', resourceId: string, displayName: string): Promise<Principal>;
  /** Deletes it: its tokens stop being accepted, it gets no new ones. Role assignments naming it stay (as in Azure). */
  delete(principalId: string): Promise<void>;
}

/** Azure's built-in role definitions (well-known ids, names, actions and data actions). */
export interface RoleDefinition {
  /** The GUID (`name` of the ARM resource). */
  id: string;
  roleName: string;
  description: string;
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

export interface RoleAssignment {
  /** The assignment's GUID (its ARM resource name). */
  name: string;
  /** `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}` */
  id: string;
  scope: string;
  /** `/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{roleId}` */
  roleDefinitionId: string;
  principalId: string;
  principalType: 'ServicePrincipal' | 'User' | 'Group' | string;
  createdOn: string;
  updatedOn: string;
}

export interface RoleAssignments {
  get(id: string): Promise<RoleAssignment | undefined>;
  /** At a scope; `below` adds those at scopes under it, `above` those it inherits. */
  list(filter?: { scope?: string; atScopeAndBelow?: boolean; inherited?: boolean; principalId?: string }): Promise<RoleAssignment[]>;
  /** Refuses (ARM's errors) an unknown role or principal, or a second assignment of the same role to the same principal at the same scope. */
  create(assignment: Omit<RoleAssignment, 'id' | 'createdOn' | 'updatedOn'>): Promise<RoleAssignment>;
  delete(id: string): Promise<RoleAssignment | undefined>;
}

/**
 * Which identities a hub has, as the control plane set them from the hub resource's `identity`:
 * the system-assigned principal (if on) and the attached user-assigned identities by resource id.
 */
export interface HubIdentities {
  get(hubResourceId: string): Promise<{ systemAssigned?: Principal; userAssigned: Map<string, Principal> }>;
}

/**
 * The egress seam: the credential an outbound connection of a hub uses, by IoT Hub's rules.
 * `identityBased` without a user-assigned id means the system-assigned identity; an id that is not
 * attached to the hub, or no identity at all, fails with an error that says so.
 */
export interface EgressCredentials {
  forConnection(hubResourceId: string, settings: OutboundAuthentication): Promise<EgressCredential>;
}
