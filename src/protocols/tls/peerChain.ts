import { constants } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ClientCertificate } from '../mqtt/connect.js';

/**
 * TLS server options for listeners where devices may authenticate with a client certificate: the
 * handshake asks for one and accepts any (the registry or DPS checks it, not a trust store), and
 * sessions are never resumed. A resumed session carries the client's leaf certificate but not the
 * intermediates it sent (OpenSSL keeps no peer chain in a session), so a device whose chain needs
 * them would be refused on its next connection (e.g. azure-iot-provisioning-device-http, whose
 * https agent resumes sessions, re-registering a few seconds later). A full handshake each time.
 */
export const CLIENT_CERTIFICATE_TLS_OPTIONS = {
  requestCert: true,
  rejectUnauthorized: false,
  secureOptions: constants.SSL_OP_NO_TICKET,
} as const;

/** The TLS client certificate chain a peer sent (leaf first), or undefined when it sent none. */
export function peerChain(socket: TLSSocket): ClientCertificate | undefined {
  const leaf = socket.getPeerCertificate?.(true);
  if (!leaf || !leaf.raw) return undefined;
  const chain: Buffer[] = [];
  let cert: typeof leaf | undefined = leaf;
  while (cert?.raw && !chain.some((c) => c.equals(cert!.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate as typeof leaf | undefined;
  }
  return { chain };
}
