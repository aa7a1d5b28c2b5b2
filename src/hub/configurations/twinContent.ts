/**
 * What the configurations that target one twin make of it: per content path the winner (highest
 * priority, then the newest), each configuration's status, and the desired-properties patch that
 * takes the twin from what configurations wrote before to what they write now.
 */
import { valuesOf } from '../twins/document.js';
import type { JsonObject, JsonValue, TwinConfigurationStatus, TwinState } from '../twins/types.js';

export interface TargetingConfiguration {
  id: string;
  priority: number;
  createdTimeUtc: string;
  /** Content path → value (the deviceContent or moduleContent that applies to this kind of twin). */
  paths: Record<string, JsonValue>;
}

export interface TwinConfigurationChange {
  configurations?: Record<string, TwinConfigurationStatus>;
  configurationContent?: TwinState['configurationContent'];
  desiredPatch: JsonObject;
}

/** Higher priority first; on equal priority the newer one (later createdTimeUtc), then by id. */
function ranks(a: TargetingConfiguration, b: TargetingConfiguration): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.createdTimeUtc !== b.createdTimeUtc) return a.createdTimeUtc < b.createdTimeUtc ? 1 : -1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The change for `state`, targeted by `targeting`; undefined when nothing changes. */
export function configurationChange(state: TwinState, targeting: TargetingConfiguration[]): TwinConfigurationChange | undefined {
  const ordered = [...targeting].sort(ranks);
  const content: NonNullable<TwinState['configurationContent']> = {};
  const statuses: Record<string, TwinConfigurationStatus> = {};
  for (const c of ordered) {
    let won = false;
    for (const [path, value] of Object.entries(c.paths)) {
      if (path in content) continue;
      content[path] = { configurationId: c.id, value };
      won = true;
    }
    statuses[c.id] = { status: won ? 'Applied' : 'Targeted' };
  }
  const before = state.configurationContent ?? {};
  const contentChanged = JSON.stringify(sortedEntries(before)) !== JSON.stringify(sortedEntries(content));
  const statusChanged = JSON.stringify(sortedEntries(state.configurations ?? {})) !== JSON.stringify(sortedEntries(statuses));
  if (!contentChanged && !statusChanged) return undefined;

  let desiredPatch: JsonObject = {};
  if (contentChanged) {
    const current = valuesOf(state.desired);
    const after = structuredClone(current);
    // Take out what configurations wrote and no longer write, then write every winner, lowest
    // rank first, so that on nested paths the higher-ranked configuration ends on top.
    for (const [path, { value }] of Object.entries(before)) if (!(path in content)) removeAt(after, segmentsOf(path), value);
    const byRank = new Map(ordered.map((c, i) => [c.id, i]));
    const writes = Object.entries(content).sort(([pa, a], [pb, b]) => byRank.get(b.configurationId)! - byRank.get(a.configurationId)! || pa.length - pb.length);
    for (const [path, { value }] of writes) setAt(after, segmentsOf(path), value);
    desiredPatch = diffPatch(current, after);
  }
  return {
    configurations: Object.keys(statuses).length ? statuses : undefined,
    configurationContent: Object.keys(content).length ? content : undefined,
    desiredPatch,
  };
}

function sortedEntries(o: object): [string, unknown][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `properties.desired.a.b` → ['a', 'b']. */
export function segmentsOf(path: string): string[] {
  return path.split('.').slice(2);
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Writes `value` at `segments` (null removes it; at the root an object's members are written). */
export function setAt(doc: JsonObject, segments: string[], value: JsonValue): void {
  if (segments.length === 0) {
    if (isObject(value)) for (const [k, v] of Object.entries(value)) setAt(doc, [k], v);
    return;
  }
  let node = doc;
  for (const key of segments.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as JsonObject;
  }
  const last = segments[segments.length - 1]!;
  if (value === null) delete node[last];
  else node[last] = structuredClone(value);
}

/** Takes out what a path wrote (at the root: only the members its value had). */
function removeAt(doc: JsonObject, segments: string[], written: JsonValue): void {
  if (segments.length === 0) {
    if (isObject(written)) for (const k of Object.keys(written)) delete doc[k];
    return;
  }
  let node: JsonValue = doc;
  for (const key of segments.slice(0, -1)) {
    if (!isObject(node) || !isObject(node[key])) return;
    node = node[key]!;
  }
  if (isObject(node)) delete node[segments[segments.length - 1]!];
}

/** The JSON merge patch that turns `before` into `after` (removed members as null). */
export function diffPatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = {};
  for (const [k, v] of Object.entries(after)) {
    const old = before[k];
    if (isObject(v) && isObject(old)) {
      const inner = diffPatch(old, v);
      if (Object.keys(inner).length) patch[k] = inner;
    } else if (JSON.stringify(v) !== JSON.stringify(old)) patch[k] = v;
  }
  for (const k of Object.keys(before)) if (!(k in after)) patch[k] = null;
  return patch;
}
