import type { IConnectPacket } from 'mqtt-packet';
import { isValidDeviceId, isValidModuleId } from '../../core/ids.js';
import { parseSasToken } from '../../core/sas.js';
import type { ConnectedIdentity, DeviceConnections, Refusal } from '../../hub/connections/deviceConnections.js';

/** MQTT 3.1.1 CONNACK return codes. */
export enum ConnackCode {
  Accepted = 0,
  UnacceptableProtocolVersion = 1,
  IdentifierRejected = 2,
  ServerUnavailable = 3,
  BadUsernameOrPassword = 4,
  NotAuthorized = 5,
}

/**
 * How IoT Hub answers a refused identity: credentials that do not authenticate get 5 (not
 * authorized), a disabled device gets 3 (server unavailable; the Azure C and Java SDKs read it
 * as "device disabled"), and a missing or malformed password gets 4.
 */
const refusalCodes: Record<Refusal, ConnackCode> = {
  badCredentials: ConnackCode.BadUsernameOrPassword,
  notAuthorized: ConnackCode.NotAuthorized,
  deviceDisabled: ConnackCode.ServerUnavailable,
};

/** A TLS client certificate, as the listener saw it (verification is the authenticator's job). */
export interface ClientCertificate {
  /** DER bytes of the leaf and, when the client sent them, its issuers, leaf first. */
  chain: Buffer[];
}

export interface ConnectContext {
  connections: DeviceConnections;
  hostNames: ReadonlySet<string>;
}

export type ConnectResult = { identity: ConnectedIdentity } | { refused: ConnackCode; reason: string };

/**
 * CONNECT as IoT Hub reads it: MQTT 3.1.1; client id `{deviceId}` or `{deviceId}/{moduleId}`;
 * user name `{host}/{clientId}/?api-version=…` (the `?` is optional, the Azure SDKs omit it);
 * password a SAS token, or no password and a TLS client certificate.
 */
export async function authenticateConnect(
  packet: IConnectPacket,
  certificate: ClientCertificate | undefined,
  context: ConnectContext,
): Promise<ConnectResult> {
  if (packet.protocolId !== 'MQTT' || packet.protocolVersion !== 4) {
    return { refused: ConnackCode.UnacceptableProtocolVersion, reason: `protocol ${packet.protocolId} ${packet.protocolVersion}` };
  }
  const parts = packet.clientId.split('/');
  const [deviceId, moduleId] = parts;
  if (parts.length > 2 || !isValidDeviceId(deviceId) || (moduleId !== undefined && !isValidModuleId(moduleId))) {
    return { refused: ConnackCode.IdentifierRejected, reason: `client id '${packet.clientId}' is not {deviceId} or {deviceId}/{moduleId}` };
  }
  const username = packet.username ?? '';
  const slash = username.indexOf('/');
  const host = username.slice(0, slash).toLowerCase();
  if (slash <= 0 || !context.hostNames.has(host) || !username.slice(slash + 1).startsWith(`${packet.clientId}/`)) {
    return { refused: ConnackCode.BadUsernameOrPassword, reason: `user name is not {host}/${packet.clientId}/?api-version=…` };
  }
  let result;
  if (packet.password !== undefined) {
    const password = packet.password.toString('utf8');
    if (!parseSasToken(password)) return { refused: ConnackCode.BadUsernameOrPassword, reason: 'the password is not a SharedAccessSignature' };
    result = await context.connections.authenticateSas(deviceId!, moduleId, password);
  } else if (certificate) {
    result = await context.connections.authenticateX509(deviceId!, moduleId, certificate.chain);
  } else {
    return { refused: ConnackCode.NotAuthorized, reason: 'neither a SAS token nor a client certificate' };
  }
  return 'identity' in result ? result : { refused: refusalCodes[result.refused], reason: result.reason };
}
