/** `Microsoft.ManagedIdentity/userAssignedIdentities`: standalone identities, each with its own principal. */
import type { Principals, Tenancy } from '../identity/types.js';
import type { ControlResourceStore, ResourceRecord } from '../store/control.js';
import { armErrors } from './errors.js';
import { groupName, parseTags } from './iotHubs/iotHubs.js';
import type { ArmResource, ResourceTypeProvider } from './provider.js';
import { resourceId, type ResourceId } from './resourceIds.js';

export const UAI_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';

export class UserAssignedIdentities implements ResourceTypeProvider {
  readonly namespace = 'Microsoft.ManagedIdentity';
  readonly type = 'userAssignedIdentities';
  readonly apiVersions = ['2024-11-30', '2023-07-31-preview', '2023-01-31', '2022-01-31-preview', '2021-09-30-preview', '2018-11-30'];

  constructor(
    private readonly deps: {
      store: ControlResourceStore;
      tenancy: Tenancy;
      principals: Principals;
      /** The hubs an identity is attached to (it cannot be deleted while attached). */
      attachedTo: (uaiId: string) => string[];
    },
  ) {}

  private record(id: ResourceId): ResourceRecord | undefined {
    if (id.children.length) return undefined;
    return this.deps.store.resources.get(resourceId(id.subscriptionId, id.resourceGroup, this.namespace, this.type, id.name));
  }

  private async toArm(r: ResourceRecord): Promise<ArmResource> {
    const p = await this.deps.principals.byResourceId(r.id);
    return {
      id: r.id,
      name: r.name,
      type: UAI_TYPE,
      location: r.location,
      tags: r.tags,
      properties: { tenantId: this.deps.tenancy.tenantId, principalId: p?.principalId, clientId: p?.clientId },
      systemData: { createdAt: r.createdAt, lastModifiedAt: r.updatedAt },
    };
  }

  async get(id: ResourceId) {
    const r = this.record(id);
    return r ? this.toArm(r) : undefined;
  }

  async list(filter: { resourceGroup?: string }) {
    return Promise.all(this.deps.store.resources.list({ type: UAI_TYPE, ...filter }).map((r) => this.toArm(r)));
  }

  async put(id: ResourceId, body: Record<string, unknown>) {
    const { store, tenancy, principals } = this.deps;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/.test(id.name)) {
      throw armErrors.badRequest('InvalidResourceName', `The resource name '${id.name}' is invalid: 3-128 letters, digits, hyphens and underscores, starting with a letter or digit.`);
    }
    const existing = this.record(id);
    const tags = parseTags(body.tags);
    const location = typeof body.location === 'string' && body.location ? body.location : undefined;
    if (!location) throw armErrors.invalidContent("The 'location' of the identity is required.");
    if (body.properties !== undefined && (typeof body.properties !== 'object' || body.properties === null)) throw armErrors.invalidContent("'properties' must be an object.");
    const isolation = (body.properties as Record<string, unknown> | undefined)?.isolationScope;
    if (isolation !== undefined && isolation !== null && isolation !== 'None') throw armErrors.notSupported('properties.isolationScope', isolation);
    const now = new Date().toISOString();
    const fullId = existing?.id ?? resourceId(tenancy.subscriptionId, groupName(store, id.resourceGroup), this.namespace, this.type, id.name);
    const record: ResourceRecord = existing
      ? { ...existing, tags, updatedAt: now }
      : { id: fullId, type: UAI_TYPE, resourceGroup: groupName(store, id.resourceGroup), name: id.name, location, tags, body: {}, etag: '', createdAt: now, updatedAt: now };
    if (!existing) await principals.create('userAssigned', fullId, id.name);
    store.resources.put(record);
    return { resource: await this.toArm(record), created: !existing };
  }

  async patch(id: ResourceId, body: Record<string, unknown>) {
    const r = this.record(id);
    if (!r) throw armErrors.resourceNotFound(UAI_TYPE, id.name, id.resourceGroup);
    const updated = { ...r, ...(body.tags !== undefined ? { tags: parseTags(body.tags) } : {}), updatedAt: new Date().toISOString() };
    this.deps.store.resources.put(updated);
    return this.toArm(updated);
  }

  async delete(id: ResourceId) {
    const r = this.record(id);
    if (!r) return false;
    const hubs = this.deps.attachedTo(r.id);
    if (hubs.length) {
      throw armErrors.conflict('IdentityInUse', `The identity '${r.id}' is attached to ${hubs.join(', ')}; detach it from the hub first (Fleethub refuses what Azure would leave dangling).`);
    }
    const p = await this.deps.principals.byResourceId(r.id);
    this.deps.store.resources.delete(r.id);
    if (p) await this.deps.principals.delete(p.principalId);
    return true;
  }
}
