import { createSasToken } from '../../src/core/sas.js';
import { request } from 'node:https';
import type { TestHub } from './hub.js';

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
  return freshRequest(t.host, method, `${path}${path.includes('?') ? '&' : '?'}${API}`, {
    body: payload,
    headers: {
      authorization: token,
      ...(payload !== undefined ? { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) } : {}),
      ...headers,
    },
  });
}

/** Like rawRequest, on a new connection each time (pooled sockets do not survive a hub restart). */
export function freshRequest(
  host: string,
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string | number> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: 443, method, path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
