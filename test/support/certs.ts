/** Test certificates: a root CA, intermediates and leaves, made with @peculiar/x509. */
import { randomBytes, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TestCertificate {
  certificate: x509.X509Certificate;
  pem: string;
  /** Base64 DER, the other form DPS accepts. */
  base64: string;
  keys: CryptoKeyPair;
}

const serial = () => {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
};

function wrap(certificate: x509.X509Certificate, keys: CryptoKeyPair): TestCertificate {
  return { certificate, keys, pem: certificate.toString('pem'), base64: Buffer.from(certificate.rawData).toString('base64') };
}

export async function rootCa(cn: string): Promise<TestCertificate> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${cn}, O=Fleethub Tests`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, 2, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return wrap(certificate, keys);
}

/** A certificate issued by `issuer`: an intermediate CA when `ca`, else a leaf. */
export async function issue(issuer: TestCertificate, cn: string, ca = false): Promise<TestCertificate> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${cn}`,
    issuer: issuer.certificate.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: alg,
    signingKey: issuer.keys.privateKey,
    publicKey: keys.publicKey,
    extensions: ca
      ? [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
      : [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  return wrap(certificate, keys);
}

/**
 * A TPM 2.0 endorsement key as a TPM reports it: TPM2B_PUBLIC of the default RSA 2048 EK
 * template (TCG EK Credential Profile), with a random modulus.
 */
export function tpmEndorsementKey(): string {
  const policy = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');
  const modulus = randomBytes(256);
  const parts: Buffer[] = [];
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    parts.push(b);
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    parts.push(b);
  };
  u16(0x0001); // TPM_ALG_RSA
  u16(0x000b); // SHA256
  u32(0x000300b2); // fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt
  u16(policy.length);
  parts.push(policy);
  u16(0x0006); // AES
  u16(128);
  u16(0x0043); // CFB
  u16(0x0010); // scheme NULL
  u16(2048);
  u32(0); // default exponent
  u16(modulus.length);
  parts.push(modulus);
  const body = Buffer.concat(parts);
  const size = Buffer.alloc(2);
  size.writeUInt16BE(body.length);
  return Buffer.concat([size, body]).toString('base64');
}
