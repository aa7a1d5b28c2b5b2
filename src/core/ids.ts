import { randomBytes } from 'node:crypto';

/** IoT Hub's device and module id rule: up to 128 ASCII alphanumerics and - : . + % _ # * ? ! ( ) , = @ ; $ ' */
const idPattern = /^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/;

export function isValidDeviceId(id: unknown): id is string {
  return typeof id === 'string' && idPattern.test(id);
}

export const isValidModuleId = isValidDeviceId;

/** A random symmetric key as IoT Hub generates them: 32 bytes, base64. */
export function generateKey(bytes = 32): string {
  return randomBytes(bytes).toString('base64');
}

/** Keys must be base64 and decode to 16..64 bytes. */
export function isValidKey(key: unknown): key is string {
  if (typeof key !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.length % 4 !== 0) return false;
  const n = Buffer.from(key, 'base64').length;
  return n >= 16 && n <= 64;
}

let lastTick = 0n;
/**
 * IoT Hub's generationId: a decimal string that differs each time an id is (re)created.
 * We use .NET-style ticks (100 ns since 0001-01-01), kept strictly increasing in-process.
 */
export function newGenerationId(now = Date.now()): string {
  let ticks = BigInt(now) * 10000n + 621355968000000000n;
  if (ticks <= lastTick) ticks = lastTick + 1n;
  lastTick = ticks;
  return ticks.toString();
}

let etagCounter = 0;
/** Opaque etags in IoT Hub's style (base64 of a number), unique across restarts. */
export function newEtag(): string {
  etagCounter = (etagCounter + 1) % 1000;
  return Buffer.from(`${Date.now()}${String(etagCounter).padStart(3, '0')}${randomBytes(2).readUInt16BE() % 10}`).toString('base64');
}

/** Strips the quotes (and weak marker) from an If-Match header value. */
export function unquoteEtag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

export const NEVER = '0001-01-01T00:00:00Z';
