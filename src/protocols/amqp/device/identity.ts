import type { Receiver, Sender } from 'rhea';
import type { ConnectedIdentity, DeviceConnections } from '../../../hub/connections/deviceConnections.js';
import { amqpErrors } from '../errors.js';
import type { ClientConnection, IncomingLink } from '../link.js';
import { authorizeLink } from '../linkAuth.js';
import { clientCertificateChain } from '../peer.js';

/** The device plane's link addresses: `/devices/{id}[/modules/{mid}]/<rest>`. */
export const deviceAddress = (rest: string) => new RegExp(`^/devices/([^/]+)(?:/modules/([^/]+))?/${rest}$`, 'i');

/** The device and module ids from a match of `deviceAddress`, decoded. */
function addressIds(m: RegExpExecArray): { deviceId: string; moduleId?: string } {
  return { deviceId: decodeURIComponent(m[1]!), moduleId: m[2] ? decodeURIComponent(m[2]) : undefined };
}

/**
 * The device (or module) a device-plane link was attached for, read from its address and proven
 * as `deviceIdentity` proves it; undefined (the link closed) when refused.
 */
export async function deviceLink(
  connections: DeviceConnections,
  incoming: IncomingLink<Sender | Receiver>,
  m: RegExpExecArray,
): Promise<{ deviceId: string; moduleId?: string; identity: ConnectedIdentity; activity(): void } | undefined> {
  const { deviceId, moduleId } = addressIds(m);
  const session = await deviceIdentity(connections, incoming, deviceId, moduleId);
  return session && { deviceId, moduleId, identity: session.identity, activity: () => session.activity() };
}

interface DeviceSession {
  identity: ConnectedIdentity;
  links: Set<Sender | Receiver>;
  activity(): void;
}

const sessions = new WeakMap<ClientConnection, Map<string, Promise<DeviceSession | undefined>>>();

/**
 * The identity behind a device link: the token the connection put for the device (or a policy
 * granting DeviceConnect) must prove it, as on MQTT CONNECT, through the same DeviceConnections
 * service (connection state, one live connection per identity). One registration per identity
 * per AMQP connection, however many links it attaches. Closes the link and returns undefined when
 * the identity is refused.
 */
export async function deviceIdentity(
  connections: DeviceConnections,
  incoming: IncomingLink<Sender | Receiver>,
  deviceId: string,
  moduleId: string | undefined,
): Promise<{ identity: ConnectedIdentity; activity(): void } | undefined> {
  const { connection, link } = incoming;
  const resource = `/devices/${deviceId}` + (moduleId ? `/modules/${moduleId}` : '');
  // X.509 devices skip CBS: their TLS client certificate is the credential.
  const certificate = (await connection.claims.tokenFor(resource)) === undefined ? clientCertificateChain(connection.rhea) : undefined;
  if (!certificate && !(await authorizeLink(incoming, 'DeviceConnect', resource))) return undefined;
  let byIdentity = sessions.get(connection);
  if (!byIdentity) sessions.set(connection, (byIdentity = new Map()));
  const key = resource.toLowerCase();
  let pending = byIdentity.get(key);
  if (!pending) {
    pending = open(connections, connection, deviceId, moduleId, resource, certificate);
    byIdentity.set(key, pending);
    void pending.then((s) => s === undefined && byIdentity!.delete(key));
  }
  const session = await pending;
  if (!session) {
    link.close(amqpErrors.unauthorized(`The identity ${resource} is not allowed to connect`));
    return undefined;
  }
  session.links.add(link);
  link.on(link.is_sender() ? 'sender_close' : 'receiver_close', () => session.links.delete(link));
  return session;
}

async function open(
  connections: DeviceConnections,
  connection: ClientConnection,
  deviceId: string,
  moduleId: string | undefined,
  resource: string,
  certificate: Buffer[] | undefined,
): Promise<DeviceSession | undefined> {
  let auth;
  if (certificate) auth = await connections.authenticateX509(deviceId, moduleId, certificate);
  else {
    const token = await connection.claims.tokenFor(resource);
    if (!token) return undefined;
    auth = await connections.authenticateSas(deviceId, moduleId, token);
  }
  if (!('identity' in auth)) return undefined;
  const links = new Set<Sender | Receiver>();
  const handle = await connections.connected(auth.identity, {
    // Another connection of the same identity replaced this one: its links end, as on IoT Hub.
    close: (reason) => {
      sessions.get(connection)?.delete(resource.toLowerCase());
      for (const l of [...links]) l.close({ condition: 'amqp:link:stolen', description: reason });
    },
  });
  connection.onClose(() => handle.disconnected());
  return { identity: auth.identity, links, activity: () => handle.activity() };
}
