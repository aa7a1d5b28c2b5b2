/**
 * TPM attestation at registration, end to end over HTTPS: the unmodified
 * azure-iot-provisioning-device + -http + azure-iot-security-tpm on a software TPM (swtpm)
 * register with Fleethub's DPS (challenge 401 with the activation blob, SAS signed in the TPM,
 * hub key imported into the TPM), then the device connects to its hub with azure-iot-device,
 * signing its hub SAS tokens in the TPM, and finds its initial twin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { rawRequest } from './support/hub.js';
import { dpsFixture, type DpsFixture } from './support/dps.js';
import { eventsOf } from './support/devices.js';
import { sdkError, within } from './support/sdk.js';
import { activateWithTss, countActivations, sdkOperation, startSwtpm, tpmCall, withTpm, type Swtpm, type TpmSecurityClientLike } from './support/swtpm.js';
import { parseSasToken, signatureMatches } from '../src/core/sas.js';
import { tpmRegistrationId } from '../src/dps/attestation/tpm.js';

const require = createRequire(import.meta.url);
const { TpmAuthenticationProvider } = require('azure-iot-security-tpm');
const { ProvisioningDeviceClient } = provisioningDevice;
const { Http } = provisioningHttp;

const API = 'api-version=2019-03-31';

/** A registration SAS token as the SDK builds it, signed by `sign` (the TPM's HMAC, or a forger's). */
async function registrationSas(idScope: string, registrationId: string, sign: (data: Buffer) => Promise<Buffer> | Buffer): Promise<string> {
  const se = Math.floor(Date.now() / 1000) + 600;
  const audience = encodeURIComponent(`${idScope}/registrations/${registrationId}`);
  const sig = encodeURIComponent((await sign(Buffer.from(`${audience}\n${se}`))).toString('base64'));
  return `SharedAccessSignature sr=${audience}&sig=${sig}&se=${se}&skn=registration`;
}

