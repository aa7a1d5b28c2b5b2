/// <reference lib="dom" />
// The portal's client of Fleethub's public APIs, with the signed-in user's credentials in headers
// (never cookies: nothing here can be ridden by another site's request).

export interface Settings {
  hubName: string;
  hubHostName: string;
  dpsHostName?: string;
  idScope?: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  dpsName?: string;
}

export interface SasCredential {
  host: string;
  keyName: string;
  key: string;
}

export interface Session {
  /** How the user signed in, for the header. */
  who: string;
  hub?: SasCredential;
  /** A bearer token for the hub's data plane (administrator sign-in when no keys could be listed). */
  hubBearer?: { token: string; expiresOn: number };
  dps?: SasCredential;
  management?: { token: string; expiresOn: number };
}

export const HUB_API = '2021-04-12';
export const DPS_API = '2021-10-01';
export const ARM_HUB_API = '2023-06-30';
export const ARM_DPS_API = '2022-02-05';
const KEY = 'fleethub.portal.session';

export let settings: Settings;
export let session: Session | undefined;

export async function loadSettings(): Promise<void> {
  settings = (await (await fetch('/portal/settings')).json()) as Settings;
  const raw = sessionStorage.getItem(KEY);
  session = raw ? (JSON.parse(raw) as Session) : undefined;
}

