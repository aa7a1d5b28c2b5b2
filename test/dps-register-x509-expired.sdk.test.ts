/**
 * Expired certificates are refused at X.509 attestation, over Http and Mqtt, with the unmodified
 * azure-iot-provisioning-device(-http/-mqtt) and azure-iot-security-x509: an individual
 * enrollment whose device certificate has expired, a group whose signing (intermediate)
 * certificate has expired, and a chain through an expired intermediate. Nothing is created.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, webcrypto } from 'node:crypto';
import { request } from 'node:https';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import securityX509 from 'azure-iot-security-x509';
import { dpsFixture, type DpsFixture } from './support/dps.js';
import { sdkError } from './support/sdk.js';
import { issue as issueValid, selfSigned, type Issued } from './support/x509.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const { ProvisioningDeviceClient } = provisioningDevice;
const { X509Security } = securityX509 as any;
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A certificate `issuer` signs (self-signed without one) that expired yesterday. */
async function expired(cn: string, issuer?: Issued, isCa = false): Promise<Issued> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const serial = randomBytes(12);
  serial[0]! &= 0x7f;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: `CN=${cn}`,
    issuer: issuer ? issuer.cert.subject : `CN=${cn}`,
    notBefore: new Date(Date.now() - 60 * DAY),
    notAfter: new Date(Date.now() - DAY),
    signingAlgorithm: alg,
    signingKey: (issuer?.keys ?? keys).privateKey,
    publicKey: keys.publicKey,
    extensions: isCa
      ? [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
      : [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { cert, certPem: cert.toString('pem'), keyPem, keys };
}

describe('DPS X.509 attestation refuses expired certificates', () => {
  let { t, service, registry, idScope, assertNoDevice } = {} as DpsFixture;
  before(async () => ({ t, service, registry, idScope, assertNoDevice } = await dpsFixture()));
  after(() => t.close());

  const register = (registrationId: string, cert: Issued, chainPem: string, transport: any) =>
    ProvisioningDeviceClient.create(t.host, idScope, transport, new X509Security(registrationId, { cert: chainPem, key: cert.keyPem })).register() as Promise<any>;

  /** Refused over both transports: Http with the SDK's 401 error, Mqtt at CONNECT; DPS's body over raw HTTPS. */
  async function assertRefused(registrationId: string, cert: Issued, chainPem = cert.certPem) {
    await assert.rejects(register(registrationId, cert, chainPem, new provisioningHttp.Http()), sdkError('UnauthorizedError'));
    await assert.rejects(register(registrationId, cert, chainPem, new provisioningMqtt.Mqtt()), (e: any) => /Not authorized/.test(e?.message));
    const raw = await registerRaw(registrationId, cert, chainPem);
    assert.equal(raw.status, 401);
    assert.equal(raw.json.errorCode, 401002);
    assert.equal(typeof raw.json.trackingId, 'string');
    await assertNoDevice(registrationId);
    await assert.rejects(service.getDeviceRegistrationState(registrationId), (e: any) => e.response?.statusCode === 404);
  }

  /** PUT …/register over HTTPS with the client certificate, to see DPS's error body. */
  function registerRaw(registrationId: string, cert: Issued, chainPem: string): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({ registrationId });
      const req = request(
        {
          host: t.host,
          port: 443,
          method: 'PUT',
          path: `/${idScope}/registrations/${registrationId}/register?api-version=2019-03-31`,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          cert: chainPem,
          key: cert.keyPem,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  test('individual enrollment whose device certificate has expired: refused; the same enrollment with a valid certificate registers', async () => {
    const old = await expired('x509-expired-leaf');
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'x509-expired-leaf',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: old.certPem } } } },
    } as any);
    await assertRefused('x509-expired-leaf', old);

    // Control: renewing the enrollment's certificate makes the same registration id work.
    const renewed = await selfSigned('x509-expired-leaf');
    const { responseBody: enrollment } = await service.getIndividualEnrollment('x509-expired-leaf');
    await service.createOrUpdateIndividualEnrollment({
      ...enrollment,
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: renewed.certPem } } } },
    } as any);
    const result = await register('x509-expired-leaf', renewed, renewed.certPem, new provisioningHttp.Http());
    assert.equal(result.status, 'assigned');
    assert.equal(result.deviceId, 'x509-expired-leaf');
  });

  test('group whose signing (intermediate) certificate has expired: a valid device certificate it issued is refused', async () => {
    const root = await selfSigned('x509-expired-group-root', true);
    const oldIntermediate = await expired('x509-expired-group-intermediate', root, true);
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'x509-expired-signer',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: oldIntermediate.certPem } } } },
    } as any);
    const leaf = await issueValid(oldIntermediate, 'x509-expired-signer-member');
    assert.ok(Date.parse(leaf.cert.notAfter.toISOString()) > Date.now(), 'the device certificate itself is valid');
    await assertRefused('x509-expired-signer-member', leaf, `${leaf.certPem}\n${oldIntermediate.certPem}\n`);
  });

  test('group on a valid root: a chain through an expired intermediate, or an expired device certificate, is refused; a valid chain registers', async () => {
    const root = await selfSigned('x509-root-of-expired', true);
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'x509-valid-root',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: root.certPem } } } },
    } as any);
    const oldIntermediate = await expired('x509-old-intermediate', root, true);
    const throughOld = await issueValid(oldIntermediate, 'x509-through-expired');
    await assertRefused('x509-through-expired', throughOld, `${throughOld.certPem}\n${oldIntermediate.certPem}\n`);

    const intermediate = await issueValid(root, 'x509-current-intermediate', true);
    const oldLeaf = await expired('x509-expired-member', intermediate);
    await assertRefused('x509-expired-member', oldLeaf, `${oldLeaf.certPem}\n${intermediate.certPem}\n`);

    // Control: the same root and a current chain register, over both transports.
    for (const [registrationId, transport] of [
      ['x509-current-http', new provisioningHttp.Http()],
      ['x509-current-mqtt', new provisioningMqtt.Mqtt()],
    ] as const) {
      const leaf = await issueValid(intermediate, registrationId);
      const result = await register(registrationId, leaf, `${leaf.certPem}\n${intermediate.certPem}\n`, transport);
      assert.equal(result.status, 'assigned');
      assert.equal(((await registry.get(registrationId)).responseBody as any).authentication.type, 'selfSigned');
    }
  });
});
