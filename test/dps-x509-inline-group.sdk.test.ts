/**
 * The X.509 enrollment-group scenario of Azure's provisioning e2e tests, over Http with the
 * unmodified azure-iot-provisioning-device-http and azure-iot-security-x509, certificates made
 * with the `pem` package as those tests make them: a registration id first registers through an
 * individual enrollment, which is deleted with its device; then a group whose signing certificate
 * is the base64 of a root CA's PEM text takes the device, whose leaf (CN = the registration id,
 * extendedKeyUsage critical clientAuth) is signed by the root or by the second of two
 * intermediates and sent alone or with its chain. The device then connects to its hub.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import securityX509 from 'azure-iot-security-x509';
import { dpsFixture, type DpsFixture } from './support/dps.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { X509Security } = securityX509 as any;

/** The `pem` package (no type declarations): what these tests call of it. */
interface PemResult {
  certificate: string;
  clientKey: string;
  serviceKey: string;
}
const pem = createRequire(import.meta.url)('pem') as {
  createCertificate(options: Record<string, unknown>, callback: (err: Error | null, result: PemResult) => void): void;
};

interface Pair {
  cert: string;
  key: string;
}

const createCertificate = (options: Record<string, unknown>) =>
  new Promise<PemResult>((resolve, reject) => pem.createCertificate(options, (err, r) => (err ? reject(err) : resolve(r))));

const caConfig = (name: string) =>
  ['[req]', 'req_extensions = v3_req', 'distinguished_name = req_distinguished_name', 'x509_extensions = v3_ca', '[req_distinguished_name]', `commonName = ${name}`, '[v3_req]', 'basicConstraints = critical, CA:true'].join('\n');

/** Azure's e2e root: no selfSigned flag, so pem signs with a fresh key (its serviceKey). */
async function rootCa(name: string): Promise<Pair> {
  const r = await createCertificate({ commonName: name, days: 1, config: caConfig(name) });
  return { cert: r.certificate, key: r.serviceKey };
}

async function intermediateCa(name: string, parent: Pair): Promise<Pair> {
  const r = await createCertificate({ commonName: name, serial: Math.floor(Math.random() * 1e9), days: 1, config: caConfig(name), serviceKey: parent.key, serviceCertificate: parent.cert });
  return { cert: r.certificate, key: r.clientKey };
}

async function deviceCert(registrationId: string, parent: Pair): Promise<Pair> {
  const config = ['[req]', 'req_extensions = v3_req', 'distinguished_name = req_distinguished_name', '[req_distinguished_name]', `commonName = ${registrationId}`, '[v3_req]', 'extendedKeyUsage = critical,clientAuth'].join('\n');
  const r = await createCertificate({ commonName: registrationId, serial: Math.floor(Math.random() * 1e9), days: 1, config, serviceKey: parent.key, serviceCertificate: parent.cert });
  return { cert: r.certificate, key: r.clientKey };
}

describe('DPS X.509 enrollment group with an inline signing certificate (Azure provisioning e2e)', () => {
  let { t, service, registry, idScope, connectAndSend } = {} as DpsFixture;
  // One CA chain for every test (openssl key generation is the slow part).
  let root: Pair;
  let int1: Pair;
  let int2: Pair;
  before(async () => {
    ({ t, service, registry, idScope, connectAndSend } = await dpsFixture());
    root = await rootCa('IoTHub Test CA');
    int1 = await intermediateCa('IoTHub Test Intermediate 1', root);
    int2 = await intermediateCa('IoTHub Test Intermediate 2', int1);
  });
  after(() => t.close());

  const register = (registrationId: string, cert: string, key: string) =>
    ProvisioningDeviceClient.create(t.host, idScope, new provisioningHttp.Http(), new X509Security(registrationId, { cert, key })).register() as Promise<any>;

  for (const via of ['root', 'intermediates'] as const) {
    for (const withChain of [false, true]) {
      test(`leaf signed by the ${via}${withChain ? ', sent with its chain' : ', sent alone'}: ${via === 'intermediates' && !withChain ? 'refused (it does not chain to the root)' : 'registers into the group and connects'}`, async () => {
        const registrationId = `reg-${randomUUID()}`;
        const groupId = 'testgroup';

        // First an individual enrollment, registered, then deleted together with its device.
        const selfSigned = await createCertificate({ commonName: registrationId, selfSigned: true, days: 1 });
        await service.createOrUpdateIndividualEnrollment({
          registrationId,
          attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: selfSigned.certificate } } } },
        } as any);
        const first = await register(registrationId, selfSigned.certificate, selfSigned.clientKey);
        assert.equal(first.status ?? 'assigned', 'assigned');
        await service.deleteIndividualEnrollment(registrationId);
        await registry.delete(first.deviceId);

        // Then the group, its signing certificate the base64 of the root's PEM text.
        const signer = via === 'root' ? root : int2;
        const chain = via === 'root' ? [root.cert] : [int2.cert, int1.cert];
        await service.createOrUpdateEnrollmentGroup({
          enrollmentGroupId: groupId,
          attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: Buffer.from(root.cert).toString('base64') } } } },
        } as any);
        try {
          await registerThroughGroup(registrationId, groupId, signer, chain, withChain, via === 'intermediates' && !withChain);
        } finally {
          await service.deleteEnrollmentGroup(groupId);
        }
      });
    }
  }

  async function registerThroughGroup(registrationId: string, groupId: string, signer: Pair, chain: string[], withChain: boolean, refused: boolean): Promise<void> {
        const leaf = await deviceCert(registrationId, signer);
        const presented = withChain ? [leaf.cert, ...chain].join('\n') : leaf.cert;
        // Sent alone, a leaf under intermediates cannot chain to the root: refused, as DPS does.
        if (refused) {
          await assert.rejects(register(registrationId, presented, leaf.key), (e: any) => e?.constructor?.name === 'UnauthorizedError' || /401|Unauthorized/i.test(String(e?.message)));
          return;
        }
        const result = await register(registrationId, presented, leaf.key);
        assert.equal(result.deviceId, registrationId);
        assert.equal(result.assignedHub, t.host);
        const state: any = (await service.getDeviceRegistrationState(registrationId)).responseBody;
        assert.equal(state.status, 'assigned');
        const regs = ((await service.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, groupId).next()) as any).responseBody;
        // (Registration records outlive a deleted group of the same id, as in DPS.)
        assert.ok(regs.some((r: any) => r.registrationId === registrationId && r.status === 'assigned'));
        await connectAndSend(result.assignedHub, registrationId, { cert: { certPem: leaf.cert, keyPem: leaf.key } as any, chainPem: presented });
  }
});
