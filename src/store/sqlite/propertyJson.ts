import type { PropertyValue, TypedScalar } from '../eventLog.js';

/**
 * The event log's typed JSON for property maps. Strings, booleans, null and finite numbers are
 * plain JSON, so the rows written before types were kept (all strings) read as they are; other
 * values are `[type, value]` pairs: `["timestamp", ms]`, `["binary", base64]`, `["int", 5]`,
 * `["long", "9007199254740993"]`, `["uuid", "…"]`, … .
 */
export function encodeProperties(props: Record<string, PropertyValue>): string {
  // The common case (every value a string, as from MQTT and HTTP) is plain JSON as it stands:
  // the same text as below, without building a copy.
  let plain = true;
  for (const k in props) {
    const v = props[k];
    if (typeof v !== 'string' && v !== undefined) {
      plain = false;
      break;
    }
  }
  if (plain) return JSON.stringify(props);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined) continue;
    out[k] = encodeValue(v);
  }
  return JSON.stringify(out);
}

function encodeValue(v: PropertyValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : ['double', String(v)];
  if (v instanceof Date) return ['timestamp', v.getTime()];
  if (Buffer.isBuffer(v)) return ['binary', v.toString('base64')];
  return [v.type, v.value];
}

const scalarTypes = new Set<TypedScalar['type']>(['byte', 'short', 'int', 'long', 'ubyte', 'ushort', 'uint', 'ulong', 'float', 'double', 'uuid', 'symbol', 'char']);

export function decodeProperties(json: string): Record<string, PropertyValue> {
  const parsed = JSON.parse(json) as Record<string, unknown>;
  const out: Record<string, PropertyValue> = {};
  for (const [k, v] of Object.entries(parsed)) out[k] = decodeValue(v);
  return out;
}

function decodeValue(v: unknown): PropertyValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string') {
    const [type, value] = v as [string, unknown];
    if (type === 'timestamp') return new Date(Number(value));
    if (type === 'binary') return Buffer.from(String(value), 'base64');
    if (scalarTypes.has(type as TypedScalar['type'])) {
      const scalar = typeof value === 'number' ? value : String(value);
      // Non-finite doubles are kept as text ('NaN', 'Infinity').
      if (type === 'double' && typeof scalar === 'string' && !/^-?\d/.test(scalar)) return Number(scalar);
      return { type: type as TypedScalar['type'], value: scalar };
    }
  }
  // Anything else (never written by this codec) reads as its JSON text.
  return JSON.stringify(v);
}
