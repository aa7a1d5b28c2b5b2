import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import common from 'azure-iot-common';
import iothub from 'azure-iothub';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { eventsOf } from './support/devices.js';
import { sdkError } from './support/sdk.js';
import { issue, selfSigned, thumbprint, type Issued } from './support/x509.js';

const { Client, Message } = device;
const { Mqtt } = deviceMqtt;

describe('X.509 device authentication over MQTT, and hub CA certificates', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  before(async () => {
    t = await startTestHub();
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
  });
  after(() => t.close());

  async function x509Client(deviceId: string, cert: Issued, chainPem = cert.certPem) {
    const client = Client.fromConnectionString(`HostName=${t.host};DeviceId=${deviceId};x509=true`, Mqtt);
    client.setRetryPolicy(new common.NoRetry());
    await client.setOptions({ cert: chainPem, key: cert.keyPem });
    return client;
  }

  async function admin(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return rawRequest(t.host, method, `${path}?api-version=2021-04-12`, {
      body: payload,
      headers: { authorization: await serviceToken(t), ...(payload ? { 'content-type': 'application/json' } : {}), ...headers },
    });
  }

  test('a self-signed device connects when its SHA-1 or SHA-256 thumbprint is registered; another certificate is refused', async () => {
    const primary = await selfSigned('selfie');
    const secondary = await selfSigned('selfie');
    const stranger = await selfSigned('selfie');
    await registry.create({
      deviceId: 'selfie',
      authentication: { x509Thumbprint: { primaryThumbprint: await thumbprint(primary), secondaryThumbprint: await thumbprint(secondary, 'SHA-256') } },
    } as any);
    for (const cert of [primary, secondary]) {
      const client = await x509Client('selfie', cert);
      await client.open();
      await client.sendEvent(new Message('x509'));
      await client.close();
    }
    const events = await eventsOf(t, 'selfie');
    assert.equal(events.length, 2);
    assert.deepEqual(JSON.parse(String(events[0]!.systemProperties['iothub-connection-auth-method'])), {
      scope: 'device',
      type: 'x509Certificate',
      issuer: 'iothub',
      acceptingIpFilterRule: null,
    });
    await assert.rejects((await x509Client('selfie', stranger)).open(), sdkError('UnauthorizedError'));
  });

  test('a CA-signed device connects once its CA is uploaded and verified (proof of possession)', async () => {
    const ca = await selfSigned('Fleet Root', true);
    const intermediate = await issue(ca, 'Fleet Intermediate', true);
    const leaf = await issue(intermediate, 'ca-device');
    const impostor = await issue(intermediate, 'someone-else');
    await registry.create({ deviceId: 'ca-device', authentication: { type: 'certificateAuthority' } } as any);
    await registry.create({ deviceId: 'someone', authentication: { type: 'certificateAuthority' } } as any);
    const chain = `${leaf.certPem}\n${intermediate.certPem}\n`;

    // Not registered yet: refused.
    await assert.rejects((await x509Client('ca-device', leaf, chain)).open(), sdkError('UnauthorizedError'));

    const put = await admin('PUT', '/fleethub/certificates/fleet-root', { certificate: ca.certPem });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.properties.isVerified, false);
    assert.equal(put.json.properties.subject, 'CN=Fleet Root');
    // Uploaded but unverified: still refused.
    await assert.rejects((await x509Client('ca-device', leaf, chain)).open(), sdkError('UnauthorizedError'));

    const code = await admin('POST', '/fleethub/certificates/fleet-root/generateVerificationCode', undefined, { 'if-match': `"${put.json.etag}"` });
    assert.equal(code.status, 200, code.text);
    const nonce = code.json.properties.verificationCode as string;
    assert.match(nonce, /^[0-9A-F]{48}$/);

    // A proof not signed by the CA, or with the wrong CN, is refused and changes nothing.
    const wrongSigner = await issue(await selfSigned('other', true), nonce);
    const bad = await admin('POST', '/fleethub/certificates/fleet-root/verify', { certificate: wrongSigner.certPem });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['iothub-errorcode'], 'ArgumentInvalid');
    const wrongCn = await admin('POST', '/fleethub/certificates/fleet-root/verify', { certificate: (await issue(ca, 'not-the-code')).certPem });
    assert.equal(wrongCn.status, 400);
    assert.equal((await admin('GET', '/fleethub/certificates/fleet-root')).json.properties.isVerified, false);

    const verified = await admin('POST', '/fleethub/certificates/fleet-root/verify', { certificate: (await issue(ca, nonce)).certPem });
    assert.equal(verified.status, 200, verified.text);
    assert.equal(verified.json.properties.isVerified, true);
    const list = await admin('GET', '/fleethub/certificates');
    assert.deepEqual(list.json.value.map((c: any) => [c.name, c.properties.isVerified]), [['fleet-root', true]]);

    const client = await x509Client('ca-device', leaf, chain);
    await client.open();
    await client.sendEvent(new Message('signed by a verified CA'));
    await client.close();
    assert.equal((await eventsOf(t, 'ca-device')).length, 1);

    // The CN must be the device id.
    await assert.rejects((await x509Client('someone', impostor, `${impostor.certPem}\n${intermediate.certPem}\n`)).open(), sdkError('UnauthorizedError'));

    // Deleting the CA revokes it.
    assert.equal((await admin('DELETE', '/fleethub/certificates/fleet-root')).status, 204);
    await assert.rejects((await x509Client('ca-device', leaf, chain)).open(), sdkError('UnauthorizedError'));
    assert.equal((await admin('GET', '/fleethub/certificates/fleet-root')).status, 404);
  });

  test('certificate admin API refuses bad input and needs a registry-write token', async () => {
    assert.equal((await admin('PUT', '/fleethub/certificates/bad', { certificate: 'not a pem' })).status, 400);
    assert.equal((await admin('PUT', '/fleethub/certificates/bad%20name', { certificate: (await selfSigned('x', true)).certPem })).status, 400);
    const noAuth = await rawRequest(t.host, 'GET', '/fleethub/certificates?api-version=2021-04-12');
    assert.equal(noAuth.status, 401);
    const readOnly = await rawRequest(t.host, 'PUT', '/fleethub/certificates/x?api-version=2021-04-12', {
      body: JSON.stringify({ certificate: (await selfSigned('x', true)).certPem }),
      headers: { authorization: await serviceToken(t, 'registryRead'), 'content-type': 'application/json' },
    });
    assert.equal(readOnly.status, 401);
    assert.equal((await admin('GET', '/fleethub/certificates')).json.value.length, 0);
  });
});
