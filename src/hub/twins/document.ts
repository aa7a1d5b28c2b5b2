/**
 * Pure functions over twin documents: IoT Hub's validation rules, JSON-merge-patch with
 * `null` removing a property, `$metadata` bookkeeping and the size computation behind the limits.
 */
import { HubError } from '../../core/errors.js';
import type { JsonObject, JsonValue, MetadataNode, TwinProperties } from './types.js';

export const TWIN_LIMITS = {
  tagsBytes: 8 * 1024,
  desiredBytes: 32 * 1024,
  reportedBytes: 32 * 1024,
  /** Nested objects below a section's root (IoT Hub: "maximum depth of 10"). */
  depth: 10,
  keyBytes: 1024,
  stringValueBytes: 4 * 1024,
} as const;

export type Section = 'tags' | 'desired' | 'reported';

const sectionLimit: Record<Section, number> = {
  tags: TWIN_LIMITS.tagsBytes,
  desired: TWIN_LIMITS.desiredBytes,
  reported: TWIN_LIMITS.reportedBytes,
};

const invalid = (message: string) => new HubError('ArgumentInvalid', message);

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Control characters (C0, C1), '.', '$' and space are not allowed in property names. */
// eslint-disable-next-line no-control-regex
const forbiddenKeyChars = /[\u0000-\u001f\u007f-\u009f.$ ]/;

/**
 * Checks a patch (or replacement) of one section against IoT Hub's rules and returns it typed.
 * `null` values are allowed: in a patch they remove the property.
 */
export function validateSection(value: unknown, section: Section): JsonObject {
  if (!isObject(value)) throw invalid(`${section} must be a JSON object`);
  checkObject(value, section, 0);
  return value;
}

function checkObject(obj: JsonObject, path: string, depth: number): void {
  if (depth > TWIN_LIMITS.depth) throw invalid(`${path}: twin objects can be nested at most ${TWIN_LIMITS.depth} levels deep`);
  for (const [key, value] of Object.entries(obj)) {
    if (key.length === 0) throw invalid(`${path}: property names cannot be empty`);
    if (forbiddenKeyChars.test(key)) {
      throw invalid(`${path}: property name '${key}' contains a character that is not allowed ('.', '$', space or a control character)`);
    }
    if (Buffer.byteLength(key, 'utf8') > TWIN_LIMITS.keyBytes) throw invalid(`${path}: property name is longer than ${TWIN_LIMITS.keyBytes} bytes`);
    checkValue(value, `${path}.${key}`, depth);
  }
}

function checkValue(value: JsonValue, path: string, depth: number): void {
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(`${path}: numbers must be finite`);
    return;
  }
  if (typeof value === 'string') {
    if (Buffer.byteLength(value, 'utf8') > TWIN_LIMITS.stringValueBytes) {
      throw invalid(`${path}: string values are limited to ${TWIN_LIMITS.stringValueBytes} bytes`);
    }
    return;
  }
  if (Array.isArray(value)) {
    if (depth + 1 > TWIN_LIMITS.depth) throw invalid(`${path}: twin objects can be nested at most ${TWIN_LIMITS.depth} levels deep`);
    for (const item of value) {
      if (item === null) throw invalid(`${path}: arrays cannot contain null`);
      checkValue(item, path, depth + 1);
    }
    return;
  }
  if (isObject(value)) return checkObject(value, path, depth + 1);
  throw invalid(`${path}: unsupported value`);
}

/** Throws when the section, as it would be stored, exceeds its size limit. */
export function checkSectionSize(doc: JsonObject, section: Section): void {
  const size = sizeOf(doc);
  if (size > sectionLimit[section]) {
    throw invalid(`The ${section} section would be ${size} bytes; IoT Hub allows at most ${sectionLimit[section]}`);
  }
}

/**
 * IoT Hub's twin size: key lengths (UTF-8) plus values, where strings count their UTF-8 bytes
 * without control characters, numbers 8 bytes, booleans 4, objects the sum of their members.
 */
export function sizeOf(value: JsonValue): number {
  if (value === null) return 0;
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  // eslint-disable-next-line no-control-regex
  if (typeof value === 'string') return Buffer.byteLength(value.replace(/[\u0000-\u001f\u007f-\u009f]/g, ''), 'utf8');
  if (Array.isArray(value)) return value.reduce<number>((n, v) => n + sizeOf(v), 0);
  let n = 0;
  for (const [k, v] of Object.entries(value)) {
    if (k === '$metadata' || k === '$version') continue;
    n += Buffer.byteLength(k, 'utf8') + sizeOf(v);
  }
  return n;
}

/** JSON merge patch: objects merge member by member, `null` removes, anything else replaces. */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) out[key] = mergePatch(isObject(out[key]) ? (out[key] as JsonObject) : {}, value);
    else out[key] = value;
  }
  return out;
}

/** `$metadata` after applying `patch`: touched members get the new stamp (and version). */
export function mergeMetadata(meta: MetadataNode, patch: JsonObject, stamp: string, version?: number): MetadataNode {
  const out: MetadataNode = { ...meta, ...leaf(stamp, version) };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject(value)) {
      const existing = out[key];
      out[key] = mergeMetadata(typeof existing === 'object' ? existing : leaf(stamp, version), value, stamp, version);
    } else out[key] = leaf(stamp, version);
  }
  return out;
}

function leaf(stamp: string, version?: number): MetadataNode {
  return version === undefined ? { $lastUpdated: stamp } : { $lastUpdated: stamp, $lastUpdatedVersion: version };
}

/** The values of a properties section without `$metadata` and `$version`. */
export function valuesOf(props: TwinProperties | JsonObject): JsonObject {
  const { $metadata: _m, $version: _v, ...values } = props as JsonObject;
  return values;
}

/** A properties section from its values, with `$metadata` and `$version`. */
export function withMetadata(values: JsonObject, metadata: MetadataNode, version: number): TwinProperties {
  return { ...values, $metadata: metadata, $version: version } as TwinProperties;
}

/** A patch that turns `before` into `after` at the top level (removed members as null). */
export function replacementPatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = { ...after };
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  return patch;
}
