/**
 * The control plane: Fleethub's one subscription, its resource groups and the resource types of
 * its providers, with ARM's authorization in front of every operation.
 */
import type { AccessControl, Principal, Tenancy } from '../identity/types.js';
import type { ControlResourceStore, ResourceGroupRecord } from '../store/control.js';
import { ArmError, armErrors } from './errors.js';
import type { Authorization } from './authorization.js';
import type { ArmResource, ResourceTypeProvider } from './provider.js';
import { parseResourceId, type ResourceId } from './resourceIds.js';
import { parseTags } from './iotHubs/iotHubs.js';

/** Namespaces the subscription lists, with their resource types (besides the providers' own). */
const FIXED_PROVIDERS: Record<string, { resourceType: string; apiVersions: string[] }[]> = {
  'Microsoft.Resources': [
    { resourceType: 'resourceGroups', apiVersions: ['2025-04-01', '2024-03-01', '2022-09-01', '2021-04-01', '2020-06-01'] },
    { resourceType: 'subscriptions', apiVersions: ['2022-12-01', '2021-01-01', '2020-01-01'] },
    { resourceType: 'tenants', apiVersions: ['2022-12-01', '2021-01-01', '2020-01-01'] },
  ],
  'Microsoft.Authorization': [
    { resourceType: 'roleAssignments', apiVersions: ['2022-04-01', '2020-10-01-preview', '2020-04-01-preview', '2018-09-01-preview', '2015-07-01'] },
    { resourceType: 'roleDefinitions', apiVersions: ['2022-05-01-preview', '2022-04-01', '2018-01-01-preview', '2015-07-01'] },
  ],
};

export class ControlPlane {
  readonly providers: ResourceTypeProvider[];
  constructor(
    readonly deps: {
      tenancy: Tenancy;
      store: ControlResourceStore;
      access: AccessControl;
      authorization: Authorization;
      providers: ResourceTypeProvider[];
    },
  ) {
    this.providers = deps.providers;
  }

  get tenancy() {
    return this.deps.tenancy;
  }
  get authorization() {
    return this.deps.authorization;
  }
  get subscriptionScope() {
    return `/subscriptions/${this.deps.tenancy.subscriptionId}`;
  }

  /** The default resource group exists from the first start (it holds the configured hubs). */
  ensureDefaultGroup(): void {
    const { store, tenancy } = this.deps;
    if (!store.groups.get(tenancy.defaultResourceGroup)) {
      store.groups.put({ name: tenancy.defaultResourceGroup, location: tenancy.location, tags: {}, managedBy: 'fleethub', createdAt: new Date().toISOString() });
    }
  }

