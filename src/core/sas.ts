import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Shared access signatures as IoT Hub and DPS define them:
 * `SharedAccessSignature sr=<url-encoded resource>&sig=<url-encoded base64 hmac>&se=<expiry>[&skn=<policy>]`,
 * the HMAC-SHA256 (keyed with the base64-decoded key) of `<sr as sent> + "\n" + <se>`.
 */
export interface SasToken {
  /** The resource URI, decoded. */
  resource: string;
  /** The `sr` value exactly as it appeared in the token (what was signed). */
  rawResource: string;
  signature: string;
  expiry: number;
  keyName?: string;
}

/** encodeURIComponent plus the characters the Azure SDKs escape too. */
export function encodeUriComponentStrict(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function sign(keyBase64: string, stringToSign: string): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(stringToSign).digest('base64');
}

export function createSasToken(resource: string, keyBase64: string, expiry: number, keyName?: string): string {
  const sr = encodeUriComponentStrict(resource);
  const sig = encodeUriComponentStrict(sign(keyBase64, `${sr}\n${expiry}`));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${expiry}` + (keyName ? `&skn=${encodeUriComponentStrict(keyName)}` : '');
}

/** Returns undefined when the text is not a well-formed SAS token. */
export function parseSasToken(text: string): SasToken | undefined {
  const m = /^\s*SharedAccessSignature\s+(\S+)\s*$/.exec(text);
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of m[1]!.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    fields.set(part.slice(0, eq).toLowerCase(), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  if (!sr || !sig || !se || !/^\d+$/.test(se)) return undefined;
  try {
    const skn = fields.get('skn');
    return {
      resource: decodeURIComponent(sr),
      rawResource: sr,
      signature: decodeURIComponent(sig),
      expiry: Number(se),
      keyName: skn === undefined ? undefined : decodeURIComponent(skn),
    };
  } catch {
    return undefined;
  }
}

/**
 * True when the token was signed with `keyBase64`. Clients differ in whether `sr` is sent
 * encoded; accept a signature over either the raw value or its strict encoding.
 */
export function signatureMatches(token: SasToken, keyBase64: string): boolean {
  const given = Buffer.from(token.signature, 'base64');
  const candidates = new Set([token.rawResource, encodeUriComponentStrict(token.resource)]);
  for (const sr of candidates) {
    const expected = Buffer.from(sign(keyBase64, `${sr}\n${token.expiry}`), 'base64');
    if (expected.length === given.length && timingSafeEqual(expected, given)) return true;
  }
  return false;
}

/**
 * True when the token's resource covers `target`: equal to it, or a path prefix of it
 * (compared case-insensitively, as IoT Hub does, on whole path segments).
 */
export function resourceCovers(tokenResource: string, target: string): boolean {
  // A port in the host (Event Hubs clients put the endpoint's, e.g. sb://host:5672/) is not part of the resource.
  const norm = (s: string) =>
    s.toLowerCase().replace(/^(https?|amqps?|mqtts?|wss?|sb):\/\//, '').replace(/^(\[[^\]]*\]|[^:/]+):\d+(?=\/|$)/, '$1').replace(/\/+$/, '');
  const a = norm(tokenResource);
  const b = norm(target);
  return a === b || b.startsWith(a + '/');
}

/**
 * True when the token was signed the Service Bus / Event Hubs way: HMAC keyed with the key's
 * text itself (not its base64-decoded bytes), as @azure/event-hubs signs for an Event
 * Hub-compatible endpoint's connection string.
 */
export function serviceBusSignatureMatches(token: SasToken, key: string): boolean {
  const given = Buffer.from(token.signature, 'base64');
  const candidates = new Set([token.rawResource, encodeUriComponentStrict(token.resource), encodeURIComponent(token.resource)]);
  for (const sr of candidates) {
    const expected = createHmac('sha256', key).update(`${sr}\n${token.expiry}`).digest();
    if (expected.length === given.length && timingSafeEqual(expected, given)) return true;
  }
  return false;
}
