import type { Twins } from '../../twins/twins.js';
import type { JsonObject, MetadataNode, TwinChange, TwinProperties, TwinState } from '../../twins/types.js';
import type { RoutingEvents } from './emitter.js';
import { nonTelemetryMessage } from './messages.js';

/**
 * TwinChangeEvents: every committed change of a device or module twin's tags, desired or
 * reported properties. An update (service PATCH, jobs, configurations, the device's reported
 * patches) carries the twin's version and only what changed, with its metadata; a replace (PUT)
 * carries the whole twin, as IoT Hub documents it.
 */
export function twinChangeEvents(twins: Twins, events: RoutingEvents): () => void {
  return twins.onTwinChange((change) => {
    if (!events.active) return;
    const body = change.kind === 'replace' ? twinBody(change.twin) : updateBody(change);
    if (!body) return;
    events.emit(
      nonTelemetryMessage({
        source: 'TwinChangeEvents',
        schema: 'twinChangeNotification',
        opType: change.kind === 'replace' ? 'replaceTwin' : 'updateTwin',
        hubName: events.hubName,
        deviceId: change.deviceId,
        moduleId: change.moduleId,
        body,
        at: events.now(),
      }),
    );
  });
}

/** The twin as lifecycle and replace events carry it: ids, etag, version, tags, properties with metadata. */
export function twinBody(twin: TwinState, options: { tags?: 'always' | 'whenAny' } = {}): JsonObject {
  const withTags = options.tags === 'always' || Object.keys(twin.tags).length > 0;
  return {
    deviceId: twin.deviceId,
    ...(twin.moduleId ? { moduleId: twin.moduleId } : {}),
    etag: twin.etag,
    version: twin.version,
    ...(withTags ? { tags: twin.tags } : {}),
    properties: { desired: twin.desired, reported: twin.reported } as unknown as JsonObject,
  };
}

function updateBody(change: TwinChange): JsonObject | undefined {
  const properties: JsonObject = {};
  if (change.desired) properties.desired = changedSection(change.desired, change.twin.desired);
  if (change.reported) properties.reported = changedSection(change.reported, change.twin.reported);
  if (!change.tags && Object.keys(properties).length === 0) return undefined;
  return {
    version: change.twin.version,
    ...(change.tags ? { tags: change.tags } : {}),
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
  };
}

/** The patch's values with the metadata of what it touched, and the section's new `$version`. */
function changedSection(patch: JsonObject, section: TwinProperties): JsonObject {
  return { ...patch, $metadata: metadataOf(patch, section.$metadata) as unknown as JsonObject, $version: section.$version };
}

function metadataOf(patch: JsonObject, node: MetadataNode | undefined): Partial<MetadataNode> {
  const out: Partial<MetadataNode> = {};
  if (!node) return out;
  out.$lastUpdated = node.$lastUpdated;
  if (node.$lastUpdatedVersion !== undefined) out.$lastUpdatedVersion = node.$lastUpdatedVersion;
  for (const [key, value] of Object.entries(patch)) {
    const child = node[key];
    if (typeof child !== 'object' || child === null) continue;
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    out[key] = isObject ? (metadataOf(value as JsonObject, child) as MetadataNode) : child;
  }
  return out;
}
