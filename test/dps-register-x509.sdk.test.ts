/**
 * X.509 attestation at registration, over MQTT (TLS client certificate on the hub's listener),
 * with the unmodified azure-iot-provisioning-device-mqtt and azure-iot-security-x509.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import securityX509 from 'azure-iot-security-x509';
import { dpsFixture, dpsRequest, type DpsFixture } from './support/dps.js';
import { sdkError } from './support/sdk.js';
import { issue, selfSigned, thumbprint, type Issued } from './support/x509.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { X509Security } = securityX509 as any;

describe('DPS device registration with X.509 attestation (TLS client certificate)', () => {
  let { t, service, registry, idScope, connectAndSend, assertNoDevice } = {} as DpsFixture;
  before(async () => ({ t, service, registry, idScope, connectAndSend, assertNoDevice } = await dpsFixture()));
  after(() => t.close());

  const register = (registrationId: string, cert: Issued, chainPem = cert.certPem, transport: any = new provisioningMqtt.Mqtt()) =>
    ProvisioningDeviceClient.create(
      t.host,
      idScope,
      transport,
      new X509Security(registrationId, { cert: chainPem, key: cert.keyPem }),
    ).register() as Promise<any>;

  test('individual enrollment: matched by certificate; the device gets a thumbprint identity and its initial twin', async () => {
    const cert = await selfSigned('x509-individual');
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'x509-individual',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: cert.certPem } } } },
      initialTwin: { tags: { kind: 'x509' }, properties: { desired: { level: 1 } } },
    } as any);
    const result = await register('x509-individual', cert);
    assert.equal(result.assignedHub, t.host);
    assert.equal(result.deviceId, 'x509-individual');

    const created: any = (await registry.get('x509-individual')).responseBody;
    assert.equal(created.authentication.type, 'selfSigned');
    assert.equal(created.authentication.x509Thumbprint.primaryThumbprint, await thumbprint(cert));

    const twin = await connectAndSend(result.assignedHub, 'x509-individual', { cert });
    assert.deepEqual(twin.tags, { kind: 'x509' });
    assert.equal(twin.properties.desired.level, 1);
    assert.equal((await service.getDeviceRegistrationState('x509-individual')).responseBody.status, 'assigned');

    // Another certificate with the same CN is refused at CONNECT; nothing changes.
    const impostor = await selfSigned('x509-individual');
    await assert.rejects(register('x509-individual', impostor), (e: any) => /Not authorized/.test(e?.message));
  });

  test('Http: the client certificate on the HTTPS listener attests an individual enrollment; an impostor gets 401', async () => {
    const cert = await selfSigned('x509-over-http');
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'x509-over-http',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: cert.certPem } } } },
      initialTwin: { tags: { via: 'https' } },
    } as any);
    const impostor = await selfSigned('x509-over-http');
    await assert.rejects(register('x509-over-http', impostor, impostor.certPem, new provisioningHttp.Http()), sdkError('UnauthorizedError'));
    await assertNoDevice('x509-over-http');

    const result = await register('x509-over-http', cert, cert.certPem, new provisioningHttp.Http());
    assert.equal(result.deviceId, 'x509-over-http');
    const twin = await connectAndSend(result.assignedHub, 'x509-over-http', { cert });
    assert.deepEqual(twin.tags, { via: 'https' });
  });

  test('enrollment group through an intermediate: devices with CN = registration id get a self-signed identity with the thumbprint of their leaf, as DPS gives them', async () => {
    const root = await selfSigned('x509-group-root', true);
    const intermediate = await issue(root, 'x509-group-intermediate', true);
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'x509-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: intermediate.certPem } } } },
      initialTwin: { tags: { fleet: 'x509' }, properties: { desired: { rate: 9 } } },
    } as any);
    const leaf = await issue(intermediate, 'x509-member');
    const chain = `${leaf.certPem}\n${intermediate.certPem}\n`;
    const result = await register('x509-member', leaf, chain);
    assert.equal(result.deviceId, 'x509-member');
    const created: any = (await registry.get('x509-member')).responseBody;
    assert.equal(created.authentication.type, 'selfSigned');
    assert.equal(created.authentication.x509Thumbprint.primaryThumbprint, await thumbprint(leaf));
    assert.equal((await service.getDeviceRegistrationState('x509-member')).responseBody.status, 'assigned');

    // An untrusted chain, or a CN that is not the registration id, is refused; nothing is created.
    const stranger = await issue(await selfSigned('other-root', true), 'x509-stranger');
    await assert.rejects(register('x509-stranger', stranger), (e: any) => /Not authorized/.test(e?.message));
    await assertNoDevice('x509-stranger');
    const wrongCn = await issue(intermediate, 'somebody-else');
    await assert.rejects(register('x509-wrong-cn', wrongCn, `${wrongCn.certPem}\n${intermediate.certPem}\n`), (e: any) => /Not authorized/.test(e?.message));
    await assertNoDevice('x509-wrong-cn');
  });

  test('group referencing a verified DPS CA: a device registers over Http, then connects (the hub need not know the CA)', async () => {
    const ca = await selfSigned('x509-verified-root', true);
    assert.equal((await dpsRequest(t, 'PUT', '/fleethub/dps/certificates/fleet-ca', { certificate: ca.certPem })).status, 200);
    const { json: coded } = await dpsRequest(t, 'POST', '/fleethub/dps/certificates/fleet-ca/generateVerificationCode');
    const proof = await issue(ca, coded.properties.verificationCode);
    assert.equal((await dpsRequest(t, 'POST', '/fleethub/dps/certificates/fleet-ca/verify', { certificate: proof.certPem })).json.properties.isVerified, true);
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'x509-ca-group',
      attestation: { type: 'x509', x509: { caReferences: { primary: 'fleet-ca' } } },
      initialTwin: { tags: { trust: 'verified-ca' }, properties: { desired: { on: true } } },
    } as any);
    const leaf = await issue(ca, 'x509-ca-member');
    const result = await register('x509-ca-member', leaf, leaf.certPem, new provisioningHttp.Http());
    assert.equal(result.deviceId, 'x509-ca-member');
    assert.equal(((await registry.get('x509-ca-member')).responseBody as any).authentication.type, 'selfSigned');

    const twin = await connectAndSend(result.assignedHub, 'x509-ca-member', { cert: leaf });
    assert.deepEqual(twin.tags, { trust: 'verified-ca' });
    assert.equal(twin.properties.desired.on, true);
  });
});
