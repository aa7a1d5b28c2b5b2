import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { errors, HubError } from '../../core/errors.js';
import { parseSasToken } from '../../core/sas.js';
import type { ConnectedIdentity, DeviceConnections } from '../../hub/connections/deviceConnections.js';
import { peerChain } from '../tls/peerChain.js';

/**
 * The device or module behind one HTTPS request, proven as on MQTT CONNECT and the AMQP device
 * links, through the same DeviceConnections service: the SAS token in Authorization (each request
 * carries its own, so renewing is just sending a new one), or else the TLS client certificate of
 * the connection. Refusals in IoT Hub's HTTP words: 401 IotHubUnauthorizedAccess, and 404
 * DeviceNotFound for an identity that is not registered or is disabled (what IoT Hub's HTTPS
 * endpoint answers, and what the SDKs turn into DeviceNotFoundError).
 */
export async function authenticateDeviceRequest(
  connections: DeviceConnections,
  request: FastifyRequest,
  deviceId: string,
  moduleId?: string,
  /** The device's path also serves its modules' tokens (telemetry only). */
  options: { modulesByToken?: boolean } = {},
): Promise<ConnectedIdentity> {
  const authorization = request.headers.authorization;
  let auth;
  if (authorization !== undefined) {
    if (options.modulesByToken) moduleId = moduleIdOf(authorization, deviceId, moduleId);
    auth = await connections.authenticateSas(deviceId, moduleId, authorization);
  } else {
    const chain = peerChain(request.raw.socket as TLSSocket)?.chain;
    if (!chain) throw errors.unauthorized('Unauthorized: send a SharedAccessSignature in the Authorization header or a TLS client certificate');
    auth = await connections.authenticateX509(deviceId, moduleId, chain);
  }
  if ('identity' in auth) return auth.identity;
  if (auth.refused === 'deviceDisabled') throw new HubError('DeviceNotFound', `Device ${deviceId} is disabled`);
  const known = await connections.identity(deviceId, moduleId, { scope: 'device', type: 'sas', issuer: 'iothub' });
  if ('refused' in known && known.refused === 'notAuthorized') {
    throw moduleId ? errors.moduleNotFound(deviceId, moduleId) : errors.deviceNotFound(deviceId);
  }
  throw errors.unauthorized(`Unauthorized: ${auth.reason}`);
}

/**
 * azure-iot-device's Http transport posts a module's telemetry to the device's path
 * (`/devices/{id}/messages/events`) with the module's token: the token's audience names the module.
 */
function moduleIdOf(authorization: string, deviceId: string, moduleId: string | undefined): string | undefined {
  if (moduleId !== undefined) return moduleId;
  const token = parseSasToken(authorization);
  if (!token || token.keyName !== undefined) return undefined;
  const m = /\/devices\/([^/]+)\/modules\/([^/]+)\/?$/i.exec(token.resource);
  return m && m[1] === deviceId ? m[2] : undefined;
}
