import { X509Certificate } from 'node:crypto';
import type { X509CertificateInfo } from '../types.js';

/** A certificate DPS was given, parsed; undefined when the text is neither PEM nor base64 DER. */
export interface ParsedCertificate {
  /** Normalized to PEM for storage. */
  pem: string;
  x509: X509Certificate;
  info: X509CertificateInfo;
}

const PEM = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;

/**
 * DPS takes a certificate as PEM, as the base64 of its DER encoding, or as the base64 of its PEM
 * text (what Azure's own samples and e2e tests send: `Buffer.from(pem).toString('base64')`).
 */
export function parseCertificate(text: unknown): ParsedCertificate | undefined {
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  const m = PEM.exec(text);
  const body = (m ? m[1]! : text).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return undefined;
  const decoded = Buffer.from(body, 'base64');
  // Base64 of PEM text: parse the PEM inside (once; the PEM's own body is DER).
  if (!m && decoded.includes('-----BEGIN CERTIFICATE-----')) {
    const inner = PEM.exec(decoded.toString('latin1'));
    return inner ? parseCertificate(inner[0]) : undefined;
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(decoded);
  } catch {
    return undefined;
  }
  // The DER, whatever form came in (Node also parses PEM bytes), so the stored PEM is always DER inside.
  const der = x509.raw;
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  return { pem, x509, info: certificateInfo(x509, der) };
}

export function certificateInfo(x509: X509Certificate, der: Buffer = x509.raw): X509CertificateInfo {
  return {
    subjectName: distinguishedName(x509.subject),
    sha1Thumbprint: x509.fingerprint.replace(/:/g, ''),
    sha256Thumbprint: x509.fingerprint256.replace(/:/g, ''),
    issuerName: distinguishedName(x509.issuer),
    notBeforeUtc: new Date(x509.validFrom).toISOString(),
    notAfterUtc: new Date(x509.validTo).toISOString(),
    serialNumber: x509.serialNumber.toUpperCase(),
    version: certificateVersion(der),
  };
}

/** Node prints one RDN per line, most general first; DPS (.NET) prints them most specific first. */
function distinguishedName(lines: string): string {
  return lines.split('\n').filter(Boolean).reverse().join(', ');
}

/** The subject's common name (part 2 matches it to the registration id). */
export { commonName } from '../../core/proofOfPossession.js';

/** X.509 version from the DER: TBSCertificate opens with an explicit [0] version when it is not v1. */
function certificateVersion(der: Buffer): number {
  const skipHeader = (at: number): number => {
    const len = der[at + 1]!;
    return at + 2 + (len & 0x80 ? len & 0x7f : 0);
  };
  const tbs = skipHeader(0);
  const first = skipHeader(tbs);
  if (der[first] === 0xa0 && der[first + 2] === 0x02 && der[first + 3] === 0x01) return der[first + 4]! + 1;
  return 1;
}
