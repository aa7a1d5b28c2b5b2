import type { TLSSocket } from 'node:tls';
import type { Connection } from 'rhea';
import { peerChain } from '../tls/peerChain.js';

/**
 * The connection option under which an AMQP-over-WebSocket connection keeps the TLS socket of
 * its HTTP upgrade (rhea itself only knows the TLS socket of a TLS listener's connection).
 */
export const UPGRADE_SOCKET_OPTION = 'fleethub_upgrade_socket';

/**
 * The TLS client certificate chain (leaf first, DER) the peer of an AMQP connection presented, on
 * the TLS listener or on the HTTPS listener it upgraded to WebSocket from; undefined when none.
 */
export function clientCertificateChain(connection: Connection): Buffer[] | undefined {
  const raw = connection as unknown as { get_tls_socket?(): TLSSocket | undefined; options?: Record<string, unknown> };
  const socket = raw.get_tls_socket?.() ?? (raw.options?.[UPGRADE_SOCKET_OPTION] as TLSSocket | undefined);
  return socket && typeof socket.getPeerCertificate === 'function' ? peerChain(socket)?.chain : undefined;
}
