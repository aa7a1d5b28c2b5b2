/**
 * Device registration end to end with the unmodified Azure SDKs: enroll with the provisioning
 * service client, register with azure-iot-provisioning-device, then connect to the assigned hub
 * with azure-iot-device and find the enrollment's initial twin there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import { rawRequest } from './support/hub.js';
import { derivedKey, disabledRegistration, dpsFixture, type DpsFixture } from './support/dps.js';
import { sdkError } from './support/sdk.js';
import { createSasToken } from '../src/core/sas.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { Http } = provisioningHttp;
const { SymmetricKeySecurityClient } = symmetricKey;

describe('DPS device registration (symmetric key) through the unmodified SDKs', () => {
  let { t, service, registry, idScope, connectAndSend, assertNoDevice } = {} as DpsFixture;
  before(async () => ({ t, service, registry, idScope, connectAndSend, assertNoDevice } = await dpsFixture()));
  after(() => t.close());

  const register = (registrationId: string, key: string, transport: any = new Http()) =>
    ProvisioningDeviceClient.create(t.host, idScope, transport, new SymmetricKeySecurityClient(registrationId, key) as any).register() as Promise<any>;

  test('Http, individual enrollment: assigned to the local hub, device connects and finds its initial twin', async () => {
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'sym-individual',
      deviceId: 'thermostat-7',
      attestation: { type: 'symmetricKey' },
      initialTwin: { tags: { floor: 3, site: 'lab' }, properties: { desired: { interval: 30 } } },
    } as any);
    const { responseBody: mechanism } = await service.getIndividualEnrollmentAttestationMechanism('sym-individual');
    const key = mechanism.symmetricKey!.primaryKey;

    const result = await register('sym-individual', key);
    assert.equal(result.assignedHub, t.host);
    assert.equal(result.deviceId, 'thermostat-7');
    assert.equal(result.status, 'assigned');
    assert.equal(result.substatus, 'initialAssignment');
    assert.ok(result.etag);

    const device: any = (await registry.get('thermostat-7')).responseBody;
    assert.equal(device.authentication?.type, 'sas');
    assert.equal(device.authentication?.symmetricKey?.primaryKey, key);

    const twin: any = await connectAndSend(result.assignedHub, 'thermostat-7', { key });
    assert.deepEqual(twin.tags, { floor: 3, site: 'lab' });
    assert.equal(twin.properties.desired.interval, 30);

    const state: any = (await service.getDeviceRegistrationState('sym-individual')).responseBody;
    assert.equal(state.status, 'assigned');
    assert.equal(state.assignedHub, t.host);
    assert.equal(state.deviceId, 'thermostat-7');
    assert.equal(state.substatus, 'initialAssignment');
    assert.ok(Date.parse(state.createdDateTimeUtc!) > 0);
    assert.ok(Date.parse(state.lastUpdatedDateTimeUtc!) > 0);
    const { responseBody: enrollment } = await service.getIndividualEnrollment('sym-individual');
    assert.equal(enrollment.registrationState?.status, 'assigned');

    // Registering again keeps the device (and the twin the hub now owns).
    await registry.updateTwin('thermostat-7', { tags: { floor: 4 } }, '*');
    const again = await register('sym-individual', mechanism.symmetricKey!.secondaryKey);
    assert.equal(again.deviceId, 'thermostat-7');
    assert.equal((await registry.getTwin('thermostat-7')).responseBody.tags.floor, 4);
  });

  test('Http, enrollment group: two devices register with keys derived from the group key', async () => {
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'sym-group',
      attestation: { type: 'symmetricKey' },
      initialTwin: { tags: { fleet: 'sensors' }, properties: { desired: { telemetryInterval: 5 } } },
    } as any);
    const { responseBody: mechanism } = await service.getEnrollmentGroupAttestationMechanism('sym-group');
    const groupKey = mechanism.symmetricKey!.primaryKey;

    for (const registrationId of ['sensor-a', 'sensor-b']) {
      const key = derivedKey(groupKey, registrationId);
      const result = await register(registrationId, key);
      assert.equal(result.assignedHub, t.host);
      assert.equal(result.deviceId, registrationId);
      assert.equal(result.status, 'assigned');

      const twin: any = await connectAndSend(result.assignedHub, registrationId, { key });
      assert.deepEqual(twin.tags, { fleet: 'sensors' });
      assert.equal(twin.properties.desired.telemetryInterval, 5);

      const { responseBody: state } = await service.getDeviceRegistrationState(registrationId);
      assert.equal(state.status, 'assigned');
      assert.equal(state.deviceId, registrationId);
    }
    // The group key itself is not a device's key.
    await assert.rejects(register('sensor-c', groupKey), sdkError('UnauthorizedError'));
    await assertNoDevice('sensor-c');
  });

  test('Mqtt (same listener as the hub): individual and group enrollments register and the devices find their twins', async () => {
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'mqtt-individual',
      attestation: { type: 'symmetricKey' },
      initialTwin: { tags: { via: 'mqtt' }, properties: { desired: { mode: 'eco' } } },
    } as any);
    const key = (await service.getIndividualEnrollmentAttestationMechanism('mqtt-individual')).responseBody.symmetricKey!.primaryKey;
    const result = await register('mqtt-individual', key, new provisioningMqtt.Mqtt());
    assert.equal(result.assignedHub, t.host);
    assert.equal(result.deviceId, 'mqtt-individual');
    const twin: any = await connectAndSend(result.assignedHub, 'mqtt-individual', { key });
    assert.deepEqual(twin.tags, { via: 'mqtt' });
    assert.equal(twin.properties.desired.mode, 'eco');

    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'mqtt-group',
      attestation: { type: 'symmetricKey' },
      initialTwin: { tags: { group: 'mqtt' }, properties: { desired: { rate: 2 } } },
    } as any);
    const groupKey = (await service.getEnrollmentGroupAttestationMechanism('mqtt-group')).responseBody.symmetricKey!.primaryKey;
    for (const registrationId of ['mqtt-member-1', 'mqtt-member-2']) {
      const derived = derivedKey(groupKey, registrationId);
      const r = await register(registrationId, derived, new provisioningMqtt.Mqtt());
      assert.equal(r.deviceId, registrationId);
      const memberTwin: any = await connectAndSend(r.assignedHub, registrationId, { key: derived });
      assert.deepEqual(memberTwin.tags, { group: 'mqtt' });
      assert.equal(memberTwin.properties.desired.rate, 2);
      assert.equal((await service.getDeviceRegistrationState(registrationId)).responseBody.status, 'assigned');
    }

    // A wrong key is refused at CONNECT; nothing is created.
    await assert.rejects(register('mqtt-stranger', Buffer.alloc(32, 3).toString('base64'), new provisioningMqtt.Mqtt()), (e: any) => /Not authorized/.test(e?.message));
    await assertNoDevice('mqtt-stranger');

    // The answer topics carry DPS's statuses: a disabled enrollment over MQTT ends 'disabled' too.
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'mqtt-disabled', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled' } as any);
    const disabledKey = (await service.getIndividualEnrollmentAttestationMechanism('mqtt-disabled')).responseBody.symmetricKey!.primaryKey;
    await assert.rejects(register('mqtt-disabled', disabledKey, new provisioningMqtt.Mqtt()), (e: any) => e.result?.status === 'disabled');
    await assertNoDevice('mqtt-disabled');
  });

  test('MqttWs (MQTT over WebSocket on the HTTPS listener) registers too; a disabled group yields disabled', async () => {
    await service.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'ws-group', attestation: { type: 'symmetricKey' }, initialTwin: { tags: { via: 'ws' } } } as any);
    const groupKey = (await service.getEnrollmentGroupAttestationMechanism('ws-group')).responseBody.symmetricKey!.primaryKey;
    const key = derivedKey(groupKey, 'ws-member');
    const result = await register('ws-member', key, new provisioningMqtt.MqttWs());
    assert.equal(result.deviceId, 'ws-member');
    assert.deepEqual((await connectAndSend(result.assignedHub, 'ws-member', { key })).tags, { via: 'ws' });

    const { responseBody: group } = await service.getEnrollmentGroup('ws-group');
    await service.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: 'disabled' } as any);
    await assert.rejects(register('ws-late-member', derivedKey(groupKey, 'ws-late-member'), new provisioningMqtt.MqttWs()), (e: any) => e.result?.status === 'disabled');
    await assertNoDevice('ws-late-member');
  });

  test('a disabled enrollment yields status disabled and creates nothing in the hub', async () => {
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'sym-disabled',
      attestation: { type: 'symmetricKey' },
      provisioningStatus: 'disabled',
    } as any);
    const { responseBody: mechanism } = await service.getIndividualEnrollmentAttestationMechanism('sym-disabled');
    await assert.rejects(register('sym-disabled', mechanism.symmetricKey!.primaryKey), disabledRegistration);
    await assertNoDevice('sym-disabled');
    assert.equal((await service.getDeviceRegistrationState('sym-disabled')).responseBody.status, 'disabled');
  });

  test('one device of a group is disabled by a disabled individual enrollment with its derived key (as DPS documents); the others still register', async () => {
    const groupKey = Buffer.alloc(32, 21).toString('base64');
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'sym-group-with-blocked',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: groupKey, secondaryKey: groupKey } },
    } as any);
    const blockedKey = derivedKey(groupKey, 'blocked-member');
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'blocked-member',
      attestation: { type: 'symmetricKey', symmetricKey: { primaryKey: blockedKey, secondaryKey: blockedKey } },
      provisioningStatus: 'disabled',
    } as any);

    await assert.rejects(register('blocked-member', blockedKey), disabledRegistration);
    await assertNoDevice('blocked-member');
    const state: any = (await service.getDeviceRegistrationState('blocked-member')).responseBody;
    assert.equal(state.status, 'disabled');

    const other = await register('free-member', derivedKey(groupKey, 'free-member'));
    assert.equal(other.status, 'assigned');
    assert.equal((await service.getDeviceRegistrationState('free-member')).responseBody.status, 'assigned');
  });

  test('a wrong key and an unknown registration id are refused with 401 alike; nothing is created', async () => {
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'sym-guarded', attestation: { type: 'symmetricKey' } } as any);
    const wrong = Buffer.alloc(32, 9).toString('base64');
    await assert.rejects(register('sym-guarded', wrong), sdkError('UnauthorizedError'));
    await assert.rejects(register('nobody-enrolled', wrong), sdkError('UnauthorizedError'));
    await assertNoDevice('sym-guarded');
    await assertNoDevice('nobody-enrolled');
    await assert.rejects(service.getDeviceRegistrationState('sym-guarded'), (e: any) => e.response?.statusCode === 404);

    // DPS's error body, and no difference between the two refusals.
    const token = createSasToken(`${idScope}/registrations/sym-guarded`, wrong, Math.floor(Date.now() / 1000) + 600, 'registration');
    const res = await rawRequest(t.host, 'PUT', `/${idScope}/registrations/sym-guarded/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: 'sym-guarded' }),
      headers: { authorization: token, 'content-type': 'application/json' },
      fresh: true,
    });
    assert.equal(res.status, 401);
    assert.equal(res.json.errorCode, 401002);
    assert.ok(res.json.trackingId);
    const { responseBody: mechanism } = await service.getIndividualEnrollmentAttestationMechanism('sym-guarded');
    // A valid key for another scope's resource is refused too.
    const otherScope = createSasToken(`0ne00000000/registrations/sym-guarded`, mechanism.symmetricKey!.primaryKey, Math.floor(Date.now() / 1000) + 600, 'registration');
    const res2 = await rawRequest(t.host, 'PUT', `/${idScope}/registrations/sym-guarded/register?api-version=2019-03-31`, {
      body: JSON.stringify({ registrationId: 'sym-guarded' }),
      headers: { authorization: otherScope, 'content-type': 'application/json' },
      fresh: true,
    });
    assert.equal(res2.status, 401);
    await assertNoDevice('sym-guarded');
  });
});

describe('DPS allocation to a linked hub outside this process', () => {
  test('is refused with status failed and a clear message; nothing is created in the local hub', async () => {
    const { t, service, idScope, assertNoDevice } = await dpsFixture({ dps: { linkedHubs: [{ hostName: 'hub2.example', allocationWeight: 1 }], allocationPolicy: 'hashed' } } as any);
    try {
      await service.createOrUpdateIndividualEnrollment({
        registrationId: 'far-away',
        attestation: { type: 'symmetricKey' },
        iotHubs: ['hub2.example'],
      } as any);
      const key = (await service.getIndividualEnrollmentAttestationMechanism('far-away')).responseBody.symmetricKey!.primaryKey;
      const client = ProvisioningDeviceClient.create(t.host, idScope, new Http(), new SymmetricKeySecurityClient('far-away', key) as any);
      await assert.rejects(client.register() as Promise<any>, (e: any) => {
        assert.equal(e.name, 'ProvisioningRegistrationFailedError');
        assert.equal(e.result.status, 'failed');
        assert.match(e.result.registrationState.errorMessage, /hub2\.example is not hosted by this Fleethub process/);
        return true;
      });
      await assertNoDevice('far-away');
      assert.equal((await service.getDeviceRegistrationState('far-away')).responseBody.status, 'failed');
    } finally {
      await t.close();
    }
  });
});
