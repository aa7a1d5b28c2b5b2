/**
 * INTERIM stand-ins for the identity and hosting areas, so that the control plane runs and is
 * tested before those branches are merged. The lead replaces each with the real one
 * (see the report of the `control` branch):
 * - InterimTokenService, InterimPrincipals, InterimRoleAssignments, InterimAccess,
 *   InterimHubIdentities, interimRoleDefinitions, interimTenancy → identityArea(deps) (src/identity).
 * - InterimHubHost → the HubHost of src/hosting.
 * Nothing here is durable except the tenancy ids; nothing here is secret-safe beyond the process.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import type { Logger } from 'pino';
import {
  UnauthenticatedError,
  type AccessControl,
  type AccessToken,
  type Principal,
  type Principals,
  type RoleAssignment,
  type RoleAssignments,
  type RoleDefinition,
  type Tenancy,
  type TokenService,
  type VerifiedToken,
} from '../identity/types.js';
import type { HubHost } from '../hosting/types.js';
import type { HubIdentitySettings, RoleDefinitions } from './ports.js';
import type { ControlResourceStore } from '../store/control.js';
import { ArmError } from './errors.js';
import { isWithin } from './resourceIds.js';
import type { RunningHub } from '../main.js';

/** The tenant, subscription and administrator, fixed at first start (kept in control.db). */
export function interimTenancy(store: ControlResourceStore): Tenancy {
  const saved = store.settings.get('interim.tenancy');
  if (saved) return JSON.parse(saved) as Tenancy;
  const tenancy: Tenancy = {
    tenantId: randomUUID(),
    subscriptionId: randomUUID(),
    subscriptionDisplayName: 'Fleethub',
    defaultResourceGroup: 'fleethub',
    location: 'local',
    administrator: { principalId: randomUUID(), clientId: randomUUID(), clientSecret: randomBytes(24).toString('base64url') },
  };
  store.settings.set('interim.tenancy', JSON.stringify(tenancy));
  return tenancy;
}

export class InterimPrincipals implements Principals {
  private readonly byId = new Map<string, Principal>();
  constructor(private readonly tenancy: Tenancy) {
    const a = tenancy.administrator;
    this.byId.set(a.principalId, { principalId: a.principalId, clientId: a.clientId, tenantId: tenancy.tenantId, kind: 'servicePrincipal', displayName: 'fleethub-admin' });
  }
  async get(principalId: string) {
    return this.byId.get(principalId.toLowerCase());
  }
  async byClientId(clientId: string) {
    return [...this.byId.values()].find((p) => p.clientId.toLowerCase() === clientId.toLowerCase());
  }
  async byResourceId(resourceId: string) {
    return [...this.byId.values()].find((p) => p.resourceId?.toLowerCase() === resourceId.toLowerCase());
  }
  async create(kind: 'systemAssigned' | 'userAssigned', resourceId: string, displayName: string): Promise<Principal> {
    const p: Principal = { principalId: randomUUID(), clientId: randomUUID(), tenantId: this.tenancy.tenantId, kind, displayName, resourceId };
    this.byId.set(p.principalId, p);
    return p;
  }
  /** A service principal with no role (tests of AuthorizationFailed). */
  addServicePrincipal(displayName: string): Principal {
    const p: Principal = { principalId: randomUUID(), clientId: randomUUID(), tenantId: this.tenancy.tenantId, kind: 'servicePrincipal', displayName };
    this.byId.set(p.principalId, p);
    return p;
  }
  async delete(principalId: string) {
    this.byId.delete(principalId.toLowerCase());
  }
}

export class InterimTokenService implements TokenService {
  readonly issuer: string;
  private keys?: Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }>;
  constructor(
    readonly tenantId: string,
    private readonly principals: Principals,
  ) {
    this.issuer = `https://sts.windows.net/${tenantId}/`;
  }
  private keyPair() {
    return (this.keys ??= generateKeyPair('RS256'));
  }
  async issue(principal: Principal, resource: string): Promise<AccessToken> {
    const { privateKey } = await this.keyPair();
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const token = await new SignJWT({ oid: principal.principalId, appid: principal.clientId, tid: this.tenantId, ...(principal.resourceId ? { xms_mirid: principal.resourceId } : {}) })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: 'interim' })
      .setIssuer(this.issuer)
      .setAudience(resource)
      .setSubject(principal.principalId)
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime(exp)
      .sign(privateKey);
    return { token, expiresOnTimestamp: exp * 1000 };
  }
  async verify(token: string, audiences: readonly string[]): Promise<VerifiedToken> {
    const { publicKey } = await this.keyPair();
    const both = audiences.flatMap((a) => [a.replace(/\/+$/, ''), a.replace(/\/+$/, '') + '/']);
    try {
      const { payload } = await jwtVerify(token, publicKey, { issuer: this.issuer, audience: both });
      const principal = await this.principals.get(String(payload.oid));
      if (!principal) throw new UnauthenticatedError('The principal of the token no longer exists.');
      return { principal, audience: String(payload.aud), expiresOn: new Date((payload.exp ?? 0) * 1000), claims: payload as Record<string, unknown> };
    } catch (e) {
      if (e instanceof UnauthenticatedError) throw e;
      throw new UnauthenticatedError(`The access token is invalid: ${(e as Error).message}`);
    }
  }
}

