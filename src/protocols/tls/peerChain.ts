import type { TLSSocket } from 'node:tls';
import type { ClientCertificate } from '../mqtt/connect.js';

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
