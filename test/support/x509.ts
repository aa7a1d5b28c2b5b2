/** Test X.509 material for device authentication: self-signed device certificates, CAs, and certificates they issue. */
import { randomBytes, webcrypto } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import assert from 'node:assert/strict';
import { rawRequest, serviceToken, type TestHub } from './hub.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Issued {
  cert: x509.X509Certificate;
  certPem: string;
  keyPem: string;
  keys: CryptoKeyPair;
}

const serial = () => {
  const b = randomBytes(12);
  b[0]! &= 0x7f;
  return b.toString('hex');
};

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function selfSigned(cn: string, isCa = false): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: alg,
    keys,
    extensions: isCa
      ? [new x509.BasicConstraintsExtension(true, 2, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
      : [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return { cert, certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey), keys };
}

export async function issue(ca: Issued, cn: string, isCa = false): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${cn}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: alg,
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    extensions: isCa
      ? [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
      : [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return { cert, certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey), keys };
}

/** SHA-1 thumbprint, upper-case hex, as IoT Hub registers it. */
export async function thumbprint(c: Issued, hash: 'SHA-1' | 'SHA-256' = 'SHA-1'): Promise<string> {
  return Buffer.from(await c.cert.getThumbprint(hash, webcrypto as unknown as Crypto)).toString('hex').toUpperCase();
}

/**
 * Uploads `ca` to the hub's certificates as `name` and proves possession (verification code,
 * proof certificate), so that devices it signs can connect with `authentication.type` certificateAuthority.
 */
export async function verifyHubCa(t: TestHub, name: string, ca: Issued): Promise<void> {
  const admin = async (method: string, path: string, body?: unknown) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return rawRequest(t.host, method, `${path}?api-version=2021-04-12`, {
      body: payload,
      headers: { authorization: await serviceToken(t), ...(payload ? { 'content-type': 'application/json' } : {}) },
    });
  };
  const put = await admin('PUT', `/fleethub/certificates/${name}`, { certificate: ca.certPem });
  assert.equal(put.status, 200, put.text);
  const code = await admin('POST', `/fleethub/certificates/${name}/generateVerificationCode`);
  const proof = await issue(ca, code.json.properties.verificationCode);
  assert.equal((await admin('POST', `/fleethub/certificates/${name}/verify`, { certificate: proof.certPem })).status, 200);
}
