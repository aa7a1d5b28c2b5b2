import { errors, HubError } from '../../core/errors.js';
import type { DeviceStore, ModuleStore, TwinStore } from '../../store/index.js';
import type { Device, Module } from '../registry/types.js';
import {
  checkSectionSize,
  mergeMetadata,
  mergePatch,
  replacementPatch,
  validateSection,
  valuesOf,
  withMetadata,
} from './document.js';
import type { DesiredPropertiesChange, JsonObject, Twin, TwinChange, TwinState } from './types.js';

/** `If-Match` for twins: absent or '*' = unconditional, else the twin's etag. */
export type TwinIfMatch = undefined | '*' | string;

/** Concurrent writers to one twin retry this often before giving up (each retry re-reads). */
const MAX_WRITE_ATTEMPTS = 8;

/** IoT Hub's twin etag: the twin version as an 8-byte big-endian number, base64. */
export function twinEtag(version: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(version));
  return b.toString('base64');
}

type DesiredListener = (change: DesiredPropertiesChange) => void;
type ChangeListener = (change: TwinChange) => void;

/**
 * Device and module twins: the service's view (tags, desired, the whole document) and the
 * device's view (desired + reported, reported patches). Protocol-agnostic; devices learn of
 * desired changes through `onDesiredPropertiesChange`, whatever protocol they speak.
 */
export class Twins {
  private readonly desiredListeners = new Set<DesiredListener>();
  private readonly changeListeners = new Set<ChangeListener>();

