import { errors, HubError } from '../../core/errors.js';
import { newEtag } from '../../core/ids.js';
import type { ConfigurationStore, DeviceStore, ModuleStore } from '../../store/index.js';
import { parseTargetCondition } from '../conditions/targetCondition.js';
import { replacementPatch, valuesOf } from '../twins/document.js';
import type { Twins } from '../twins/twins.js';
import type { JsonObject } from '../twins/types.js';
import { segmentsOf, setAt } from './twinContent.js';
import type { Configuration, ConfigurationMetricResults, StoredConfiguration } from './types.js';
import { CONFIGURATION_LIMITS, checkConfigurationId, parseConfigurationBody } from './validation.js';

/** `If-Match`: absent = create, '*' = update whatever is stored, else the stored etag. */
export type ConfigurationIfMatch = undefined | '*' | string;

const notFound = (id: string) => new HubError('ConfigurationNotFound', `Configuration '${id}' not found`);

/**
 * IoT Hub's configurations (automatic device and module management): the resource's CRUD and
 * applying an edge deployment's modulesContent to one device. Applying configurations to the
 * twins they target is `ConfigurationEvaluation`'s work, which `changed` wakes up.
 */
export class Configurations {
  constructor(
    private readonly store: ConfigurationStore,
    private readonly devices: DeviceStore,
    private readonly modules: ModuleStore,
    private readonly twins: Twins,
    private readonly changed: () => void = () => undefined,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(top?: number): Promise<Configuration[]> {
    const all = await this.store.list();
    return all.slice(0, top ?? CONFIGURATION_LIMITS.perHub).map(({ configuration, results }) => present(configuration, results));
  }

  async get(id: string): Promise<Configuration> {
    const found = await this.store.get(id);
    if (!found) throw notFound(id);
    return present(found.configuration, found.results);
  }

  /** PUT /configurations/{id}: create without If-Match, update with it. */
  async put(id: string, body: unknown, ifMatch: ConfigurationIfMatch): Promise<Configuration> {
    const input = parseConfigurationBody(id, body);
    const stamp = this.now().toISOString();
    if (ifMatch === undefined) {
      const configuration: StoredConfiguration = {
        id,
        schemaVersion: input.schemaVersion,
        labels: input.labels,
        content: input.content,
        targetCondition: input.targetCondition,
        createdTimeUtc: stamp,
        lastUpdatedTimeUtc: stamp,
        priority: input.priority,
        metrics: { queries: input.metricQueries },
        etag: newEtag(),
      };
      const result = await this.store.insert(configuration, CONFIGURATION_LIMITS.perHub);
      if (result === 'exists') throw new HubError('ConfigurationAlreadyExists', `Configuration '${id}' already exists`);
      if (result === 'full') throw new HubError('IotHubQuotaExceeded', `The hub has ${CONFIGURATION_LIMITS.perHub} configurations, the most it can hold`);
      this.changed();
      return present(configuration);
    }
    const found = await this.store.get(id);
    if (!found) throw notFound(id);
    const stored = found.configuration;
    if (ifMatch !== '*' && ifMatch !== stored.etag) throw errors.preconditionFailed(`Configuration '${id}'`);
    if (!sameJson(stored.content, input.content)) throw errors.argument('The content of a configuration cannot be changed; create a new configuration');
    const updated: StoredConfiguration = {
      ...stored,
      labels: input.labels,
      targetCondition: input.targetCondition,
      priority: input.priority,
      metrics: { queries: input.metricQueries },
      lastUpdatedTimeUtc: stamp,
      etag: newEtag(),
    };
    const result = await this.store.replace(updated, ifMatch === '*' ? undefined : ifMatch);
    if (result === 'notFound') throw notFound(id);
    if (result === 'etagMismatch') throw errors.preconditionFailed(`Configuration '${id}'`);
    this.changed();
    return present(updated, found.results);
  }

  async delete(id: string, ifMatch: ConfigurationIfMatch): Promise<void> {
    checkConfigurationId(id);
    const result = await this.store.delete(id, ifMatch === '*' ? undefined : ifMatch);
    if (result === 'notFound') throw notFound(id);
    if (result === 'etagMismatch') throw errors.preconditionFailed(`Configuration '${id}'`);
    this.changed();
  }

  /**
   * POST /devices/{id}/applyConfigurationContent: writes an edge deployment's modulesContent into
   * the twins of the device's modules that exist (`{"properties.desired": {…}}` replaces a
   * module's desired properties, a deeper path sets that property). Modules that do not exist are
   * left out: IoT Edge's agent creates module identities, and Fleethub does not run one.
   */
  async applyOnEdgeDevice(deviceId: string, body: unknown): Promise<void> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The configuration content must be a JSON object');
    const modulesContent = (body as Record<string, unknown>).modulesContent;
    if (typeof modulesContent !== 'object' || modulesContent === null || Array.isArray(modulesContent)) {
      throw errors.argument('modulesContent is required: the content applied to an edge device is its modules\' desired properties');
    }
    const { content } = parseConfigurationBody('apply', { content: { modulesContent } });
    const device = await this.devices.get(deviceId);
    if (!device) throw errors.deviceNotFound(deviceId);
    if (!device.capabilities.iotEdge) throw errors.argument(`Device '${deviceId}' is not an IoT Edge device`);
    for (const [moduleId, paths] of Object.entries(content.modulesContent ?? {})) {
      if (!(await this.modules.get(deviceId, moduleId))) continue;
      await this.twins.applyConfigurations(deviceId, moduleId, (state) => {
        const current = valuesOf(state.desired);
        let after: JsonObject = structuredClone(current);
        for (const [path, value] of Object.entries(paths)) {
          const segments = segmentsOf(path);
          if (segments.length === 0) after = structuredClone(value as JsonObject);
          else setAt(after, segments, value);
        }
        return { configurations: state.configurations, configurationContent: state.configurationContent, desiredPatch: replacementPatchDeep(current, after) };
      });
    }
  }
}

