/**
 * Storage endpoints' settings as IoT Hub defines them: the encoding, and the blob names
 * (`fileNameFormat`: the tokens `{iothub}`, `{partition}`, `{YYYY}`, `{MM}`, `{DD}`, `{HH}` and
 * `{mm}`, each required exactly once, in any order, with any literal text between them). Pure: the
 * control plane can validate with it, the storage sink (egress/routing) writes by it.
 */

export type StorageEncoding = 'avro' | 'avroDeflate' | 'json';

/** The encodings IoT Hub accepts (case-insensitively; `avro` when none is given), or undefined. */
export function storageEncoding(encoding: string | undefined): StorageEncoding | undefined {
  const e = (encoding ?? 'avro').toLowerCase();
  return e === 'avro' ? 'avro' : e === 'avrodeflate' ? 'avroDeflate' : e === 'json' ? 'json' : undefined;
}

export const DEFAULT_FILE_NAME_FORMAT = '{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}';

export const FILE_NAME_TOKENS = ['{iothub}', '{partition}', '{YYYY}', '{MM}', '{DD}', '{HH}', '{mm}'] as const;

/** Why `format` is not a valid `fileNameFormat` (IoT Hub's rule), or undefined when it is. */
export function fileNameFormatError(format: string): string | undefined {
  if (typeof format !== 'string' || format.trim() === '') return 'The file name format must not be empty';
  if (format.length > 1024) return 'The file name format must be at most 1024 characters long';
  for (const m of format.matchAll(/\{[^{}]*\}/g)) {
    if (!(FILE_NAME_TOKENS as readonly string[]).includes(m[0])) {
      return `The file name format contains an unknown token '${m[0]}': the tokens are ${FILE_NAME_TOKENS.join(', ')}`;
    }
  }
  if (/[{}]/.test(format.replace(/\{[^{}]*\}/g, ''))) return 'The file name format has an unmatched brace';
  const missing = FILE_NAME_TOKENS.filter((t) => format.split(t).length - 1 !== 1);
  if (missing.length) {
    return `The file name format must contain each of ${FILE_NAME_TOKENS.join(', ')} exactly once (wrong: ${missing.join(', ')})`;
  }
  if (format.startsWith('/') || format.endsWith('/') || format.includes('//')) return 'The file name format must not have empty path segments';
  return undefined;
}

/** The blob name for a hub's partition at `time` (UTC). */
export function blobName(format: string, hubName: string, partition: number, time: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const values: Record<string, string> = {
    '{iothub}': hubName,
    '{partition}': two(partition),
    '{YYYY}': String(time.getUTCFullYear()),
    '{MM}': two(time.getUTCMonth() + 1),
    '{DD}': two(time.getUTCDate()),
    '{HH}': two(time.getUTCHours()),
    '{mm}': two(time.getUTCMinutes()),
  };
  return format.replace(/\{[^{}]*\}/g, (t) => values[t] ?? t);
}

/**
 * The name to try when `name` is taken (a second batch in the same minute): `_1`, `_2`, … before
 * the last segment's extension, if it has one (`…/07.avro` → `…/07_1.avro`).
 */
export function collisionName(name: string, attempt: number): string {
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  if (dot > slash + 1) return `${name.slice(0, dot)}_${attempt}${name.slice(dot)}`;
  return `${name}_${attempt}`;
}