  constructor(
    private readonly twins: TwinStore,
    private readonly devices: DeviceStore,
    private readonly modules: ModuleStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  onDesiredPropertiesChange(listener: DesiredListener): () => void {
    this.desiredListeners.add(listener);
    return () => this.desiredListeners.delete(listener);
  }

  /**
   * Every committed change of tags, desired or reported properties, whoever made it (service
   * PATCH/PUT, jobs, configurations, bulk import, the device), told right after the commit with the
   * twin's new version; nothing for a write that was refused or changed nothing. Listeners run
   * synchronously and must not throw.
   */
  onTwinChange(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** GET /twins/{id} and the module form. */
  async getTwin(deviceId: string, moduleId?: string): Promise<Twin> {
    const [identity, state] = await Promise.all([this.identity(deviceId, moduleId), this.twins.get(deviceId, moduleId)]);
    if (!state) throw notFound(deviceId, moduleId);
    return toTwin(state, identity);
  }

  /** PATCH /twins/{id}: merges tags and desired properties. */
  async updateTwin(deviceId: string, moduleId: string | undefined, body: unknown, ifMatch: TwinIfMatch): Promise<Twin> {
    const { tags, desired, clearTags, clearDesired } = parseServiceBody(body, 'patch');
    // `tags: null` / `desired: null` in a PATCH remove the whole section, as IoT Hub does.
    return this.serviceWrite(deviceId, moduleId, ifMatch, 'update', (state) => ({
      tags: clearTags ? {} : tags ? mergePatch(state.tags, tags) : undefined,
      desiredPatch: clearDesired ? replacementPatch(valuesOf(state.desired), {}) : desired,
      replaceDesired: clearDesired,
    }));
  }

  /** PUT /twins/{id}: replaces tags and desired properties. */
  async replaceTwin(deviceId: string, moduleId: string | undefined, body: unknown, ifMatch: TwinIfMatch): Promise<Twin> {
    const { tags, desired } = parseServiceBody(body, 'replace');
    return this.serviceWrite(deviceId, moduleId, ifMatch, 'replace', (state) => ({
      tags: mergePatch({}, tags ?? {}),
      desiredPatch: replacementPatch(valuesOf(state.desired), mergePatch({}, desired ?? {})),
      replaceDesired: true,
    }));
  }

  /** What a device asks for with "get twin": desired and reported properties. */
  async getProperties(deviceId: string, moduleId?: string): Promise<{ desired: JsonObject; reported: JsonObject }> {
    const state = await this.twins.get(deviceId, moduleId);
    if (!state) throw notFound(deviceId, moduleId);
    return { desired: strip(state.desired), reported: strip(state.reported) };
  }

  /** A device's reported-properties patch; returns the new reported version. */
  async updateReportedProperties(deviceId: string, moduleId: string | undefined, patch: unknown): Promise<number> {
    const reportedPatch = validateSection(patch, 'reported');
    const { state, previous } = await this.write(deviceId, moduleId, undefined, (current) => {
      const values = mergePatch(valuesOf(current.reported), reportedPatch);
      checkSectionSize(values, 'reported');
      const version = current.reported.$version + 1;
      const stamp = this.now().toISOString();
      return { ...current, reported: withMetadata(values, mergeMetadata(current.reported.$metadata, reportedPatch, stamp), version) };
    });
    if (previous) this.emitChange({ deviceId, moduleId, kind: 'update', twin: state, reported: reportedPatch });
    return state.reported.$version;
  }

  /**
   * Automatic configurations' write: `change` sees the current twin and returns what the
   * configurations make of its desired properties (a merge patch) and bookkeeping, or undefined
   * to leave it. Devices are told of the desired change like any other.
   */
  async applyConfigurations(
    deviceId: string,
    moduleId: string | undefined,
    change: (state: TwinState) => Pick<TwinState, 'configurations' | 'configurationContent'> & { desiredPatch: JsonObject } | undefined,
  ): Promise<void> {
    let notice: DesiredPropertiesChange | undefined;
    const { state, previous } = await this.write(deviceId, moduleId, undefined, (current) => {
      notice = undefined;
      const result = change(current);
      if (!result) return current;
      const next: TwinState = { ...current, configurations: result.configurations, configurationContent: result.configurationContent };
      if (Object.keys(result.desiredPatch).length > 0) {
        const values = mergePatch(valuesOf(current.desired), result.desiredPatch);
        checkSectionSize(values, 'desired');
        const version = current.desired.$version + 1;
        const stamp = this.now().toISOString();
        next.desired = withMetadata(values, mergeMetadata(current.desired.$metadata, result.desiredPatch, stamp, version), version);
        notice = { deviceId, moduleId, patch: { ...result.desiredPatch, $version: version } };
      }
      return next;
    });
    if (notice) this.emitDesired(notice);
    // A write that changed only the configurations' bookkeeping (the twin's `configurations`) is not reported.
    if (previous && notice) this.emitChange({ deviceId, moduleId, kind: 'update', twin: state, desired: withoutVersion(notice.patch) });
  }

  // ---- internals ----

  private async serviceWrite(
    deviceId: string,
    moduleId: string | undefined,
    ifMatch: TwinIfMatch,
    kind: TwinChange['kind'],
    change: (state: TwinState) => { tags?: JsonObject; desiredPatch?: JsonObject; replaceDesired?: boolean },
  ): Promise<Twin> {
    let notice: DesiredPropertiesChange | undefined;
    const { state, previous } = await this.write(deviceId, moduleId, ifMatch, (current) => {
      notice = undefined;
      const { tags, desiredPatch, replaceDesired } = change(current);
      const next: TwinState = { ...current };
      if (tags) {
        checkSectionSize(tags, 'tags');
        next.tags = tags;
      }
      if (desiredPatch && (Object.keys(desiredPatch).length > 0 || replaceDesired)) {
        const values = mergePatch(valuesOf(current.desired), desiredPatch);
        checkSectionSize(values, 'desired');
        const version = current.desired.$version + 1;
        const stamp = this.now().toISOString();
        const metadata = replaceDesired
          ? mergeMetadata({ $lastUpdated: stamp, $lastUpdatedVersion: version }, values, stamp, version)
          : mergeMetadata(current.desired.$metadata, desiredPatch, stamp, version);
        next.desired = withMetadata(values, metadata, version);
        notice = { deviceId, moduleId, patch: { ...desiredPatch, $version: version } };
      }
      return next;
    });
    if (notice) this.emitDesired(notice);
    if (previous) {
      const tags = tagsChange(previous.tags, state.tags);
      this.emitChange({
        deviceId,
        moduleId,
        kind,
        twin: state,
        ...(tags ? { tags } : {}),
        ...(notice ? { desired: withoutVersion(notice.patch) } : {}),
      });
    }
    return toTwin(state, await this.identity(deviceId, moduleId));
  }

  /**
   * Read, change, conditionally write; retried when another writer got there first, unless the
   * caller pinned an etag (then the conflict is theirs to see as PreconditionFailed).
   */
  private async write(
    deviceId: string,
    moduleId: string | undefined,
    ifMatch: TwinIfMatch,
    change: (current: TwinState) => TwinState,
  ): Promise<{ state: TwinState; previous?: TwinState }> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await this.twins.get(deviceId, moduleId);
      if (!current) throw notFound(deviceId, moduleId);
      if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current.etag) throw errors.preconditionFailed('Twin');
      const next = change(current);
      if (next === current || sameContent(next, current)) return { state: current };
      const version = current.version + 1;
      const written: TwinState = { ...next, version, etag: twinEtag(version) };
      const result = await this.twins.replace(written, current.version);
      if (result === 'ok') return { state: written, previous: current };
      if (result === 'notFound') throw notFound(deviceId, moduleId);
      if (ifMatch !== undefined && ifMatch !== '*') throw errors.preconditionFailed('Twin');
    }
    throw new HubError('ThrottlingException', 'The twin is being updated by too many writers at once; retry');
  }

  private emitDesired(change: DesiredPropertiesChange): void {
    for (const listener of this.desiredListeners) {
      try {
        listener(change);
      } catch {
        // A failing subscriber (e.g. a closing connection) must not fail the service call.
      }
    }
  }

  private emitChange(change: TwinChange): void {
    for (const listener of this.changeListeners) {
      try {
        listener(change);
      } catch {
        // An observer never fails the write it observes.
      }
    }
  }

  private async identity(deviceId: string, moduleId?: string): Promise<Device | (Module & { device: Device })> {
    const device = await this.devices.get(deviceId);
    if (!device) throw errors.deviceNotFound(deviceId);
    if (moduleId === undefined) return device;
    const module = await this.modules.get(deviceId, moduleId);
    if (!module) throw errors.moduleNotFound(deviceId, moduleId);
    return { ...module, device };
  }
}

