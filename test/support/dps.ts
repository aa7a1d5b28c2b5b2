/** DPS test helpers: the DPS service credentials and raw calls, and the fixture the device registration tests share. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import provisioningService from 'azure-iot-provisioning-service';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { createSasToken } from '../../src/core/sas.js';
import { eventsOf } from './devices.js';
import { rawRequest, startTestHub, type TestHub } from './hub.js';
import { sdkError } from './sdk.js';
import type { Issued } from './x509.js';

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

/** The key a device of a symmetric-key group signs with, as the Azure docs derive it. */
export function derivedKey(groupKey: string, registrationId: string): string {
  return createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId).digest('base64');
}

/**
 * For assert.rejects: the registration ended with DPS's status 'disabled'. The SDK knows no
 * 'disabled' status: it fails the registration and hands over DPS's answer as `result`.
 */
export function disabledRegistration(e: any): true {
  assert.equal(e.result?.status, 'disabled');
  assert.equal(e.result?.registrationState?.status, 'disabled');
  return true;
}

/** How a provisioned device authenticates to its hub: a SAS key, or an X.509 certificate (with the chain it sends). */
export type DeviceAuth = { key: string } | { cert: Issued; chainPem?: string };

/** A test hub with its DPS, seen through the unmodified service SDKs; what the DPS device tests share. */
export interface DpsFixture {
  t: TestHub;
  /** azure-iot-provisioning-service on the hub's DPS connection string. */
  service: InstanceType<typeof provisioningService.ProvisioningServiceClient>;
  /** azure-iothub on the hub's iothubowner connection string. */
  registry: InstanceType<typeof iothub.Registry>;
  idScope: string;
  /**
   * Connects to `assignedHub` as the device with azure-iot-device (over `Transport`, Mqtt by
   * default), sends one event, checks that the hub's event log holds exactly that event, and
   * returns the device's twin as the service sees it.
   */
  connectAndSend(assignedHub: string, deviceId: string, auth: DeviceAuth, Transport?: unknown): Promise<any>;
  /** The hub has no device `deviceId` (azure-iothub's DeviceNotFoundError). */
  assertNoDevice(deviceId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a test hub (same arguments as startTestHub) and opens the DPS fixture on it. In a describe:
 *   let { t, service, registry, idScope } = {} as DpsFixture;
 *   before(async () => ({ t, service, registry, idScope } = await dpsFixture()));
 *   after(() => t.close());
 */
export async function dpsFixture(...args: Parameters<typeof startTestHub>): Promise<DpsFixture> {
  const t = await startTestHub(...args);
  const service = provisioningService.ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
  const registry = iothub.Registry.fromConnectionString(await t.connectionString());
  const idScope = (await t.hub.info()).dps!.idScope;

  async function connectAndSend(assignedHub: string, deviceId: string, auth: DeviceAuth, Transport: unknown = deviceMqtt.Mqtt) {
    const client =
      'key' in auth
        ? device.Client.fromConnectionString(`HostName=${assignedHub};DeviceId=${deviceId};SharedAccessKey=${auth.key}`, Transport as any)
        : device.Client.fromConnectionString(`HostName=${assignedHub};DeviceId=${deviceId};x509=true`, Transport as any);
    if ('cert' in auth) await client.setOptions({ cert: auth.chainPem ?? auth.cert.certPem, key: auth.cert.keyPem });
    await client.open();
    try {
      await client.sendEvent(new device.Message(JSON.stringify({ hello: deviceId })));
    } finally {
      await client.close();
    }
    const events = await eventsOf(t, deviceId);
    assert.deepEqual(events.map((e) => JSON.parse(e.body.toString())), [{ hello: deviceId }]);
    return (await registry.getTwin(deviceId)).responseBody as any;
  }

  async function assertNoDevice(deviceId: string) {
    await assert.rejects(registry.get(deviceId), sdkError('DeviceNotFoundError'));
  }

  return { t, service, registry, idScope, connectAndSend, assertNoDevice, close: () => t.close() };
}
