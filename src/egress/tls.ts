import { rootCertificates } from 'node:tls';

/**
 * The certificate authorities outbound connections trust: the system's, and Fleethub's own CA
 * (so that a hub routes to another Fleethub's namespaces or storage without extra setup).
 */
export function egressTrustedCas(fleethubCaPem: string): string[] {
  return [...rootCertificates, fleethubCaPem];
}