export function saveSession(s: Session | undefined): void {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const b64 = (bytes: ArrayBuffer | Uint8Array) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** A new symmetric key as Azure generates them: 32 random bytes, base64. */
export function newKey(): string {
  return b64(crypto.getRandomValues(new Uint8Array(32)));
}

/** IoT Hub's and DPS's SAS token, signed here with WebCrypto's HMAC-SHA256. */
export async function sasToken(c: SasCredential, ttlSeconds = 3600): Promise<string> {
  const sr = encodeURIComponent(c.host.toLowerCase());
  const se = Math.floor(Date.now() / 1000) + ttlSeconds;
  const key = await crypto.subtle.importKey('raw', unb64(c.key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = b64(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${sr}\n${se}`)));
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${encodeURIComponent(c.keyName)}`;
}

/** HostName=…;SharedAccessKeyName=…;SharedAccessKey=… */
export function parseConnectionString(cs: string): SasCredential | undefined {
  const parts = Object.fromEntries(
    cs.trim().split(';').filter(Boolean).map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim()];
    }),
  );
  if (!parts.hostname || !parts.sharedaccesskeyname || !parts.sharedaccesskey) return undefined;
  return { host: parts.hostname, keyName: parts.sharedaccesskeyname, key: parts.sharedaccesskey };
}

export type Service = 'hub' | 'dps' | 'arm';

async function authorization(service: Service): Promise<string | undefined> {
  const s = session;
  if (!s) return undefined;
  if (service === 'hub') return s.hub ? sasToken(s.hub) : s.hubBearer ? `Bearer ${s.hubBearer.token}` : undefined;
  if (service === 'dps') return s.dps ? sasToken(s.dps) : undefined;
  return s.management ? `Bearer ${s.management.token}` : undefined;
}

export interface Reply<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls a public API; a non-2xx answer throws ApiError with the service's own code and message. */
export async function call<T = unknown>(service: Service, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
  const version = service === 'hub' ? HUB_API : service === 'dps' ? DPS_API : '';
  const url = version && !/[?&]api-version=/.test(path) ? `${path}${path.includes('?') ? '&' : '?'}api-version=${version}` : path;
  const auth = await authorization(service);
  const init: RequestInit = {
    method,
    headers: {
      ...(auth ? { authorization: auth } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}),
      ...headers,
    },
    credentials: 'omit',
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  };
  const res = await fetch(url, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  if (!res.ok) throw toError(res.status, json);
  return { status: res.status, body: json as T, headers: res.headers };
}

/** IoT Hub: {Message:"ErrorCode:X;text"}; DPS: {errorCode, message}; ARM: {error:{code,message}}; Azure AD: {error, error_description}. */
function toError(status: number, json: unknown): ApiError {
  const j = (json ?? {}) as Record<string, unknown>;
  if (typeof j.Message === 'string') {
    const m = /^ErrorCode:([^;]*);([\s\S]*)$/.exec(j.Message);
    return new ApiError(status, m ? m[1]! : String(status), m ? m[2]! : j.Message);
  }
  if (typeof j.message === 'string') return new ApiError(status, String(j.errorCode ?? status), j.message);
  if (j.error && typeof j.error === 'object') {
    const e = j.error as { code?: string; message?: string };
    return new ApiError(status, e.code ?? String(status), e.message ?? '');
  }
  if (typeof j.error === 'string') return new ApiError(status, j.error, String(j.error_description ?? j.error));
  return new ApiError(status, String(status), typeof json === 'string' && json ? json : `HTTP ${status}`);
}

export const describe = (e: unknown) => (e instanceof ApiError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

/** Azure AD's token endpoint, client credentials (what any client of Fleethub does). */
export async function clientCredentialsToken(clientId: string, clientSecret: string, scope: string): Promise<{ token: string; expiresOn: number }> {
  const res = await fetch(`/${encodeURIComponent(settings.tenantId)}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope }).toString(),
    credentials: 'omit',
  });
  const json = (await res.json()) as { access_token?: string; expires_in?: number };
  if (!res.ok || !json.access_token) throw toError(res.status, json);
  return { token: json.access_token, expiresOn: Date.now() + (json.expires_in ?? 3600) * 1000 };
}

/**
 * As Azure's portal does for an Owner: the hub's and the DPS's keys through ARM's listKeys, so
 * that the pages sign with the owner policies. Without the control plane (or without the right),
 * the hub is used with the bearer token and its data roles.
 */
export async function keysThroughArm(management: { token: string; expiresOn: number }): Promise<{ hub?: SasCredential; dps?: SasCredential }> {
  const rg = `/subscriptions/${settings.subscriptionId}/resourceGroups/${settings.resourceGroup}/providers/Microsoft.Devices`;
  const list = async (path: string, version: string, owner: string, host: string) => {
    const res = await fetch(`${rg}/${path}/listkeys?api-version=${version}`, { method: 'POST', headers: { authorization: `Bearer ${management.token}` }, credentials: 'omit' });
    if (!res.ok) return undefined;
    const keys = ((await res.json()) as { value?: { keyName: string; primaryKey: string }[] }).value ?? [];
    const k = keys.find((x) => x.keyName === owner);
    return k ? { host, keyName: k.keyName, key: k.primaryKey } : undefined;
  };
  const hub = await list(`IotHubs/${encodeURIComponent(settings.hubName)}`, ARM_HUB_API, 'iothubowner', settings.hubHostName).catch(() => undefined);
  const dps = settings.dpsName && settings.dpsHostName
    ? await list(`provisioningServices/${encodeURIComponent(settings.dpsName)}`, ARM_DPS_API, 'provisioningserviceowner', settings.dpsHostName).catch(() => undefined)
    : undefined;
  return { ...(hub ? { hub } : {}), ...(dps ? { dps } : {}) };
}

/** A page of a query API (IoT Hub's devices/query, DPS's enrollments/query) with its continuation token. */
export async function queryPage<T>(service: Service, path: string, body: unknown, pageSize: number, continuation?: string): Promise<{ items: T[]; continuation?: string }> {
  const r = await call<T[]>(service, 'POST', path, body, {
    'x-ms-max-item-count': String(pageSize),
    ...(continuation ? { 'x-ms-continuation': continuation } : {}),
  });
  const next = r.headers.get('x-ms-continuation') ?? undefined;
  return { items: r.body ?? [], ...(next ? { continuation: next } : {}) };
}

/** Fleethub's live telemetry (server-sent events over fetch, so that the credential rides in a header). */
export async function streamTelemetry(query: string, onEvent: (e: unknown) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(`/fleethub/telemetry?api-version=${HUB_API}&${query}`, {
    headers: { authorization: (await authorization('hub')) ?? '', accept: 'text/event-stream' },
    credentials: 'omit',
    signal,
  });
  if (!res.ok || !res.body) throw toError(res.status, await res.json().catch(() => undefined));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let i: number;
    while ((i = buffer.indexOf('\n\n')) >= 0) {
      const chunk = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const data = chunk.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data) onEvent(JSON.parse(data));
    }
  }
}