const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';
const role = (id: string, roleName: string, actions: string[], notActions: string[] = [], dataActions: string[] = []): RoleDefinition => ({
  id,
  roleName,
  description: roleName,
  actions,
  notActions,
  dataActions,
  notDataActions: [],
});
/** A few of Azure's built-in roles (the identity area has them all). */
export const interimRoleDefinitions: RoleDefinitions = (() => {
  const all = [
    role(OWNER, 'Owner', ['*']),
    role('b24988ac-6180-42a0-ab88-20f7382dd24c', 'Contributor', ['*'], ['Microsoft.Authorization/*/Delete', 'Microsoft.Authorization/*/Write', 'Microsoft.Authorization/elevateAccess/Action']),
    role('acdd72a7-3385-48ef-bd42-f606fba81ae7', 'Reader', ['*/read']),
    role('4fc6c259-987e-4a07-842e-c321cc9d413f', 'IoT Hub Data Contributor', [], [], ['Microsoft.Devices/IotHubs/*']),
    role('2b629674-e913-4c01-ae53-ef4638d8f975', 'Azure Event Hubs Data Sender', ['Microsoft.EventHub/*/eventhubs/read'], [], ['Microsoft.EventHub/namespaces/messages/send/action']),
  ];
  return { list: () => all, get: (id) => all.find((r) => r.id.toLowerCase() === id.toLowerCase()) };
})();

export class InterimRoleAssignments implements RoleAssignments {
  readonly byId = new Map<string, RoleAssignment>();
  constructor(
    private readonly tenancy: Tenancy,
    private readonly principals: Principals,
  ) {
    const scope = `/subscriptions/${tenancy.subscriptionId}`;
    const name = '00000000-0000-4000-8000-00000000a0a0';
    const now = new Date().toISOString();
    this.byId.set(`${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`.toLowerCase(), {
      name,
      id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
      scope,
      roleDefinitionId: `${scope}/providers/Microsoft.Authorization/roleDefinitions/${OWNER}`,
      principalId: tenancy.administrator.principalId,
      principalType: 'ServicePrincipal',
      createdOn: now,
      updatedOn: now,
    });
  }
  async get(id: string) {
    return this.byId.get(id.toLowerCase());
  }
  async list(filter: { scope?: string; atScopeAndBelow?: boolean; inherited?: boolean; principalId?: string } = {}) {
    return [...this.byId.values()].filter(
      (a) =>
        (!filter.principalId || a.principalId.toLowerCase() === filter.principalId.toLowerCase()) &&
        (!filter.scope ||
          a.scope.toLowerCase() === filter.scope.toLowerCase() ||
          (filter.atScopeAndBelow && isWithin(a.scope, filter.scope)) ||
          (filter.inherited && isWithin(filter.scope, a.scope))),
    );
  }
  async create(a: Omit<RoleAssignment, 'id' | 'createdOn' | 'updatedOn'>) {
    const roleId = a.roleDefinitionId.split('/').pop() ?? '';
    if (!interimRoleDefinitions.get(roleId)) throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleId}' does not exist.`);
    if (!(await this.principals.get(a.principalId))) {
      throw new ArmError(400, 'PrincipalNotFound', `Principal ${a.principalId} does not exist in the directory ${this.tenancy.tenantId}.`);
    }
    const id = `${a.scope.replace(/\/+$/, '')}/providers/Microsoft.Authorization/roleAssignments/${a.name}`;
    const now = new Date().toISOString();
    const assignment: RoleAssignment = { ...a, id, createdOn: now, updatedOn: now };
    this.byId.set(id.toLowerCase(), assignment);
    return assignment;
  }
  async delete(id: string) {
    const a = this.byId.get(id.toLowerCase());
    this.byId.delete(id.toLowerCase());
    return a;
  }
}

