import rhea from 'rhea';
import type { PropertyValue, TypedScalar } from '../../../store/eventLog.js';

const { types } = rhea;

/** rhea's undecoded value: its type (name, code), value and, for described values, the descriptor. */
interface Typed {
  type: { name: string; typecode: number };
  value: unknown;
  descriptor?: Typed;
}

const scalarByTypeName: Record<string, TypedScalar['type']> = {
  Ubyte: 'ubyte',
  Ushort: 'ushort',
  Uint: 'uint',
  SmallUint: 'uint',
  Uint0: 'uint',
  Ulong: 'ulong',
  SmallUlong: 'ulong',
  Ulong0: 'ulong',
  Byte: 'byte',
  Short: 'short',
  Int: 'int',
  SmallInt: 'int',
  Long: 'long',
  SmallLong: 'long',
  Float: 'float',
  Double: 'double',
};

/** A 64-bit value rhea left as 8 bytes (beyond 2^53) as decimal text. */
function bigValue(v: unknown, signed: boolean): number | string {
  if (Buffer.isBuffer(v)) return (signed ? v.readBigInt64BE(0) : v.readBigUInt64BE(0)).toString();
  return Number(v);
}

/** An undecoded AMQP value as the event log keeps it, with its type. */
export function fromTyped(t: Typed): PropertyValue {
  const name = t.type.name;
  const scalar = scalarByTypeName[name];
  if (scalar) return { type: scalar, value: scalar === 'long' || scalar === 'ulong' ? bigValue(t.value, scalar === 'long') : Number(t.value ?? 0) };
  switch (name) {
    case 'Null':
      return null;
    case 'True':
      return true;
    case 'False':
      return false;
    case 'Boolean':
      return Boolean(t.value);
    case 'Timestamp': {
      const ms = bigValue(t.value, true);
      return new Date(typeof ms === 'number' ? ms : Number(ms));
    }
    case 'Uuid':
      return { type: 'uuid', value: rhea.uuid_to_string(t.value as Buffer) };
    case 'CharUTF32':
      return { type: 'char', value: String.fromCodePoint(Number(t.value)) };
    case 'Vbin8':
    case 'Vbin32':
      return Buffer.from(t.value as Buffer);
    case 'Str8':
    case 'Str32':
      return String(t.value);
    case 'Sym8':
    case 'Sym32':
      return { type: 'symbol', value: String(t.value) };
    default:
      // Compound values (lists, maps, described, decimals): kept as their JSON text.
      return JSON.stringify(types.unwrap(t as never, false) ?? null);
  }
}

/** A logged value as rhea encodes it, with the type it came with. */
export function toAmqp(v: PropertyValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (v instanceof Date) return types.wrap_timestamp(v.getTime());
  if (Buffer.isBuffer(v)) return types.wrap_binary(v);
  const n = (x: number | string) => (typeof x === 'number' ? x : Number(x));
  const big = (x: number | string, signed: boolean) => {
    if (typeof x === 'number') return x;
    const b = Buffer.alloc(8);
    if (signed) b.writeBigInt64BE(BigInt(x));
    else b.writeBigUInt64BE(BigInt(x));
    return b;
  };
  switch (v.type) {
    case 'byte':
      return types.wrap_byte(n(v.value));
    case 'short':
      return types.wrap_short(n(v.value));
    case 'int':
      return types.wrap_int(n(v.value));
    case 'long':
      return types.wrap_long(big(v.value, true) as number);
    case 'ubyte':
      return types.wrap_ubyte(n(v.value));
    case 'ushort':
      return types.wrap_ushort(n(v.value));
    case 'uint':
      return types.wrap_uint(n(v.value));
    case 'ulong':
      return types.wrap_ulong(big(v.value, false) as number);
    case 'float':
      return types.wrap_float(n(v.value));
    case 'double':
      return types.wrap_double(n(v.value));
    case 'uuid':
      return types.wrap_uuid(Buffer.from(rhea.string_to_uuid(String(v.value))));
    case 'symbol':
      return types.wrap_symbol(String(v.value));
    case 'char':
      return (types as unknown as { wrap_char(c: number): unknown }).wrap_char(String(v.value).codePointAt(0) ?? 0);
  }
}

