import { createSasToken } from '../../src/core/sas.js';
import { rawRequest, type TestHub } from './hub.js';

export const API = 'api-version=2021-10-01';

/** The DPS service connection string (provisioningserviceowner) of a test hub. */
export async function dpsConnectionString(t: TestHub): Promise<string> {
  const cs = (await t.hub.info()).dps?.serviceConnectionString;
  if (!cs) throw new Error('the hub reports no DPS connection string');
  return cs;
}

/** A DPS service token for `policy`, read from the hub's DPS connection string (or any key). */
export async function dpsToken(t: TestHub, key?: string, policy = 'provisioningserviceowner'): Promise<string> {
  const k = key ?? /SharedAccessKey=([^;]+)/.exec(await dpsConnectionString(t))![1]!;
  return createSasToken(t.host, k, Math.floor(Date.now() / 1000) + 3600, policy);
}

/** A raw DPS call, for what the SDK cannot send. */
export async function dpsRequest(t: TestHub, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const token = await dpsToken(t);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return rawRequest(t.host, method, `${path}${path.includes('?') ? '&' : '?'}${API}`, {
    fresh: true,
    body: payload,
    headers: {
      authorization: token,
      ...(payload !== undefined ? { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) } : {}),
      ...headers,
    },
  });
}