/** A merge patch from `before` to `after` at the top level (whole members replaced). */
function replacementPatchDeep(before: JsonObject, after: JsonObject): JsonObject {
  const patch = replacementPatch(before, after);
  for (const k of Object.keys(patch)) if (JSON.stringify(patch[k]) === JSON.stringify(before[k])) delete patch[k];
  // A member replaced by an object must lose the members it no longer has: null them inside.
  for (const [k, v] of Object.entries(patch)) {
    const old = before[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && old && typeof old === 'object' && !Array.isArray(old)) {
      patch[k] = replacementPatchDeep(old as JsonObject, v as JsonObject);
    }
  }
  return patch;
}

function sameJson(a: unknown, b: unknown): boolean {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, canonical(x)]))
    : v;
  const empty = (c: unknown) => Object.fromEntries(Object.entries((c ?? {}) as object).filter(([, v]) => v && Object.keys(v).length));
  return JSON.stringify(canonical(empty(a))) === JSON.stringify(canonical(empty(b)));
}

/** The metric queries IoT Hub derives from a configuration (targeted and applied twins). */
export function systemMetricQueries(c: Pick<StoredConfiguration, 'id' | 'targetCondition'>): Record<string, string> {
  const target = parseTargetCondition(c.targetCondition);
  const select = target.collection === 'devices' ? 'select deviceId from devices' : 'select deviceId, moduleId from devices.modules';
  return {
    targetedCount: target.whereText ? `${select} where ${target.whereText}` : select,
    appliedCount: `${select} where configurations.[[${c.id}]].status = 'Applied'`,
  };
}

function present(c: StoredConfiguration, results?: ConfigurationMetricResults): Configuration {
  const system = systemMetricQueries(c);
  return {
    id: c.id,
    schemaVersion: c.schemaVersion,
    labels: c.labels,
    content: c.content,
    targetCondition: c.targetCondition,
    createdTimeUtc: c.createdTimeUtc,
    lastUpdatedTimeUtc: c.lastUpdatedTimeUtc,
    priority: c.priority,
    systemMetrics: {
      results: Object.fromEntries(Object.keys(system).map((k) => [k, results?.system[k] ?? 0])),
      queries: system,
    },
    metrics: {
      results: Object.fromEntries(Object.keys(c.metrics.queries).map((k) => [k, results?.custom[k] ?? 0])),
      queries: c.metrics.queries,
    },
    etag: c.etag,
  };
}