/** Actions with wildcards, as Azure RBAC matches them (case-insensitive; `*` any run of characters). */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i');
  return re.test(action);
}

export class InterimAccess implements AccessControl {
  constructor(private readonly assignments: InterimRoleAssignments) {}
  async allows(principalId: string, scope: string, operation: string, dataAction = false) {
    for (const a of this.assignments.byId.values()) {
      if (a.principalId.toLowerCase() !== principalId.toLowerCase() || !isWithin(scope, a.scope)) continue;
      const r = interimRoleDefinitions.get(a.roleDefinitionId.split('/').pop() ?? '');
      if (!r) continue;
      const [allow, deny] = dataAction ? [r.dataActions, r.notDataActions] : [r.actions, r.notActions];
      if (allow.some((p) => actionMatches(p, operation)) && !deny.some((p) => actionMatches(p, operation))) return true;
    }
    return false;
  }
}

export class InterimHubIdentities implements HubIdentitySettings {
  private readonly hubs = new Map<string, { system?: Principal; userAssigned: string[] }>();
  constructor(private readonly principals: InterimPrincipals) {}
  async get(hubResourceId: string) {
    const h = this.hubs.get(hubResourceId.toLowerCase());
    const userAssigned = new Map<string, Principal>();
    for (const id of h?.userAssigned ?? []) {
      const p = await this.principals.byResourceId(id);
      if (p) userAssigned.set(id, p);
    }
    return { ...(h?.system ? { systemAssigned: h.system } : {}), userAssigned };
  }
  async setHubIdentity(hubResourceId: string, identity: { system: boolean; userAssigned: string[] }) {
    const key = hubResourceId.toLowerCase();
    const current = this.hubs.get(key);
    let system = current?.system;
    if (identity.system && !system) system = await this.principals.create('systemAssigned', hubResourceId, hubResourceId.split('/').pop()!);
    if (!identity.system && system) {
      await this.principals.delete(system.principalId);
      system = undefined;
    }
    this.hubs.set(key, { ...(system ? { system } : {}), userAssigned: [...identity.userAssigned] });
    return this.get(hubResourceId);
  }
}

/**
 * The hubs of the process, and hubs created at run time through the existing startup code, each on
 * an address of its own from `allocateAddress` (the hosting area serves them on shared ports by name).
 */
export class InterimHubHost implements HubHost {
  constructor(
    private readonly primary: () => RunningHub,
    private readonly startExtra: (spec: { hubName: string; hostName: string; bind: string }) => Promise<RunningHub>,
    private readonly allocateAddress: (hostName: string) => Promise<string>,
    private readonly logger: Logger,
  ) {}
  list() {
    return [this.primary(), ...this.primary().hubs];
  }
  get(hubName: string) {
    return this.list().find((h) => h.config.hubName.toLowerCase() === hubName.toLowerCase());
  }
  async create(spec: { hubName: string; hostName: string }) {
    const existing = this.get(spec.hubName);
    if (existing) return existing;
    const bind = await this.allocateAddress(spec.hostName);
    this.logger.info({ hub: spec.hubName, hostName: spec.hostName, bind }, 'starting a hub created through the control plane');
    const hub = await this.startExtra({ ...spec, bind });
    this.primary().hubs.push(hub);
    return hub;
  }
  async remove(hubName: string) {
    const hubs = this.primary().hubs;
    const i = hubs.findIndex((h) => h.config.hubName.toLowerCase() === hubName.toLowerCase());
    if (i < 0) return;
    const [hub] = hubs.splice(i, 1);
    await hub!.close();
    const { rmSync } = await import('node:fs');
    rmSync(hub!.config.dataDir, { recursive: true, force: true });
  }
}

/** INTERIM: the identity services the control plane is composed from (→ identityArea(deps)). */
export function interimIdentity(store: ControlResourceStore) {
  const tenancy = interimTenancy(store);
  const principals = new InterimPrincipals(tenancy);
  const roleAssignments = new InterimRoleAssignments(tenancy, principals);
  return {
    tenancy,
    principals,
    tokens: new InterimTokenService(tenancy.tenantId, principals),
    roleAssignments,
    roleDefinitions: interimRoleDefinitions,
    access: new InterimAccess(roleAssignments),
    hubIdentities: new InterimHubIdentities(principals),
  };
}