function notFound(deviceId: string, moduleId?: string): HubError {
  return moduleId === undefined ? errors.deviceNotFound(deviceId) : errors.moduleNotFound(deviceId, moduleId);
}

function withoutVersion(patch: JsonObject & { $version: number }): JsonObject {
  const { $version: _v, ...rest } = patch;
  return rest;
}

/** The tags as a merge patch from `before` to `after` (removed keys null); undefined when equal. */
function tagsChange(before: JsonObject, after: JsonObject): JsonObject | undefined {
  const patch: JsonObject = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (JSON.stringify(old) === JSON.stringify(value)) continue;
    const bothObjects = isPlainObject(old) && isPlainObject(value);
    patch[key] = bothObjects ? (tagsChange(old as JsonObject, value as JsonObject) ?? {}) : value;
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameContent(a: TwinState, b: TwinState): boolean {
  return (
    JSON.stringify([a.tags, a.desired, a.reported, a.configurations ?? {}, a.configurationContent ?? {}]) ===
    JSON.stringify([b.tags, b.desired, b.reported, b.configurations ?? {}, b.configurationContent ?? {}])
  );
}

function strip(section: TwinState['desired']): JsonObject {
  const { $metadata: _m, ...rest } = section;
  return rest;
}

/**
 * The service may send tags and desired properties. Read-only parts of a twin (ids, etag, version,
 * `$metadata`, `$version`, status...) are ignored as IoT Hub does, so a twin read with GET can be
 * sent back whole with PUT (its reported properties are ignored too); a PATCH that tries to write
 * reported properties is refused, since only the device writes them.
 */
function parseServiceBody(
  body: unknown,
  kind: 'patch' | 'replace',
): { tags?: JsonObject; desired?: JsonObject; clearTags?: boolean; clearDesired?: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw errors.argument('The twin must be a JSON object');
  const b = body as Record<string, unknown>;
  const out: { tags?: JsonObject; desired?: JsonObject; clearTags?: boolean; clearDesired?: boolean } = {};
  if (b.tags === null) out.clearTags = true;
  if (b.tags !== undefined && b.tags !== null) out.tags = validateSection(b.tags, 'tags');
  if (b.properties !== undefined && b.properties !== null) {
    if (typeof b.properties !== 'object' || Array.isArray(b.properties)) throw errors.argument('properties must be a JSON object');
    const { desired, reported } = b.properties as Record<string, unknown>;
    if (kind === 'patch' && typeof reported === 'object' && reported !== null && Object.keys(valuesOf(reported as JsonObject)).length > 0) {
      throw errors.argument('Reported properties are written by the device; the service can update only tags and desired properties');
    }
    if (desired === null) out.clearDesired = true;
    if (desired !== undefined && desired !== null) {
      if (typeof desired !== 'object' || Array.isArray(desired)) throw errors.argument('properties.desired must be a JSON object');
      out.desired = validateSection(valuesOf(desired as JsonObject), 'desired');
    }
  }
  return out;
}

/** The twin document from its stored state and identity (also used by the query service). */
export function toTwin(state: TwinState, identity: Device | (Module & { device: Device })): Twin {
  const device = 'device' in identity ? identity.device : identity;
  const auth = identity.authentication;
  const twin: Twin = {
    deviceId: state.deviceId,
    ...(state.moduleId ? { moduleId: state.moduleId } : {}),
    etag: state.etag,
    deviceEtag: identity.etag,
    status: device.status,
    ...('device' in identity ? {} : { statusReason: device.statusReason }),
    statusUpdateTime: device.statusUpdatedTime,
    connectionState: identity.connectionState,
    lastActivityTime: identity.lastActivityTime,
    cloudToDeviceMessageCount: identity.cloudToDeviceMessageCount,
    authenticationType: auth.type,
    x509Thumbprint: { ...auth.x509Thumbprint },
    modelId: '',
    version: state.version,
    properties: { desired: state.desired, reported: state.reported },
  };
  if (!('device' in identity)) {
    twin.capabilities = { ...identity.capabilities };
    if (identity.deviceScope) twin.deviceScope = identity.deviceScope;
    if (identity.parentScopes) twin.parentScopes = identity.parentScopes;
  }
  if (Object.keys(state.tags).length > 0) twin.tags = state.tags;
  if (state.configurations && Object.keys(state.configurations).length > 0) twin.configurations = state.configurations;
  return twin;
}