  /** ARM's 403 unless the caller holds a role that allows `action` at `scope` (or above it). */
  async authorize(caller: Principal, scope: string, action: string): Promise<void> {
    if (await this.deps.access.allows(caller.principalId, scope, action)) return;
    throw new ArmError(
      403,
      'AuthorizationFailed',
      `The client '${caller.principalId}' with object id '${caller.principalId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    );
  }

  checkSubscription(s: string): void {
    if (s.toLowerCase() !== this.deps.tenancy.subscriptionId.toLowerCase()) throw armErrors.subscriptionNotFound(s);
  }

  subscription() {
    const t = this.deps.tenancy;
    return {
      id: `/subscriptions/${t.subscriptionId}`,
      authorizationSource: 'RoleBased',
      managedByTenants: [],
      subscriptionId: t.subscriptionId,
      tenantId: t.tenantId,
      displayName: t.subscriptionDisplayName,
      state: 'Enabled',
      subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'Fleethub_Local', spendingLimit: 'Off' },
    };
  }

  providerList() {
    const byNamespace = new Map<string, { resourceType: string; apiVersions: string[] }[]>(Object.entries(FIXED_PROVIDERS).map(([k, v]) => [k, [...v]]));
    for (const p of this.providers) {
      const list = byNamespace.get(p.namespace) ?? [];
      list.push({ resourceType: p.type, apiVersions: p.apiVersions });
      byNamespace.set(p.namespace, list);
    }
    return [...byNamespace.entries()].map(([namespace, types]) => ({
      id: `${this.subscriptionScope}/providers/${namespace}`,
      namespace,
      registrationState: 'Registered',
      registrationPolicy: 'RegistrationRequired',
      resourceTypes: types.map((t) => ({ resourceType: t.resourceType, locations: [this.deps.tenancy.location], apiVersions: t.apiVersions, capabilities: 'None' })),
    }));
  }

  /** The resource type of a namespace, or ARM's errors for an unknown one. */
  providerFor(namespace: string, type: string, apiVersion: string): ResourceTypeProvider {
    const p = this.providers.find((x) => x.namespace.toLowerCase() === namespace.toLowerCase() && x.type.toLowerCase() === type.toLowerCase());
    if (!p) {
      if (!this.providers.some((x) => x.namespace.toLowerCase() === namespace.toLowerCase())) {
        throw armErrors.badRequest('NoRegisteredProviderFound', `No registered resource provider found for namespace '${namespace}' (Fleethub has: ${[...new Set(this.providers.map((x) => x.namespace))].join(', ')}).`);
      }
      throw armErrors.badRequest('InvalidResourceType', `The resource type '${type}' could not be found in the namespace '${namespace}' for api version '${apiVersion}'.`);
    }
    if (!p.apiVersions.includes(apiVersion)) {
      throw armErrors.badRequest(
        'NoRegisteredProviderFound',
        `No registered resource provider found for location '${this.deps.tenancy.location}' and API version '${apiVersion}' for type '${p.type}'. The supported api-versions are '${p.apiVersions.join(', ')}'.`,
      );
    }
    return p;
  }

  groupToArm(g: ResourceGroupRecord) {
    return {
      id: `${this.subscriptionScope}/resourceGroups/${g.name}`,
      name: g.name,
      type: 'Microsoft.Resources/resourceGroups',
      location: g.location,
      tags: g.tags,
      ...(g.managedBy ? { managedBy: g.managedBy } : {}),
      properties: { provisioningState: 'Succeeded' },
    };
  }

  group(name: string) {
    const g = this.deps.store.groups.get(name);
    if (!g) throw armErrors.resourceGroupNotFound(name);
    return g;
  }

  listGroups() {
    return this.deps.store.groups.list().map((g) => this.groupToArm(g));
  }

  putGroup(name: string, body: Record<string, unknown>) {
    if (!/^[-\w._()]{1,90}$/.test(name) || name.endsWith('.')) {
      throw armErrors.badRequest('InvalidResourceGroup', `The provided resource group name '${name}' has these invalid characters or length: letters, digits, -, _, ., ( and ) up to 90, not ending in a period.`);
    }
    const existing = this.deps.store.groups.get(name);
    const location = typeof body.location === 'string' && body.location ? body.location : undefined;
    if (!location) throw armErrors.badRequest('LocationRequired', "The location property is required for this definition.");
    if (existing && existing.location.toLowerCase() !== location.toLowerCase()) {
      throw armErrors.conflict('InvalidResourceGroupLocation', `Invalid resource group location '${location}'. The Resource group already exists in location '${existing.location}'.`);
    }
    const group: ResourceGroupRecord = existing
      ? { ...existing, tags: parseTags(body.tags) }
      : { name, location, tags: parseTags(body.tags), createdAt: new Date().toISOString() };
    this.deps.store.groups.put(group);
    return { created: !existing, body: this.groupToArm(group) };
  }

  patchGroup(name: string, body: Record<string, unknown>) {
    const g = this.group(name);
    const updated = { ...g, ...(body.tags !== undefined ? { tags: parseTags(body.tags) } : {}) };
    this.deps.store.groups.put(updated);
    return this.groupToArm(updated);
  }

  /** Deletes what the group holds, then the group (ARM does it as a long-running operation). */
  async deleteGroup(name: string): Promise<boolean> {
    const g = this.deps.store.groups.get(name);
    if (!g) return false;
    if (g.managedBy === 'fleethub') {
      throw armErrors.badRequest('CannotDeleteDefaultResourceGroup', `The resource group '${g.name}' holds the hubs of Fleethub's configuration and cannot be deleted.`);
    }
    for (const r of this.deps.store.resources.list({ resourceGroup: name })) {
      const id = parseResourceId(r.id)!;
      const p = this.providers.find((x) => x.namespace.toLowerCase() === id.namespace.toLowerCase() && x.type.toLowerCase() === id.type.toLowerCase());
      await p?.delete(id);
    }
    this.deps.store.groups.delete(name);
    return true;
  }

  async listResources(resourceGroup?: string): Promise<ArmResource[]> {
    const all = await Promise.all(this.providers.map((p) => p.list(resourceGroup ? { resourceGroup } : {})));
    return all.flat().map((r) => ({ id: r.id, name: r.name, type: r.type, ...(r.location ? { location: r.location } : {}), ...(r.tags ? { tags: r.tags } : {}), ...(r.sku ? { sku: r.sku } : {}), ...(r.identity ? { identity: r.identity } : {}) }));
  }

  /** Whether a scope names something that exists (role assignments need one). */
  async scopeExists(scope: string): Promise<boolean> {
    const s = scope.split('/').filter(Boolean);
    if (s.length === 0) return true;
    if (s[0]!.toLowerCase() !== 'subscriptions' || !s[1] || s[1].toLowerCase() !== this.deps.tenancy.subscriptionId.toLowerCase()) return false;
    if (s.length === 2) return true;
    if (s[2]!.toLowerCase() !== 'resourcegroups' || !s[3] || !this.deps.store.groups.get(s[3])) return false;
    if (s.length === 4) return true;
    const id = parseResourceId(scope);
    if (!id) return false;
    const p = this.providers.find((x) => x.namespace.toLowerCase() === id.namespace.toLowerCase() && x.type.toLowerCase() === id.type.toLowerCase());
    if (!p || !(await p.get({ ...id, children: [] } as ResourceId))) return false;
    // A child resource (an event hub, a queue) as a scope: it must exist too.
    if (id.children.length === 0 || !p.child || id.children.length % 2 !== 0) return id.children.length === 0;
    try {
      const answer = await p.child('GET', id, undefined);
      return answer?.status === 200;
    } catch (e) {
      if (e instanceof ArmError && e.status === 404) return false;
      throw e;
    }
  }
}
