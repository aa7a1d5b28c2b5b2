/**
 * `$body…` in a routing condition: IoT Hub reads the body only when the message says it is JSON
 * (`content-type` `application/json`) in UTF-8, UTF-16 or UTF-32 (`content-encoding`, any case);
 * the body is never sniffed. Anything else, or a body that does not decode or parse, is undefined.
 */
import type { PropertyValue } from '../../../store/eventLog.js';
import type { Value } from '../../conditions/evaluate.js';

/** The parsed JSON body, or undefined when the message's content type and encoding do not allow a body query. */
export function jsonBody(body: Buffer, systemProperties: Record<string, PropertyValue>): Value {
  const { contentType, encoding } = bodyFormat(systemProperties);
  return parse(body, contentType, encoding);
}

/** The content type and encoding a body is read with. */
export function bodyFormat(systemProperties: Record<string, PropertyValue>): { contentType?: string; encoding?: string } {
  return { contentType: textOf(lookup(systemProperties, 'content-type')), encoding: textOf(lookup(systemProperties, 'content-encoding')) };
}

/** The body parsed as JSON when `contentType` and `encoding` allow it (see `jsonBody`). */
export function parse(body: Buffer, contentType: string | undefined, encoding: string | undefined): Value {
  if (contentType?.trim().toLowerCase() !== 'application/json' || encoding === undefined) return undefined;
  const text = decode(body, encoding.trim().toLowerCase());
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Value;
  } catch {
    return undefined;
  }
}

// Decoders are stateless between whole-buffer decode calls: made once.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const UTF16LE = new TextDecoder('utf-16le', { fatal: true, ignoreBOM: true });
const UTF16BE = new TextDecoder('utf-16be', { fatal: true, ignoreBOM: true });

/** The body as text in the named encoding (.NET's names: `utf-16` and `utf-32` are little-endian unless a BOM says otherwise). */
export function decode(body: Buffer, encoding: string): string | undefined {
  switch (encoding) {
    case 'utf-8': {
      try {
        return UTF8.decode(body);
      } catch {
        return undefined;
      }
    }
    case 'utf-16': {
      let bigEndian = false;
      let start = 0;
      if (body.length >= 2 && body[0] === 0xfe && body[1] === 0xff) [bigEndian, start] = [true, 2];
      else if (body.length >= 2 && body[0] === 0xff && body[1] === 0xfe) start = 2;
      if ((body.length - start) % 2 !== 0) return undefined;
      try {
        return (bigEndian ? UTF16BE : UTF16LE).decode(body.subarray(start));
      } catch {
        return undefined;
      }
    }
    case 'utf-32': {
      let bigEndian = false;
      let start = 0;
      if (body.length >= 4 && body.readUInt32BE(0) === 0x0000feff) [bigEndian, start] = [true, 4];
      else if (body.length >= 4 && body.readUInt32LE(0) === 0x0000feff) start = 4;
      if ((body.length - start) % 4 !== 0) return undefined;
      let out = '';
      for (let i = start; i < body.length; i += 4) {
        const cp = bigEndian ? body.readUInt32BE(i) : body.readUInt32LE(i);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
        out += String.fromCodePoint(cp);
      }
      return out;
    }
    default:
      return undefined;
  }
}

/** A property by exact name, else by name in any case (IoT Hub's property names are case-insensitive). */
export function lookup<T>(bag: Record<string, T> | undefined, name: string): T | undefined {
  if (!bag) return undefined;
  if (Object.prototype.hasOwnProperty.call(bag, name)) return bag[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(bag)) if (k.toLowerCase() === lower) return bag[k];
  return undefined;
}

function textOf(v: PropertyValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && !(v instanceof Date) && !Buffer.isBuffer(v) && typeof v.value === 'string') return v.value;
  return undefined;
}
