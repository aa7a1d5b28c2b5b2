/**
 * `dps.retryAfterSeconds`: the retry-after a device is told while `assigning`. Fleethub assigns
 * before it answers, so 0 lets a device finish at its first poll; every transport must carry a
 * 0 the SDK actually honours (its AMQP transport ignores a falsy number and waits 2 s).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import provisioningAmqp from 'azure-iot-provisioning-device-amqp';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { rawRequest, type TestHub } from './support/hub.js';
import { API, dpsFixture, type DpsFixture } from './support/dps.js';
import { createSasToken } from '../src/core/sas.js';
import { loadConfig } from '../src/config/index.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { SymmetricKeySecurityClient } = symmetricKey;

describe('dps.retryAfterSeconds', () => {
  let t: TestHub;
  let idScope: string;
  const key = Buffer.alloc(32, 7).toString('base64');

  before(async () => {
    let service: DpsFixture['service'];
    ({ t, service, idScope } = await dpsFixture({ dps: { linkedHubs: [], allocationPolicy: 'hashed', retryAfterSeconds: 0 } }));
    for (const registrationId of ['ra-http', 'ra-mqtt', 'ra-amqp', 'ra-raw']) {
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } },
      } as any);
    }
  });
  after(() => t.close());

  test('the PUT answers 202 assigning with retry-after: 0', async () => {
    const token = createSasToken(`${idScope}/registrations/ra-raw`, key, Math.floor(Date.now() / 1000) + 600, 'registration');
    const body = JSON.stringify({ registrationId: 'ra-raw' });
    const res = await rawRequest(t.host, 'PUT', `/${idScope}/registrations/ra-raw/register?${API}`, {
      fresh: true,
      body,
      headers: { authorization: token, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    assert.equal(res.status, 202);
    assert.equal(res.headers['retry-after'], '0');
  });

  for (const [name, transport, registrationId] of [
    ['Http', () => new provisioningHttp.Http(), 'ra-http'],
    ['Mqtt', () => new provisioningMqtt.Mqtt(), 'ra-mqtt'],
    ['Amqp', () => new provisioningAmqp.Amqp(), 'ra-amqp'],
  ] as const) {
    test(`${name}: the SDK is told to wait 0 ms (not its 2 s default) and is assigned at its first poll`, async () => {
      // What the SDK's polling state machine acts on: each transport answer and the wait (ms) the
      // transport decoded from the wire's retry-after, which the machine passes to setTimeout.
      // Asserted on these rather than on wall-clock time, which a loaded machine stretches.
      const answers: { call: string; status?: string; pollingInterval?: number }[] = [];
      const sdkTransport = transport() as any;
      for (const call of ['registrationRequest', 'queryOperationStatus'] as const) {
        const original = sdkTransport[call].bind(sdkTransport);
        sdkTransport[call] = (...args: any[]) => {
          const callback = args.pop();
          return original(...args, (err: unknown, result: any, response: unknown, pollingInterval: number) => {
            answers.push({ call, status: result?.status, pollingInterval });
            callback(err, result, response, pollingInterval);
          });
        };
      }
      const client = ProvisioningDeviceClient.create(t.host, idScope, sdkTransport, new SymmetricKeySecurityClient(registrationId, key) as any);
      const result: any = await client.register();
      assert.equal(result.status, 'assigned');
      // One poll, and it found the device assigned.
      assert.deepEqual(
        answers.map((a) => [a.call, a.status]),
        [
          ['registrationRequest', 'assigning'],
          ['queryOperationStatus', 'assigned'],
        ],
      );
      // The wait before it: retry-after 1 would be 1000 ms, a 0 the transport ignores its 2000 ms default.
      assert.equal(answers[0]!.pollingInterval, 0);
    });
  }

  test('configuration: an integer 0-60, from the file or FLEETHUB_DPS_RETRY_AFTER_SECONDS', () => {
    assert.equal(loadConfig({ env: { FLEETHUB_DPS_RETRY_AFTER_SECONDS: '0' }, cwd: '/nonexistent' }).dps.retryAfterSeconds, 0);
    assert.equal(loadConfig({ env: {}, cwd: '/nonexistent' }).dps.retryAfterSeconds, 1);
    assert.throws(() => loadConfig({ env: { FLEETHUB_DPS_RETRY_AFTER_SECONDS: '1.5' }, cwd: '/nonexistent' }), /dps\.retryAfterSeconds' must be an integer 0-60/);
  });
});
