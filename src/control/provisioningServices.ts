/**
 * `Microsoft.Devices/provisioningServices`: the process's Device Provisioning Service (one, beside
 * the primary hub, named `{primary hub name}-dps`), with its id scope, linked hubs, allocation
 * policy, keys and certificates. Its settings come from the configuration (`dps.*`) for now: a PUT
 * that changes them is refused (tags may change).
 */
import type { Tenancy } from '../identity/types.js';
import type { RunningHub } from '../main.js';
import type { ControlResourceStore, ResourceRecord } from '../store/control.js';
import { openSqliteDpsStore } from '../store/sqlite/dps.js';
import { prepareDps } from '../dps/setup.js';
import { ArmError, armErrors } from './errors.js';
import { parseTags } from './iotHubs/iotHubs.js';
import { nameAvailability, type ArmResource, type ResourceTypeProvider } from './provider.js';
import { resourceId, type ResourceId } from './resourceIds.js';

export const DPS_TYPE = 'Microsoft.Devices/provisioningServices';
const POLICIES: Record<string, string> = { hashed: 'Hashed', geolatency: 'GeoLatency', static: 'Static', custom: 'Custom' };

export class ProvisioningServices implements ResourceTypeProvider {
  readonly namespace = 'Microsoft.Devices';
  readonly type = 'provisioningServices';
  readonly apiVersions = ['2025-02-01-preview', '2022-12-12', '2022-02-05', '2021-10-15', '2020-03-01'];

  constructor(private readonly deps: { store: ControlResourceStore; tenancy: Tenancy; primary: () => RunningHub | undefined }) {}

  nameOf(primary: RunningHub) {
    return `${primary.config.hubName}-dps`;
  }

  /** The record of the DPS (created at first start in the default group). */
  sync(): void {
    const primary = this.deps.primary();
    if (!primary) return;
    const { store, tenancy } = this.deps;
    const id = resourceId(tenancy.subscriptionId, tenancy.defaultResourceGroup, this.namespace, this.type, this.nameOf(primary));
    if (store.resources.get(id)) return;
    const now = new Date().toISOString();
    store.resources.put({ id, type: DPS_TYPE, resourceGroup: tenancy.defaultResourceGroup, name: this.nameOf(primary), location: tenancy.location, tags: {}, body: {}, etag: 'AAAAAAAAAAE=', createdAt: now, updatedAt: now });
  }

  private record(id: ResourceId): ResourceRecord | undefined {
    if (id.children.length && id.children.length > 0) return undefined;
    return this.deps.store.resources.get(resourceId(id.subscriptionId, id.resourceGroup, this.namespace, this.type, id.name));
  }

  private async dps() {
    const primary = this.deps.primary();
    if (!primary) throw new ArmError(500, 'InternalServerError', 'The provisioning service is not running.');
    const store = openSqliteDpsStore(primary.store.db);
    return { store, instance: await prepareDps(store, primary.config), primary };
  }

  private async toArm(r: ResourceRecord): Promise<ArmResource> {
    const { instance } = await this.dps();
    return {
      id: r.id,
      name: r.name,
      type: DPS_TYPE,
      location: r.location,
      tags: r.tags,
      etag: r.etag,
      sku: { name: 'S1', tier: 'Standard', capacity: 1 },
      properties: {
        state: 'Active',
        provisioningState: 'Succeeded',
        publicNetworkAccess: 'Enabled',
        ipFilterRules: [],
        privateEndpointConnections: [],
        enableDataResidency: false,
        iotHubs: instance.linkedHubs.map((h) => ({
          applyAllocationPolicy: h.applyAllocationPolicy,
          allocationWeight: h.allocationWeight,
          name: h.hostName,
          // Azure masks the key in what it returns.
          connectionString: `HostName=${h.hostName};SharedAccessKeyName=iothubowner;SharedAccessKey=****`,
          location: r.location,
        })),
        allocationPolicy: POLICIES[instance.allocationPolicy.toLowerCase()] ?? instance.allocationPolicy,
        serviceOperationsHostName: instance.hostName,
        deviceProvisioningHostName: instance.deviceEndpoint,
        idScope: instance.idScope,
      },
      systemData: { createdAt: r.createdAt, lastModifiedAt: r.updatedAt },
    };
  }

  async get(id: ResourceId) {
    const r = this.record(id);
    return r ? this.toArm(r) : undefined;
  }

