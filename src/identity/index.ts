import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Db } from '../store/sqlite/database.js';
import { openControlDatabase } from '../store/sqlite/control.js';
import { openSqliteIdentityStore } from '../store/sqlite/identity.js';
import { aadApi } from '../protocols/http/aad.js';
import type { BearerVerifier } from '../hub/auth/bearer.js';
import { ensureTenancy } from './tenancy.js';
import { StoredPrincipals } from './principals.js';
import { LocalTokenService } from './tokens.js';
import { RbacAccessControl, StoredRoleAssignments } from './roleAssignments.js';
import { StoredHubIdentities } from './hubIdentities.js';
import { HubEgressCredentials, LocalIdentityTokens } from './egress.js';
import { hubBearer } from './hubBearer.js';
import { namespaceBearer } from './namespaceBearer.js';
import { EVENT_HUBS_AUDIENCES, SERVICE_BUS_AUDIENCES, type DataPlaneTokens } from '../namespaces/azureAd.js';
import { normalizeScope, resourceIds } from './resourceIds.js';
import { findRole } from './roles.js';
import type { Principal, Tenancy } from './types.js';

export type IdentityProvider = 'local' | 'azure';

export interface IdentityAreaDeps {
  /** The process's data directory (control.db lives there), unless `db` is given. */
  dataDir: string;
  db?: Db;
  /** Where outbound connections' identity tokens come from (config `identity.provider`). */
  provider?: IdentityProvider;
  tokenLifetimeSeconds?: number;
  /** A hub's ARM resource id by hub name; by default the hub in the default resource group. */
  hubResourceId?: (hubName: string) => string | undefined;
}

export type IdentityArea = Awaited<ReturnType<typeof identityArea>>;

/**
 * Fleethub's identity area: the tenancy, principals, token service, role assignments and RBAC,
 * hub identities and the egress seam, with the Azure AD endpoints as a Fastify plugin (registered
 * on the primary hub's HTTPS listener) and a bearer verifier per hub.
 */
export async function identityArea(deps: IdentityAreaDeps) {
  const ownDb = deps.db ? undefined : openControlDatabase(deps.dataDir);
  const db = deps.db ?? ownDb!;
  try {
    const store = openSqliteIdentityStore(db);
    const tenancy = await ensureTenancy(store);
    const principals = new StoredPrincipals(store, tenancy.tenantId);
    const tokens = await LocalTokenService.open(store, tenancy.tenantId, principals, { lifetimeSeconds: deps.tokenLifetimeSeconds });
    const roleAssignments = new StoredRoleAssignments(store, principals, tenancy.subscriptionId);
    const accessControl = new RbacAccessControl(roleAssignments);
    const hubIdentities = new StoredHubIdentities(store, principals);
    const provider = deps.provider ?? 'local';
    // @azure/identity (and MSAL under it) is loaded only on Azure: it costs every CLI call and every hub start otherwise.
    const azureTokens = provider === 'azure' ? new (await import('../egress/azureIdentity.js')).AzureManagedIdentityTokens() : undefined;
    const egress = new HubEgressCredentials(hubIdentities, azureTokens ?? new LocalIdentityTokens(tokens, principals));
    const hubResourceId = deps.hubResourceId ?? ((hubName: string) => resourceIds.hub(tenancy.subscriptionId, tenancy.defaultResourceGroup, hubName));
    await ensureAdministratorIsOwner(roleAssignments, tenancy);

    const signIn = async (clientId: string, secret: string): Promise<Principal | 'unknownClient' | 'badSecret'> => {
      if (clientId.toLowerCase() !== tenancy.administrator.clientId) return 'unknownClient';
      const a = Buffer.from(secret);
      const b = Buffer.from(tenancy.administrator.clientSecret);
      if (a.length !== b.length || !timingSafeEqual(a, b)) return 'badSecret';
      return (await principals.get(tenancy.administrator.principalId)) ?? 'unknownClient';
    };
    const identityHeader = (hubName: string) => store.identityHeader(hubName, () => randomBytes(24).toString('base64url'));
    const managedIdentity = async (hubName: string) => {
      const id = hubResourceId(hubName);
      if (!id) return undefined;
      const header = await identityHeader(hubName);
      return {
        header,
        async select(by: { clientId?: string; resourceId?: string; objectId?: string }) {
          const hub = await hubIdentities.get(id);
          const attached = [...(hub.systemAssigned ? [hub.systemAssigned] : []), ...hub.userAssigned.values()];
          if (by.clientId) return attached.find((p) => p.clientId === by.clientId!.toLowerCase());
          if (by.objectId) return attached.find((p) => p.principalId === by.objectId!.toLowerCase());
          if (by.resourceId) return [...hub.userAssigned].find(([rid]) => normalizeScope(rid) === normalizeScope(by.resourceId!))?.[1];
          return hub.systemAssigned;
        },
      };
    };

    return {
      tenancy,
      principals,
      tokens,
      roleAssignments,
      accessControl,
      hubIdentities,
      egress,
      provider,
      hubResourceId,
      /** The Azure AD endpoints and the managed-identity endpoints, for the primary hub's HTTPS listener. */
      plugin: aadApi({ tokens, signIn, managedIdentity }) as (app: FastifyInstance) => Promise<void>,
      /** Bearer tokens on the hub named `hubName`, authorized by data roles at its resource id. */
      bearerFor(hubName: string): BearerVerifier {
        return hubBearer(tokens, accessControl, () => hubResourceId(hubName));
      },
      /** Azure AD tokens on the local Event Hubs or Service Bus namespaces, authorized by their data roles. */
      namespaceTokens(family: 'eventHubs' | 'serviceBus'): DataPlaneTokens {
        return namespaceBearer(tokens, accessControl, family === 'eventHubs' ? EVENT_HUBS_AUDIENCES : SERVICE_BUS_AUDIENCES);
      },
      /** `IDENTITY_HEADER` of the hub's managed-identity endpoint (a secret kept in control.db). */
      identityHeader,
      /** `IDENTITY_ENDPOINT` of the hub's managed-identity endpoint, served at `baseUrl` (the primary hub's HTTPS). */
      identityEndpoint: (baseUrl: string, hubName: string) => `${baseUrl.replace(/\/+$/, '')}/msi/${encodeURIComponent(hubName)}/token`,
      /** What `fleethub info` prints under `management`. */
      management(baseUrl: string) {
        const endpoint = `${baseUrl.replace(/\/+$/, '')}/`;
        return {
          endpoint,
          authorityHost: endpoint,
          tenantId: tenancy.tenantId,
          subscriptionId: tenancy.subscriptionId,
          resourceGroup: tenancy.defaultResourceGroup,
          clientId: tenancy.administrator.clientId,
          clientSecret: tenancy.administrator.clientSecret,
        };
      },
      close() {
        ownDb?.close();
      },
    };
  } catch (e) {
    ownDb?.close();
    throw e;
  }
}

/** The administrator service principal is Owner of the subscription (given once, at first start). */
async function ensureAdministratorIsOwner(assignments: StoredRoleAssignments, tenancy: Tenancy): Promise<void> {
  const scope = resourceIds.subscription(tenancy.subscriptionId);
  const owner = findRole('Owner')!;
  const existing = await assignments.list({ scope, principalId: tenancy.administrator.principalId });
  if (existing.some((a) => a.roleDefinitionId.toLowerCase().endsWith(owner.id))) return;
  await assignments.create({ name: randomUUID(), scope, roleDefinitionId: owner.id, principalId: tenancy.administrator.principalId, principalType: 'ServicePrincipal' });
}