export { propertyText } from '../../../store/eventLog.js';

/** The fields of AMQP's properties section in order, by the names the log keeps them under. */
export const PROPERTY_FIELDS = [
  'message-id',
  'user-id',
  'to',
  'subject',
  'reply-to',
  'correlation-id',
  'content-type',
  'content-encoding',
  'absolute-expiry-time',
  'creation-time',
  'group-id',
  'group-sequence',
  'reply-to-group-id',
] as const;

const SECTION = { header: 0x70, deliveryAnnotations: 0x71, messageAnnotations: 0x72, properties: 0x73, applicationProperties: 0x74, data: 0x75, sequence: 0x76, value: 0x77, footer: 0x78 };

/** An encoded message as the event log keeps it: the body, and every property with its type. */
export interface DecodedEvent {
  /** A single data section's bytes; otherwise the encoded body sections (see `bodySections`). */
  body: Buffer;
  /** True when `body` holds encoded body sections (amqp-value, amqp-sequence, several data sections). */
  bodySections: boolean;
  /** The properties section's fields (by PROPERTY_FIELDS names) and the message annotations. */
  systemProperties: Record<string, PropertyValue>;
  properties: Record<string, PropertyValue>;
}

function descriptorCode(t: Typed): number | undefined {
  const d = t.descriptor?.value;
  if (typeof d === 'number') return d;
  if (typeof d === 'string') {
    const byName: Record<string, number> = {
      'amqp:header:list': 0x70,
      'amqp:delivery-annotations:map': 0x71,
      'amqp:message-annotations:map': 0x72,
      'amqp:properties:list': 0x73,
      'amqp:application-properties:map': 0x74,
      'amqp:data:binary': 0x75,
      'amqp:amqp-sequence:list': 0x76,
      'amqp:value:*': 0x77,
      'amqp:footer:map': 0x78,
    };
    return byName[d];
  }
  return undefined;
}

function mapEntries(t: Typed): [string, Typed][] {
  const items = (t.value as Typed[]) ?? [];
  const out: [string, Typed][] = [];
  for (let i = 0; i + 1 < items.length; i += 2) out.push([String(items[i]!.value), items[i + 1]!]);
  return out;
}

/**
 * Decodes an encoded AMQP message without losing property types (rhea's own decoding turns
 * timestamps into numbers and every integer type into `number`). Throws on malformed bytes.
 */
export function decodeEvent(bytes: Buffer): DecodedEvent {
  const reader = new (types as unknown as { Reader: new (b: Buffer) => unknown }).Reader(bytes) as { remaining(): number; read(): Typed; position: number };
  const systemProperties: Record<string, PropertyValue> = {};
  const properties: Record<string, PropertyValue> = {};
  const dataSections: Buffer[] = [];
  let bodyStart = -1;
  let bodyEnd = -1;
  let onlyData = true;
  while (reader.remaining() > 0) {
    const start = reader.position;
    const section = reader.read();
    const code = descriptorCode(section);
    if (code === SECTION.messageAnnotations) {
      for (const [k, v] of mapEntries(section)) systemProperties[k] = fromTyped(v);
    } else if (code === SECTION.properties) {
      const fields = (section.value as Typed[]) ?? [];
      fields.forEach((f, i) => {
        const name = PROPERTY_FIELDS[i];
        if (name && f.type.name !== 'Null') systemProperties[name] = fromTyped(f);
      });
    } else if (code === SECTION.applicationProperties) {
      for (const [k, v] of mapEntries(section)) properties[k] = fromTyped(v);
    } else if (code === SECTION.data || code === SECTION.sequence || code === SECTION.value) {
      if (bodyStart < 0) bodyStart = start;
      bodyEnd = reader.position;
      if (code === SECTION.data) dataSections.push(Buffer.from(section.value as Buffer));
      else onlyData = false;
    } else if (code === undefined) {
      throw new Error('not an AMQP message section');
    }
  }
  if (onlyData && dataSections.length <= 1) return { body: dataSections[0] ?? Buffer.alloc(0), bodySections: false, systemProperties, properties };
  return { body: Buffer.from(bytes.subarray(bodyStart, bodyEnd)), bodySections: true, systemProperties, properties };
}
