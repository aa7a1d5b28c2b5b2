import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { caPaths, serverPaths } from './paths.js';

export { caPaths, serverPaths };

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** ECDSA P-256: cheap TLS handshakes (a fleet connects at once), accepted by every SDK's TLS stack. */
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TlsMaterial {
  caCertificatePath: string;
  caCertificatePem: string;
  serverCertificatePem: string;
  serverKeyPem: string;
}

export interface CertificateAuthority {
  certificate: x509.X509Certificate;
  certificatePem: string;
  privateKey: CryptoKey;
}


/**
 * The data directory's local CA and the hub's server certificate. The CA is created once and
 * kept (clients trust it); the server certificate is reissued by that CA whenever the host
 * names change or it nears expiry, so trust survives both. `caDataDir` is where the CA lives
 * when it is not `dataDir` (the extra hubs of one process share the primary hub's CA).
 */
export async function ensureTlsMaterial(dataDir: string, hostNames: string[], caDataDir = dataDir): Promise<TlsMaterial> {
  const ca = await ensureCertificateAuthority(caDataDir);
  const paths = serverPaths(dataDir);
  const names = [...new Set(['localhost', '127.0.0.1', '::1', ...hostNames])];
  if (!serverCertificateFits(paths.cert, names, ca.certificatePem)) {
    const { certPem, keyPem } = await issueServerCertificate(ca, names);
    writeSecret(paths.key, keyPem);
    writeFileSync(paths.cert, certPem);
  }
  return {
    caCertificatePath: caPaths(caDataDir).cert,
    caCertificatePem: ca.certificatePem,
    serverCertificatePem: readFileSync(paths.cert, 'utf8'),
    serverKeyPem: readFileSync(paths.key, 'utf8'),
  };
}

export async function ensureCertificateAuthority(dataDir: string): Promise<CertificateAuthority> {
  const paths = caPaths(dataDir);
  if (existsSync(paths.cert) && existsSync(paths.key)) return loadCertificateAuthority(dataDir);
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=Fleethub Local CA, O=Fleethub',
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeSecret(paths.key, await privateKeyPem(keys.privateKey));
  writeFileSync(paths.cert, certificate.toString('pem'));
  return loadCertificateAuthority(dataDir);
}

export async function loadCertificateAuthority(dataDir: string): Promise<CertificateAuthority> {
  const paths = caPaths(dataDir);
  const certificatePem = readFileSync(paths.cert, 'utf8');
  const der = x509.PemConverter.decodeFirst(readFileSync(paths.key, 'utf8'));
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, alg, true, ['sign']);
  return { certificate: new x509.X509Certificate(certificatePem), certificatePem, privateKey };
}

async function issueServerCertificate(ca: CertificateAuthority, names: string[]) {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names.find((n) => !isIP(n)) ?? 'localhost'}`,
    issuer: ca.certificate.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 397 * DAY),
    signingAlgorithm: alg,
    signingKey: ca.privateKey,
    publicKey: keys.publicKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

function serverCertificateFits(certPath: string, names: string[], caPem: string): boolean {
  if (!existsSync(certPath)) return false;
  const cert = new X509Certificate(readFileSync(certPath));
  if (!cert.verify(new X509Certificate(caPem).publicKey)) return false;
  if (Date.parse(cert.validTo) - Date.now() < 30 * DAY) return false;
  const san = cert.subjectAltName ?? '';
  return names.every((n) => san.includes(isIP(n) ? `IP Address:${n.includes(':') ? expandIpv6(n) : n}` : `DNS:${n}`));
}

/** Node prints IPv6 SANs fully expanded without leading zeros (e.g. 0:0:0:0:0:0:0:1). */
function expandIpv6(ip: string): string {
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const parts = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return parts.map((p) => parseInt(p, 16).toString(16).toUpperCase()).join(':');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

function writeSecret(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}