describe('DPS TPM registration over HTTPS with swtpm and the unmodified SDKs', { timeout: 120_000 }, () => {
  let { t, service, registry, idScope, assertNoDevice } = {} as DpsFixture;
  let tpmA: Swtpm;
  let tpmB: Swtpm;
  /** TPM A's and TPM B's public keys, base64 as the SDK sends them. */
  let ekA: string, srkA: string, ekB: string, srkB: string;

  const register = (client: TpmSecurityClientLike) =>
    sdkOperation(() => ProvisioningDeviceClient.create(t.host, idScope, new Http(), client as any).register() as Promise<any>);

  const registerPut = (registrationId: string, body: unknown, authorization?: string) =>
    rawRequest(t.host, 'PUT', `/${idScope}/registrations/${registrationId}/register?${API}`, {
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      fresh: true,
    });

  before(async () => {
    ({ t, service, registry, idScope, assertNoDevice } = await dpsFixture());
    [tpmA, tpmB] = await Promise.all([startSwtpm(), startSwtpm()]);
    [ekA, srkA] = await withTpm(tpmA, undefined, async (c) => [(await tpmCall.endorsementKey(c)).toString('base64'), (await tpmCall.storageRootKey(c)).toString('base64')]);
    [ekB, srkB] = await withTpm(tpmB, undefined, async (c) => [(await tpmCall.endorsementKey(c)).toString('base64'), (await tpmCall.storageRootKey(c)).toString('base64')]);
  });
  after(async () => {
    await Promise.all([tpmA?.stop(), tpmB?.stop()]);
    await t?.close();
  });

  test('zero touch: the TPM registers over Http, gets its hub key in the TPM, connects, sends telemetry and finds its initial twin', async () => {
    // The id the SDK derives from the EK when none is configured: the enrollment is made for it.
    const registrationId = tpmRegistrationId(ekA);
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      deviceId: 'tpm-thermostat',
      attestation: { type: 'tpm', tpm: { endorsementKey: ekA } },
      initialTwin: { tags: { room: 'boiler', secure: true }, properties: { desired: { setpoint: 21.5 } } },
    } as any);

    const { key, hubKeyAfterReRegistration } = await withTpm(tpmA, undefined, async (client) => {
      const result = await register(client);
      assert.equal(result.status, 'assigned');
      const state = result.registrationState;
      assert.equal(state.registrationId, registrationId);
      assert.equal(state.assignedHub, t.host);
      assert.equal(state.deviceId, 'tpm-thermostat');
      assert.equal(state.substatus, 'initialAssignment');
      assert.equal(typeof state.tpm?.authenticationKey, 'string');

      // The hub's identity has a symmetric key; the TPM now holds it (its HMAC signs hub SAS tokens).
      const identity: any = (await registry.get('tpm-thermostat')).responseBody;
      assert.equal(identity.authentication.type, 'sas');
      const key: string = identity.authentication.symmetricKey.primaryKey;
      assert.equal(Buffer.from(key, 'base64').length, 32);
      assert.notEqual(key, identity.authentication.symmetricKey.secondaryKey);

      const auth = TpmAuthenticationProvider.fromTpmSecurityClient(state.deviceId, state.assignedHub, client);
      const deviceClient = device.Client.fromAuthenticationProvider(auth, deviceMqtt.Mqtt as any);
      try {
        await sdkOperation(() => deviceClient.open());
        await sdkOperation(() => deviceClient.sendEvent(new device.Message(JSON.stringify({ temperature: 20.25 }))));
        const credentials = await sdkOperation(() => auth.getDeviceCredentials() as Promise<{ sharedAccessSignature: string }>);
        const hubSas = parseSasToken(credentials.sharedAccessSignature)!;
        assert.equal(hubSas.resource, `${t.host}/devices/tpm-thermostat`);
        assert.ok(signatureMatches(hubSas, key), 'the TPM signs hub SAS tokens with the key the hub has');
      } finally {
        await deviceClient.close();
        auth.stop();
      }

      // Re-registering the same TPM: a new challenge, the same device and the same hub key.
      const again = await register(client);
      assert.equal(again.status, 'assigned');
      assert.equal(again.registrationState.deviceId, 'tpm-thermostat');
      const hubKeyAfterReRegistration: string = ((await registry.get('tpm-thermostat')).responseBody as any).authentication.symmetricKey.primaryKey;
      return { key, hubKeyAfterReRegistration };
    });
    assert.equal(hubKeyAfterReRegistration, key);

    const events = await eventsOf(t, 'tpm-thermostat');
    assert.deepEqual(events.map((e) => JSON.parse(e.body.toString())), [{ temperature: 20.25 }]);
    const twin: any = (await registry.getTwin('tpm-thermostat')).responseBody;
    assert.deepEqual(twin.tags, { room: 'boiler', secure: true });
    assert.equal(twin.properties.desired.setpoint, 21.5);

    const { responseBody: record } = await service.getDeviceRegistrationState(registrationId);
    assert.equal(record.status, 'assigned');
    assert.equal(record.deviceId, 'tpm-thermostat');
    assert.equal((record as any).tpm, undefined, 'the hub-key blob is for the device only, not the registration record');
  });

  test('refused alike after a challenge: the EK of another TPM, an unknown registration id; the SDK rejects promptly; nothing is created', async () => {
    // Enrolled with TPM A's EK; TPM B claims that registration id, and an id nobody enrolled.
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'tpm-guarded', attestation: { type: 'tpm', tpm: { endorsementKey: ekA } } } as any);
    for (const id of ['tpm-guarded', 'tpm-nobody']) {
      await withTpm(tpmB, id, async (client) => {
        // A challenge the TPM can activate, then 401 on the signed PUT: the SDK's UnauthorizedError.
        const tpm = countActivations(client);
        await assert.rejects(within(15_000, register(client), `register() as ${id}`), sdkError('UnauthorizedError'));
        assert.equal(tpm.activated, 1, `${id}: the TPM activated the challenge before the refusal`);
      });
    }
    // An enrollment of another attestation type does not take TPM keys either.
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'tpm-sym', deviceId: 'tpm-sym-device', attestation: { type: 'symmetricKey' } } as any);

    // On the wire: the same answers for all three, a blob for the presented keys, then 401 401002.
    for (const id of ['tpm-guarded', 'tpm-nobody', 'tpm-sym']) {
      const body = { registrationId: id, tpm: { endorsementKey: ekB, storageRootKey: srkB } };
      const challenge = await registerPut(id, body);
      assert.equal(challenge.status, 401);
      assert.equal(challenge.json.keyName, 'registration');
      const blob = Buffer.from(challenge.json.authenticationKey, 'base64');
      assert.ok(blob.length > 500, `${id}: an activation blob, got ${blob.length} bytes`);
      // Made for TPM B's EK and SRK: TPM B activates it and signs; the SAS is still refused.
      const sas = await registrationSas(idScope, id, async (d) => {
        const r = await activateWithTss(tpmB.port, blob, d);
        assert.ok(r.ok, `${id}: TPM B activates the blob: ${JSON.stringify(r)}`);
        return r.hmac;
      });
      const refused = await registerPut(id, body, sas);
      assert.equal(refused.status, 401, refused.text);
      assert.equal(refused.json.errorCode, 401002);
      assert.equal(refused.json.authenticationKey, undefined);
    }
    // TPM A's own blob for 'tpm-guarded' cannot be activated by TPM B: the decoy is not the real challenge.
    const real = await registerPut('tpm-guarded', { registrationId: 'tpm-guarded', tpm: { endorsementKey: ekA, storageRootKey: srkA } });
    assert.equal(real.status, 401);
    const stolen = await activateWithTss(tpmB.port, Buffer.from(real.json.authenticationKey, 'base64'), Buffer.from('x'));
    assert.equal(stolen.ok, false);

    // Keys that are not TPM keys are a 400 whether or not the id is enrolled.
    const junk = Buffer.from('not a key').toString('base64');
    for (const id of ['tpm-guarded', 'tpm-nobody']) {
      for (const tpm of [{ endorsementKey: junk, storageRootKey: srkB }, { endorsementKey: ekB, storageRootKey: junk }]) {
        const res = await registerPut(id, { registrationId: id, tpm });
        assert.deepEqual([res.status, res.json.errorCode], [400, 400004], `${id}: ${res.text}`);
      }
    }

    for (const id of ['tpm-guarded', 'tpm-nobody', 'tpm-sym']) {
      await assertNoDevice(id);
      await assert.rejects(service.getDeviceRegistrationState(id), (e: any) => e.response?.statusCode === 404);
    }
    await assertNoDevice('tpm-sym-device');
  });

  test('a disabled TPM enrollment yields status disabled; nothing is created in the hub', async () => {
    await service.createOrUpdateIndividualEnrollment({
      registrationId: 'tpm-disabled',
      deviceId: 'tpm-disabled-device',
      attestation: { type: 'tpm', tpm: { endorsementKey: ekB } },
      provisioningStatus: 'disabled',
    } as any);
    await withTpm(tpmB, 'tpm-disabled', async (client) => {
      await assert.rejects(register(client), (e: any) => {
        assert.equal(e.result?.status, 'disabled');
        assert.equal(e.result?.registrationState?.status, 'disabled');
        assert.equal(e.result?.registrationState?.tpm, undefined);
        return true;
      });
    });
    await assertNoDevice('tpm-disabled-device');
    assert.equal((await service.getDeviceRegistrationState('tpm-disabled')).responseBody.status, 'disabled');
  });

  test('on the wire: 401 with the activation blob, forged SAS refused, the TPM-signed SAS accepted (also after a restart) and polls authorized alike', async () => {
    const registrationId = 'tpm-raw';
    await service.createOrUpdateIndividualEnrollment({ registrationId, deviceId: 'tpm-raw-device', attestation: { type: 'tpm', tpm: { endorsementKey: ekB } } } as any);
    const body = { registrationId, tpm: { endorsementKey: ekB, storageRootKey: srkB } };

    const challenge = await registerPut(registrationId, body);
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers['content-type']), /^application\/json/);
    assert.equal(challenge.json.keyName, 'registration');
    const blob = Buffer.from(challenge.json.authenticationKey, 'base64');
    assert.ok(blob.length > 500, `an activation blob, got ${blob.length} bytes`);

    // Forged: well-formed tokens not signed with the key only TPM B can recover.
    const forged = await registrationSas(idScope, registrationId, (d) => createHmac('sha256', randomBytes(32)).update(d).digest());
    for (const authorization of [forged, 'SharedAccessSignature garbage']) {
      const res = await registerPut(registrationId, body, authorization);
      assert.equal(res.status, 401);
      assert.equal(res.json.errorCode, 401002);
      assert.equal(res.json.authenticationKey, undefined);
    }
    await assertNoDevice('tpm-raw-device');

    // Bad input gets DPS's error form: a tpm member of the wrong shape, a storage root key that is not one.
    const shape = await registerPut(registrationId, { registrationId, tpm: { endorsementKey: ekB } });
    assert.deepEqual([shape.status, shape.json.errorCode], [400, 400001]);
    const notStorage = await registerPut(registrationId, { registrationId, tpm: { endorsementKey: ekB, storageRootKey: Buffer.from('not a key').toString('base64') } });
    assert.deepEqual([notStorage.status, notStorage.json.errorCode], [400, 400004]);

    // The key is derived, not held per challenge: a blob issued before a restart still works after it.
    await t.restart();
    // TPM B activates the blob (ActivateCredential, Import, Load) and HMACs the token with it.
    let signed: Buffer | undefined;
    const sas = await registrationSas(idScope, registrationId, async (d) => {
      const r = await activateWithTss(tpmB.port, blob, d);
      assert.ok(r.ok, `TPM B activates the blob: ${JSON.stringify(r)}`);
      return (signed = r.hmac);
    });
    assert.ok(signed);
    // The SAS alone, without the TPM keys, does not register: DPS could not give the device its hub key.
    assert.equal((await registerPut(registrationId, { registrationId }, sas)).status, 400);
    // The EK of another TPM with a valid token is refused.
    assert.equal((await registerPut(registrationId, { registrationId, tpm: { endorsementKey: ekA, storageRootKey: srkA } }, sas)).status, 401);

    const accepted = await registerPut(registrationId, body, sas);
    assert.equal(accepted.status, 202, accepted.text);
    assert.equal(accepted.json.status, 'assigning');
    const poll = (authorization: string) =>
      rawRequest(t.host, 'GET', `/${idScope}/registrations/${registrationId}/operations/${accepted.json.operationId}?${API}`, { headers: { authorization }, fresh: true });
    assert.equal((await poll(forged)).status, 401);
    const done = await poll(sas);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.json.status, 'assigned');
    assert.equal(done.json.registrationState.deviceId, 'tpm-raw-device');
    assert.ok(Buffer.from(done.json.registrationState.tpm.authenticationKey, 'base64').length > 500);

    // TPM B imports the hub-key blob: its HMAC is the one the hub's key gives.
    const key: string = ((await registry.get('tpm-raw-device')).responseBody as any).authentication.symmetricKey.primaryKey;
    const data = Buffer.from('proof of the hub key');
    const imported = await activateWithTss(tpmB.port, Buffer.from(done.json.registrationState.tpm.authenticationKey, 'base64'), data);
    assert.deepEqual(imported, { ok: true, hmac: createHmac('sha256', Buffer.from(key, 'base64')).update(data).digest() });
  });
});
