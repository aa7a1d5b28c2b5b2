/**
 * Registration operations survive a restart: the operation id a device was given with its 202
 * is still answered after the hub restarts (HTTPS and MQTT), and an unknown, foreign or expired
 * operation id gets DPS's 404 error form. Raw HTTPS and raw MQTT show the operation id, which the
 * SDK keeps to itself; the unmodified SDK registers over the same paths afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt, { type MqttClient } from 'mqtt';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { rawRequest } from './support/hub.js';
import { dpsFixture, type DpsFixture } from './support/dps.js';
import { createSasToken } from '../src/core/sas.js';
import { openSqliteDpsStore } from '../src/store/sqlite/dps.js';

const DEVICE_API = 'api-version=2019-03-31';

describe('DPS registration operations are stored and survive a restart', () => {
  let { t, service, registry, idScope } = {} as DpsFixture;
  before(async () => ({ t, service, registry, idScope } = await dpsFixture()));
  after(() => t.close());

  async function enroll(registrationId: string): Promise<string> {
    await service.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey' } } as any);
    return (await service.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody.symmetricKey!.primaryKey;
  }

  const sas = (registrationId: string, key: string) =>
    createSasToken(`${idScope}/registrations/${registrationId}`, key, Math.floor(Date.now() / 1000) + 600, 'registration');

  const put = (registrationId: string, key: string) =>
    rawRequest(t.host, 'PUT', `/${idScope}/registrations/${registrationId}/register?${DEVICE_API}`, {
      body: JSON.stringify({ registrationId }),
      headers: { authorization: sas(registrationId, key), 'content-type': 'application/json' },
      fresh: true,
    });

  const poll = (registrationId: string, key: string, operationId: string) =>
    rawRequest(t.host, 'GET', `/${idScope}/registrations/${registrationId}/operations/${encodeURIComponent(operationId)}?${DEVICE_API}`, {
      headers: { authorization: sas(registrationId, key) },
      fresh: true,
    });

  function assertNotFound(res: { status: number; json: any }) {
    assert.equal(res.status, 404);
    assert.equal(res.json.errorCode, 404000);
    assert.equal(typeof res.json.trackingId, 'string');
    assert.equal(typeof res.json.message, 'string');
    assert.ok(Date.parse(res.json.timestampUtc) > 0);
  }

  test('Http: a 202 operation id is answered after a restart; unknown and foreign ids get 404', async () => {
    const key = await enroll('op-http');
    const res = await put('op-http', key);
    assert.equal(res.status, 202, res.text);
    assert.equal(res.json.status, 'assigning');
    const operationId: string = res.json.operationId;
    assert.ok(operationId);

    await t.restart();

    const after = await poll('op-http', key, operationId);
    assert.equal(after.status, 200, after.text);
    assert.equal(after.json.operationId, operationId);
    assert.equal(after.json.status, 'assigned');
    assert.equal(after.json.registrationState.registrationId, 'op-http');
    assert.equal(after.json.registrationState.deviceId, 'op-http');
    assert.equal(after.json.registrationState.assignedHub, t.host);
    assert.deepEqual(Object.keys(after.json).sort(), ['operationId', 'registrationState', 'status']);
    assert.equal(((await registry.get('op-http')).responseBody as any).deviceId, 'op-http');

    assertNotFound(await poll('op-http', key, '4.0000000000000000.00000000-0000-0000-0000-000000000000'));
    // Another registration cannot read this operation, even with its own valid credential.
    const otherKey = await enroll('op-http-other');
    assertNotFound(await poll('op-http-other', otherKey, operationId));
    // Polling still requires the device's credential: a wrong key gets 401, not the operation.
    const wrong = await poll('op-http', Buffer.alloc(32, 1).toString('base64'), operationId);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.errorCode, 401002);
  });

  test('an expired operation gets 404 and is swept from the store', async () => {
    const key = await enroll('op-expired');
    const operations = openSqliteDpsStore(t.hub.store.db).operations;
    const operationId = '4.1111111111111111.expired-operation';
    await operations.put({ operationId, registrationId: 'op-expired', status: 'assigned', expiresAt: Date.now() - 1000 });
    const live = '4.2222222222222222.live-operation';
    await operations.put({ operationId: live, registrationId: 'op-expired', status: 'assigned', expiresAt: Date.now() + 60_000 });

    assertNotFound(await poll('op-expired', key, operationId));
    assert.equal((await poll('op-expired', key, live)).json.operationId, live);

    assert.equal(await operations.sweep(Date.now()), 1);
    const count = t.hub.store.db.prepare('SELECT count(*) AS n FROM dps_operations WHERE operation_id = ?').get(operationId) as { n: number };
    assert.equal(count.n, 0);
    assert.ok(await operations.get(live, 'op-expired', Date.now()));
  });

  test('Mqtt: the operation id of a 202 is answered after a restart on a new connection; unknown ids get 404', async () => {
    const key = await enroll('op-mqtt');
    const connectDps = async (): Promise<MqttClient> => {
      const client = mqtt.connect(`mqtts://${t.host}:8883`, {
        clientId: 'op-mqtt',
        username: `${idScope}/registrations/op-mqtt/${DEVICE_API}`,
        password: sas('op-mqtt', key),
        protocolVersion: 4,
        reconnectPeriod: 0,
        clean: true,
      });
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
      await client.subscribeAsync('$dps/registrations/res/#', { qos: 1 });
      return client;
    };
    const ask = (client: MqttClient, topic: string, body: string) =>
      new Promise<{ topic: string; json: any }>((resolve) => {
        const rid = /\$rid=([^&]+)/.exec(topic)![1]!;
        const onMessage = (answer: string, payload: Buffer) => {
          if (!answer.includes(`$rid=${rid}`)) return;
          client.off('message', onMessage);
          resolve({ topic: answer, json: JSON.parse(payload.toString('utf8')) });
        };
        client.on('message', onMessage);
        void client.publishAsync(topic, body, { qos: 1 });
      });

    const first = await connectDps();
    const registered = await ask(first, '$dps/registrations/PUT/iotdps-register/?$rid=1', JSON.stringify({ registrationId: 'op-mqtt' }));
    assert.match(registered.topic, /^\$dps\/registrations\/res\/202\/\?\$rid=1&retry-after=\d+$/);
    const operationId: string = registered.json.operationId;
    assert.ok(operationId);
    await first.endAsync();

    await t.restart();

    const second = await connectDps();
    try {
      const status = await ask(second, `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=${operationId}`, ' ');
      assert.match(status.topic, /^\$dps\/registrations\/res\/200\/\?\$rid=2$/);
      assert.equal(status.json.status, 'assigned');
      assert.equal(status.json.operationId, operationId);
      assert.equal(status.json.registrationState.deviceId, 'op-mqtt');

      const unknown = await ask(second, '$dps/registrations/GET/iotdps-get-operationstatus/?$rid=3&operationId=4.nope', ' ');
      assert.match(unknown.topic, /^\$dps\/registrations\/res\/404\/\?\$rid=3$/);
      assert.equal(unknown.json.errorCode, 404000);
    } finally {
      await second.endAsync();
    }

    // The unmodified SDK registers over the same listener after the restart.
    const result: any = await provisioningDevice.ProvisioningDeviceClient.create(
      t.host,
      idScope,
      new provisioningMqtt.Mqtt(),
      new symmetricKey.SymmetricKeySecurityClient('op-mqtt', key) as any,
    ).register();
    assert.equal(result.status, 'assigned');
    assert.equal(result.deviceId, 'op-mqtt');
  });
});
