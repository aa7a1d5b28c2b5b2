/**
 * X.509 client certificates over WebSocket (wss://host:443/$iothub/websocket): the TLS client
 * certificate of the HTTPS listener's handshake attests a DPS registration over MqttWs, and
 * authenticates hub devices over MqttWs and AmqpWs, with the unmodified SDKs. And no listener that
 * takes client certificates resumes TLS sessions (a resumed session loses the intermediates).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import securityX509 from 'azure-iot-security-x509';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import common from 'azure-iot-common';
import { dpsFixture, type DpsFixture } from './support/dps.js';
import { eventsOf } from './support/devices.js';
import { sdkError } from './support/sdk.js';
import { issue, selfSigned, thumbprint, verifyHubCa, type Issued } from './support/x509.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { X509Security } = securityX509 as any;

describe('X.509 client certificates over WebSocket', () => {
  let { t, service, registry, idScope, assertNoDevice } = {} as DpsFixture;
  before(async () => ({ t, service, registry, idScope, assertNoDevice } = await dpsFixture()));
  after(() => t.close());

  const registerWs = (registrationId: string, cert: Issued, chainPem = cert.certPem) =>
    ProvisioningDeviceClient.create(
      t.host,
      idScope,
      new provisioningMqtt.MqttWs(),
      new X509Security(registrationId, { cert: chainPem, key: cert.keyPem }),
    ).register() as Promise<any>;

  /** An X.509 device client over `transport`, with no retries (a refusal surfaces at once). */
  async function x509Client(hostName: string, deviceId: string, transport: unknown, cert: Issued, chainPem = cert.certPem) {
    const client = device.Client.fromConnectionString(`HostName=${hostName};DeviceId=${deviceId};x509=true`, transport as any);
    client.setRetryPolicy(new common.NoRetry());
    await client.setOptions({ cert: chainPem, key: cert.keyPem });
    return client;
  }

  async function sendOne(client: device.Client, body: string) {
    await client.open();
    try {
      await client.sendEvent(new device.Message(body));
    } finally {
      await client.close();
    }
  }

  test('DPS over MqttWs: an individual X.509 enrollment registers; an impostor with the same CN is refused and nothing is created', async () => {
    const cert = await selfSigned('ws-x509-individual');
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'ws-x509-individual',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: cert.certPem } } } },
      initialTwin: { tags: { via: 'mqtt-ws' }, properties: { desired: { level: 3 } } },
    } as any);

    const impostor = await selfSigned('ws-x509-individual');
    await assert.rejects(registerWs('ws-x509-individual', impostor), (e: any) => /Not authorized/.test(e?.message));
    await assertNoDevice('ws-x509-individual');
    await assert.rejects(service.getDeviceRegistrationState('ws-x509-individual'), (e: any) => e?.response?.statusCode === 404);

    const result = await registerWs('ws-x509-individual', cert);
    assert.equal(result.assignedHub, t.host);
    assert.equal(result.deviceId, 'ws-x509-individual');
    const created: any = (await registry.get('ws-x509-individual')).responseBody;
    assert.equal(created.authentication.type, 'selfSigned');
    assert.equal(created.authentication.x509Thumbprint.primaryThumbprint, await thumbprint(cert));
    assert.equal((await service.getDeviceRegistrationState('ws-x509-individual')).responseBody.status, 'assigned');

    // The provisioned device reaches its hub over MqttWs with the same certificate.
    await sendOne(await x509Client(result.assignedHub, 'ws-x509-individual', deviceMqtt.MqttWs, cert), 'provisioned over wss');
    assert.equal((await eventsOf(t, 'ws-x509-individual')).length, 1);
    const twin: any = (await registry.getTwin('ws-x509-individual')).responseBody;
    assert.deepEqual(twin.tags, { via: 'mqtt-ws' });
    assert.equal(twin.properties.desired.level, 3);
  });

  test('DPS over MqttWs: a group member chains to the root through the intermediate it sends; an untrusted or incomplete chain is refused and nothing is created', async () => {
    // The group holds the root; the device must send the intermediate in its TLS chain, so this
    // also shows the whole chain crosses the WebSocket's TLS handshake.
    const root = await selfSigned('ws-group-root', true);
    const intermediate = await issue(root, 'ws-group-intermediate', true);
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'ws-x509-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: root.certPem } } } },
      initialTwin: { tags: { fleet: 'ws' } },
    } as any);

    const stranger = await issue(await issue(await selfSigned('ws-other-root', true), 'ws-other-intermediate', true), 'ws-x509-stranger');
    await assert.rejects(registerWs('ws-x509-stranger', stranger), (e: any) => /Not authorized/.test(e?.message));
    await assertNoDevice('ws-x509-stranger');
    // Without the intermediate the leaf does not chain to the group's root.
    const member = await issue(intermediate, 'ws-x509-member');
    await assert.rejects(registerWs('ws-x509-member', member), (e: any) => /Not authorized/.test(e?.message));
    await assertNoDevice('ws-x509-member');

    const chain = `${member.certPem}\n${intermediate.certPem}\n`;
    const result = await registerWs('ws-x509-member', member, chain);
    assert.equal(result.deviceId, 'ws-x509-member');
    const created: any = (await registry.get('ws-x509-member')).responseBody;
    assert.equal(created.authentication.type, 'selfSigned');
    assert.deepEqual(((await registry.getTwin('ws-x509-member')).responseBody as any).tags, { fleet: 'ws' });
    assert.equal((await service.getDeviceRegistrationState('ws-x509-member')).responseBody.status, 'assigned');
  });

  test('hub over MqttWs: a self-signed X.509 device connects and sends telemetry; another certificate is refused', async () => {
    const cert = await selfSigned('ws-mqtt-selfie');
    const stranger = await selfSigned('ws-mqtt-selfie');
    await registry.create({ deviceId: 'ws-mqtt-selfie', authentication: { x509Thumbprint: { primaryThumbprint: await thumbprint(cert) } } } as any);

    await sendOne(await x509Client(t.host, 'ws-mqtt-selfie', deviceMqtt.MqttWs, cert), 'x509 over mqtt-ws');
    const events = await eventsOf(t, 'ws-mqtt-selfie');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.body.toString(), 'x509 over mqtt-ws');
    assert.equal(JSON.parse(events[0]!.systemProperties['iothub-connection-auth-method']!).type, 'x509Certificate');

    const bad = await x509Client(t.host, 'ws-mqtt-selfie', deviceMqtt.MqttWs, stranger);
    await assert.rejects(bad.open(), sdkError('UnauthorizedError'));
    await bad.close().catch(() => undefined);
    assert.equal((await eventsOf(t, 'ws-mqtt-selfie')).length, 1);
  });

  test('hub over AmqpWs: a self-signed X.509 device sends telemetry without CBS; another certificate is refused', async () => {
    const cert = await selfSigned('ws-amqp-selfie');
    const stranger = await selfSigned('ws-amqp-selfie');
    await registry.create({ deviceId: 'ws-amqp-selfie', authentication: { x509Thumbprint: { primaryThumbprint: await thumbprint(cert) } } } as any);

    await sendOne(await x509Client(t.host, 'ws-amqp-selfie', deviceAmqp.AmqpWs, cert), 'x509 over amqp-ws');
    const events = await eventsOf(t, 'ws-amqp-selfie');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.body.toString(), 'x509 over amqp-ws');
    assert.equal(JSON.parse(events[0]!.systemProperties['iothub-connection-auth-method']!).type, 'x509Certificate');

    // The SDK opens the connection (no CBS for X.509); the hub refuses the device link.
    const bad = await x509Client(t.host, 'ws-amqp-selfie', deviceAmqp.AmqpWs, stranger);
    await bad.open().catch(() => undefined);
    await assert.rejects(bad.sendEvent(new device.Message('refused')), (e: any) => /Unauthorized/i.test(`${e.name} ${e.message}`));
    await bad.close().catch(() => undefined);
    assert.equal((await eventsOf(t, 'ws-amqp-selfie')).length, 1);
  });

  test('hub over AmqpWs: a CA-signed device sends its chain over the WebSocket handshake and is authenticated by the verified CA', async () => {
    const ca = await selfSigned('ws-amqp-ca', true);
    const intermediate = await issue(ca, 'ws-amqp-intermediate', true);
    await verifyHubCa(t, 'ws-amqp-ca', ca);
    await registry.create({ deviceId: 'ws-amqp-ca-member', authentication: { type: 'certificateAuthority' } } as any);

    const leaf = await issue(intermediate, 'ws-amqp-ca-member');
    await sendOne(await x509Client(t.host, 'ws-amqp-ca-member', deviceAmqp.AmqpWs, leaf, `${leaf.certPem}\n${intermediate.certPem}\n`), 'ca over amqp-ws');
    assert.equal((await eventsOf(t, 'ws-amqp-ca-member')).length, 1);
    // Without the intermediate the chain does not reach the verified CA.
    const bad = await x509Client(t.host, 'ws-amqp-ca-member', deviceAmqp.AmqpWs, leaf);
    await bad.open().catch(() => undefined);
    await assert.rejects(bad.sendEvent(new device.Message('refused')), (e: any) => /Unauthorized/i.test(`${e.name} ${e.message}`));
    await bad.close().catch(() => undefined);
    assert.equal((await eventsOf(t, 'ws-amqp-ca-member')).length, 1);
  });

  test('Http: a group member whose chain needs its intermediate registers again on a new connection (no TLS session resumption)', async () => {
    const root = await selfSigned('resume-root', true);
    const intermediate = await issue(root, 'resume-intermediate', true);
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'resume-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: root.certPem } } } },
    } as any);
    const leaf = await issue(intermediate, 'resume-member');
    const registerHttp = () =>
      ProvisioningDeviceClient.create(
        t.host,
        idScope,
        new provisioningHttp.Http(),
        new X509Security('resume-member', { cert: `${leaf.certPem}\n${intermediate.certPem}\n`, key: leaf.keyPem }),
      ).register() as Promise<any>;
    assert.equal((await registerHttp()).deviceId, 'resume-member');
    // The SDK's requests go through https.globalAgent, which caches TLS sessions: with its idle
    // keep-alive sockets gone, the next request would resume the session, whose peer certificate
    // is the leaf alone, and the leaf alone does not chain to the group's root.
    https.globalAgent.destroy();
    assert.equal((await registerHttp()).deviceId, 'resume-member');
  });

  test('the HTTPS (443), MQTT (8883) and AMQP (5671) listeners do not resume TLS sessions', async () => {
    const cert = await selfSigned('resume-probe');
    const handshake = (port: number, session?: Buffer) =>
      new Promise<{ reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
        let ticket: Buffer | undefined;
        const socket: TLSSocket = tlsConnect({ host: t.host, port, servername: t.host, cert: cert.certPem, key: cert.keyPem, session, ALPNProtocols: port === 443 ? ['http/1.1'] : undefined });
        socket.on('session', (s: Buffer) => (ticket = s));
        socket.once('error', reject);
        socket.once('secureConnect', () => {
          const reused = socket.isSessionReused();
          // TLS 1.3 tickets arrive after the handshake; give them a moment.
          setTimeout(() => {
            socket.destroy();
            resolve({ reused, session: ticket ?? socket.getSession() });
          }, 100);
        });
      });
    for (const port of [443, 8883, 5671]) {
      const first = await handshake(port);
      assert.equal(first.reused, false);
      const second = await handshake(port, first.session);
      assert.equal(second.reused, false, `port ${port} resumed a TLS session`);
    }
  });
});