  /**
   * `POST providers/Microsoft.Devices/checkProvisioningServiceNameAvailability` (`{"name"}`), which
   * `az iot dps create` asks first: the name of the one provisioning service is taken; any other
   * valid name is available (a PUT of it is still refused: Fleethub runs one).
   */
  async providerAction(action: string, body: Record<string, unknown>) {
    if (action !== 'checkprovisioningservicenameavailability') return undefined;
    return nameAvailability(body, 'provisioning service', {
      invalid: (name) =>
        /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{1,62}[a-zA-Z0-9])$/.test(name)
          ? undefined
          : `'${name}' is not a valid provisioning service name: 3-64 letters, digits and hyphens, starting and ending with a letter or digit.`,
      taken: (name) => this.deps.store.resources.list({ type: DPS_TYPE }).some((r) => r.name.toLowerCase() === name.toLowerCase()),
      takenMessage: (name) => `The provisioning service name '${name}' is not available`,
    });
  }

  async list(filter: { resourceGroup?: string }) {
    return Promise.all(this.deps.store.resources.list({ type: DPS_TYPE, ...filter }).map((r) => this.toArm(r)));
  }

  async put(id: ResourceId, body: Record<string, unknown>) {
    const r = this.record(id);
    if (!r) {
      throw armErrors.badRequest('FeatureNotSupported', `Fleethub runs one provisioning service (beside its primary hub); '${id.name}' cannot be created. See docs/compatibility.md.`);
    }
    const current = await this.toArm(r);
    const p = (body.properties ?? {}) as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw armErrors.invalidContent("'properties' must be an object.");
    const cur = current.properties as { allocationPolicy: string; iotHubs: { name: string; allocationWeight: number; applyAllocationPolicy: boolean }[] };
    if (p.allocationPolicy !== undefined && String(p.allocationPolicy).toLowerCase() !== cur.allocationPolicy.toLowerCase()) {
      throw armErrors.badRequest('FeatureNotSupported', `Changing 'properties.allocationPolicy' through the control plane is not supported yet: set dps.allocationPolicy in Fleethub's configuration.`);
    }
    if (p.iotHubs !== undefined) {
      if (!Array.isArray(p.iotHubs)) throw armErrors.invalidContent("'properties.iotHubs' must be a list.");
      const key = (h: { name?: unknown; allocationWeight?: unknown; applyAllocationPolicy?: unknown }) => `${String(h.name).toLowerCase()}|${h.allocationWeight ?? 1}|${h.applyAllocationPolicy ?? true}`;
      if ((p.iotHubs as Record<string, unknown>[]).map(key).sort().join(',') !== cur.iotHubs.map(key).sort().join(',')) {
        throw armErrors.badRequest('FeatureNotSupported', "Changing 'properties.iotHubs' (linked hubs) through the control plane is not supported yet: set dps.linkedHubs in Fleethub's configuration.");
      }
    }
    const updated = { ...r, tags: parseTags(body.tags), updatedAt: new Date().toISOString() };
    this.deps.store.resources.put(updated);
    return { resource: await this.toArm(updated), created: false };
  }

  async patch(id: ResourceId, body: Record<string, unknown>) {
    const r = this.record(id);
    if (!r) throw armErrors.resourceNotFound(DPS_TYPE, id.name, id.resourceGroup);
    for (const k of Object.keys(body)) if (k !== 'tags') throw armErrors.invalidContent(`A provisioning service's PATCH updates 'tags' only (not '${k}').`);
    const updated = { ...r, tags: parseTags(body.tags), updatedAt: new Date().toISOString() };
    this.deps.store.resources.put(updated);
    return this.toArm(updated);
  }

  async delete(id: ResourceId): Promise<boolean> {
    if (!this.record(id)) return false;
    throw armErrors.badRequest('FeatureNotSupported', "The provisioning service runs beside Fleethub's primary hub and cannot be deleted.");
  }

  async child(method: string, id: ResourceId) {
    const r = this.record({ ...id, children: [] });
    if (!r) throw armErrors.resourceNotFound(DPS_TYPE, id.name, id.resourceGroup);
    const c = id.children.map((x) => x.toLowerCase());
    const { store } = await this.dps();
    const toArm = (p: { keyName: string; primaryKey: string; secondaryKey: string; rights: string[] | string }) => ({
      keyName: p.keyName,
      primaryKey: p.primaryKey,
      secondaryKey: p.secondaryKey,
      rights: Array.isArray(p.rights) ? p.rights.join(', ') : p.rights,
    });
    if (method === 'POST' && c.length === 1 && c[0] === 'listkeys') {
      return { status: 200, body: { value: (await store.policies.list()).map(toArm) } };
    }
    if (method === 'POST' && c.length === 3 && c[0] === 'keys' && c[2] === 'listkeys') {
      const p = (await store.policies.list()).find((x) => x.keyName.toLowerCase() === c[1]);
      if (!p) throw armErrors.notFound(`The shared access policy '${id.children[1]}' does not exist.`);
      return { status: 200, body: toArm(p) };
    }
    if (method === 'GET' && c.length === 1 && c[0] === 'certificates') {
      const certs = await store.certificates.list();
      return { status: 200, body: { value: certs.map((x) => ({ id: `${r.id}/certificates/${x.name}`, name: x.name, type: 'Microsoft.Devices/provisioningServices/Certificates', etag: x.etag, properties: { subject: x.subject, thumbprint: x.thumbprint, isVerified: x.isVerified, expiry: x.expiry, created: x.created, certificate: x.certificate } })) } };
    }
    return undefined;
  }
}
