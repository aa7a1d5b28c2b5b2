import { mergePatch, valuesOf } from './document.js';
import type { JsonObject, JsonValue } from './types.js';
import type { Twins } from './twins.js';

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A merge patch that turns `before` into `after` (removed members as null), member by member. */
export function diffPatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const [key, value] of Object.entries(after)) {
    const old = before[key];
    if (isObject(value) && isObject(old)) {
      const inner = diffPatch(old, value);
      if (Object.keys(inner).length > 0) patch[key] = inner;
    } else if (JSON.stringify(old) !== JSON.stringify(value)) patch[key] = value as JsonValue;
  }
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  return patch;
}

/**
 * What one device connection has seen of its desired properties (its last twin GET, then the
 * patches sent to it). The SDKs read the twin first and subscribe to desired-property patches
 * after (and again after every reconnect); a change made in between would otherwise never reach
 * them. When the subscription starts, `catchUp` returns the patch from what the connection saw to
 * the twin as it is now (none when nothing changed).
 */
export class DesiredView {
  private seen?: { version: number; values: JsonObject };

  /** The desired properties (with `$version`) answered to a twin GET. */
  read(desired: JsonObject): void {
    this.seen = { version: Number(desired.$version), values: valuesOf(desired) };
  }

  /** A desired-properties patch sent to the device. */
  delivered(patch: JsonObject): void {
    if (!this.seen) return;
    const version = Number(patch.$version);
    if (version <= this.seen.version) return;
    this.seen = { version, values: mergePatch(this.seen.values, valuesOf(patch)) };
  }

  async catchUp(twins: Twins, deviceId: string, moduleId?: string): Promise<(JsonObject & { $version: number }) | undefined> {
    if (!this.seen) return undefined;
    const { desired } = await twins.getProperties(deviceId, moduleId);
    const version = Number(desired.$version);
    if (!this.seen || version <= this.seen.version) return undefined;
    const patch = { ...diffPatch(this.seen.values, valuesOf(desired)), $version: version };
    this.delivered(patch);
    return patch;
  }
}
