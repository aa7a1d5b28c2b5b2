/**
 * A linked hub outside this process (another Fleethub, or any IoT hub), written as DPS writes
 * one: over the IoT Hub service REST API, with a SAS token made from the hub's connection
 * string (a policy with registry write rights). The hub's TLS certificate must be trusted by
 * this process (for another Fleethub: its CA in NODE_EXTRA_CA_CERTS).
 */
import { request } from 'node:https';
import { createSasToken, encodeUriComponentStrict } from '../../core/sas.js';
import { deviceIdentity, type DeviceTwinData, type HubTarget, type ProvisionedDevice } from '../../dps/registration/hubTarget.js';
import type { TwinCollection } from '../../dps/types.js';

const API_VERSION = '2021-04-12';
const TOKEN_SECONDS = 3600;
const TIMEOUT_MS = 30_000;

export class RemoteHubError extends Error {
  override name = 'RemoteHubError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class RemoteHubTarget implements HubTarget {
  private readonly hostName: string;
  private readonly keyName: string;
  private readonly key: string;
  private readonly port: number;

  /** `connectionString`: HostName=…;SharedAccessKeyName=…;SharedAccessKey=… */
  constructor(connectionString: string) {
    const parts = new Map(
      connectionString
        .split(';')
        .filter(Boolean)
        .map((p) => {
          const i = p.indexOf('=');
          return [p.slice(0, i).toLowerCase(), p.slice(i + 1)] as const;
        }),
    );
    const hostName = parts.get('hostname');
    const keyName = parts.get('sharedaccesskeyname');
    const key = parts.get('sharedaccesskey');
    if (!hostName || !keyName || !key) throw new Error('a linked hub connection string needs HostName, SharedAccessKeyName and SharedAccessKey');
    const [host, port] = hostName.split(/:(?=\d+$)/);
    this.hostName = host!;
    this.port = port ? Number(port) : 443;
    this.keyName = keyName;
    this.key = key;
  }

  async provision(device: ProvisionedDevice): Promise<boolean> {
    const body = deviceIdentity(device);
    const path = `/devices/${encodeUriComponentStrict(device.deviceId)}`;
    let created = true;
    const put = await this.call('PUT', path, body);
    if (put.status === 409) {
      created = false;
      // Keep what the device's owner set (status); the credential follows the enrollment.
      const existing = this.ok(await this.call('GET', path), 'reading the device') as { status?: string; statusReason?: string };
      this.ok(await this.call('PUT', path, { ...body, status: existing.status, statusReason: existing.statusReason }, { 'if-match': '*' }), 'updating the device');
    } else {
      this.ok(put, 'creating the device');
    }
    const twin = device.twin;
    if (twin && (twin.tags || twin.desired)) {
      const patch = { ...(twin.tags ? { tags: twin.tags } : {}), ...(twin.desired ? { properties: { desired: twin.desired } } : {}) };
      this.ok(await this.call('PATCH', `/twins/${encodeUriComponentStrict(device.deviceId)}`, patch, { 'if-match': '*' }), 'writing the twin');
    }
    // Reported properties are written by the device only: the service API has no way to carry them over.
    return created;
  }

  async readTwin(deviceId: string): Promise<DeviceTwinData | undefined> {
    const res = await this.call('GET', `/twins/${encodeUriComponentStrict(deviceId)}`);
    if (res.status === 404) return undefined;
    const twin = this.ok(res, 'reading the twin') as { tags?: TwinCollection; properties?: { desired?: TwinCollection; reported?: TwinCollection } };
    return { tags: twin.tags ?? {}, desired: values(twin.properties?.desired), reported: values(twin.properties?.reported) };
  }

  async remove(deviceId: string): Promise<void> {
    const res = await this.call('DELETE', `/devices/${encodeUriComponentStrict(deviceId)}`, undefined, { 'if-match': '*' });
    if (res.status !== 404) this.ok(res, 'deleting the device');
  }

  private ok(res: { status: number; json: unknown; text: string }, doing: string): unknown {
    if (res.status >= 200 && res.status < 300) return res.json;
    const message = (res.json as { Message?: string; message?: string } | undefined)?.Message ?? (res.json as { message?: string } | undefined)?.message ?? res.text;
    throw new RemoteHubError(res.status, `${this.hostName} answered ${res.status} ${doing}: ${message}`);
  }

  private call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; text: string }> {
    const token = createSasToken(this.hostName, this.key, Math.floor(Date.now() / 1000) + TOKEN_SECONDS, this.keyName);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.hostName,
          port: this.port,
          method,
          path: `${path}?api-version=${API_VERSION}`,
          timeout: TIMEOUT_MS,
          headers: {
            authorization: token,
            accept: 'application/json',
            ...(payload !== undefined ? { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload) } : {}),
            ...headers,
          },
        },
        (res) => {
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
            resolve({ status: res.statusCode ?? 0, json, text });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${this.hostName} did not answer within ${TIMEOUT_MS / 1000}s`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}

function values(section: TwinCollection | undefined): TwinCollection {
  const { $metadata: _m, $version: _v, ...rest } = section ?? {};
  return rest;
}
