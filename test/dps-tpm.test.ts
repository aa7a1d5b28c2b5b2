/**
 * DPS TPM attestation (the endorsement-key challenge) against a real TPM 2.0: swtpm, driven by
 * the unmodified `azure-iot-security-tpm` and `azure-iot-provisioning-device`. The TPM itself is
 * the judge: it only activates, imports and HMACs with our blob if the crypto is exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import provisioning from 'azure-iot-provisioning-device';
import { HubError } from '../src/core/errors.js';
import { parseSasToken, signatureMatches } from '../src/core/sas.js';
import {
  createTpmChallenge,
  parseTpm2bPublic,
  sameEndorsementKey,
  tpmRegistrationId,
  verifyTpmSasToken,
} from '../src/dps/attestation/tpm.js';
import { activateWithTss, sdkOperation, sdkTpmClient, startSwtpm, tpmCall, type Swtpm, type TpmSecurityClientLike } from './support/swtpm.js';

const require = createRequire(import.meta.url);
const { TpmAuthenticationProvider } = require('azure-iot-security-tpm');

const idScope = '0ne00000001';

/** Splits an activation blob into its six TPM2B parts (to tamper with one). */
function blobParts(blob: Buffer): { start: number; end: number }[] {
  const parts = [];
  let pos = 0;
  while (pos < blob.length) {
    const size = blob.readUInt16BE(pos);
    parts.push({ start: pos + 2, end: pos + 2 + size });
    pos += 2 + size;
  }
  return parts;
}

/**
 * The provisioning SDK's TPM transport seam, answered in-process by the domain API the way DPS
 * part 2's AMQP/HTTP adapters will answer it on the wire: 1st request → challenge blob; SAS
 * token → verified; registration → assigned, with a 2nd blob carrying the device's hub key.
 */
class InProcessTpmTransport {
  ek?: Buffer;
  srk?: Buffer;
  identityKey?: Buffer;
  sasToken?: string;
  verifiedFor?: string;
  readonly hubKey = Buffer.alloc(32, 0x5a);

  setTpmInformation(ek: Buffer, srk: Buffer): void {
    this.ek = ek;
    this.srk = srk;
  }
  getAuthenticationChallenge(request: { registrationId: string }, cb: (err: Error | null, challenge?: Buffer) => void): void {
    const challenge = createTpmChallenge(this.ek!.toString('base64'), this.srk!.toString('base64'), request.registrationId);
    this.identityKey = challenge.identityKey;
    cb(null, Buffer.from(challenge.authenticationKey, 'base64'));
  }
  respondToAuthenticationChallenge(_request: unknown, sasToken: string, cb: (err?: Error) => void): void {
    this.sasToken = sasToken;
    cb();
  }
  registrationRequest(request: { registrationId: string; idScope: string }, cb: (err: Error | null, result?: unknown, response?: unknown, pollingInterval?: number) => void): void {
    try {
      verifyTpmSasToken(this.sasToken!, this.identityKey!, request.idScope, request.registrationId);
    } catch (e) {
      return cb(e as Error);
    }
    this.verifiedFor = request.registrationId;
    const deviceKey = createTpmChallenge(this.ek!.toString('base64'), this.srk!.toString('base64'), request.registrationId, { identityKey: this.hubKey });
    cb(null, {
      operationId: 'op-1',
      status: 'assigned',
      registrationState: {
        registrationId: request.registrationId,
        assignedHub: 'hub.example',
        deviceId: request.registrationId,
        status: 'assigned',
        tpm: { authenticationKey: deviceKey.authenticationKey },
      },
    }, { statusCode: 200 }, 0);
  }
  queryOperationStatus(_r: unknown, _op: string, cb: (err: Error) => void): void {
    cb(new Error('not expected: registration completes on the first request'));
  }
  cancel(cb: (err?: Error) => void): void {
    cb();
  }
  disconnect(cb: (err?: Error) => void): void {
    cb();
  }
}

describe('TPM attestation: azure-iot-security-tpm on swtpm against our challenge', { timeout: 60_000 }, () => {
  let tpmA: Swtpm;
  let tpmB: Swtpm;
  let a: { client: TpmSecurityClientLike; close(): void };
  let ekA: Buffer, srkA: Buffer, ekB: Buffer, srkB: Buffer;

  before(async () => {
    [tpmA, tpmB] = await Promise.all([startSwtpm(), startSwtpm()]);
    a = sdkTpmClient(tpmA.port);
    ekA = await tpmCall.endorsementKey(a.client);
    srkA = await tpmCall.storageRootKey(a.client);
    const b = sdkTpmClient(tpmB.port);
    ekB = await tpmCall.endorsementKey(b.client);
    srkB = await tpmCall.storageRootKey(b.client);
    b.close();
  });
  after(async () => {
    a?.close();
    await Promise.all([tpmA?.stop(), tpmB?.stop()]);
  });

  test('the EK and SRK the SDK sends are RSA-2048 TPM2B_PUBLIC storage keys we parse', () => {
    const ek = parseTpm2bPublic(ekA);
    const srk = parseTpm2bPublic(srkA);
    assert.equal(ek.type, 'rsa');
    assert.equal(ek.rsa!.keyBits, 2048);
    assert.equal(srk.rsa!.keyBits, 2048);
    assert.equal(ek.symmetric.keyBits, 128);
    assert.ok(!ek.name.equals(srk.name));
    assert.ok(sameEndorsementKey(ekA.toString('base64'), ekA.toString('base64')));
    assert.ok(!sameEndorsementKey(ekA.toString('base64'), ekB.toString('base64')));
  });

  test('ProvisioningDeviceClient registers: the TPM activates the blob, signs the SAS token we verify, then imports its hub key', async () => {
    const transport = new InProcessTpmTransport();
    const client = provisioning.ProvisioningDeviceClient.create('dps.example', idScope, transport as never, a.client as never);
    // TpmRegistration resolves with the whole DeviceRegistrationResult (operationId, status, registrationState).
    const { registrationState: result } = (await sdkOperation(async () => client.register())) as unknown as {
      registrationState: { registrationId: string; deviceId: string; assignedHub: string };
    };

    // No registration id configured: the SDK derives it from the EK, as tpmRegistrationId does.
    assert.equal(result.registrationId, tpmRegistrationId(ekA.toString('base64')));
    assert.equal(transport.verifiedFor, result.registrationId);
    const sas = parseSasToken(transport.sasToken!)!;
    assert.equal(sas.resource, `${idScope}/registrations/${result.registrationId}`);
    assert.equal(sas.keyName, 'registration');

    // After assignment the TPM holds the hub key: the SDK's device auth provider signs with it.
    const auth = TpmAuthenticationProvider.fromTpmSecurityClient(result.deviceId, result.assignedHub, a.client);
    const credentials = await auth.getDeviceCredentials();
    auth.stop();
    const hubSas = parseSasToken(credentials.sharedAccessSignature)!;
    assert.equal(hubSas.resource, `hub.example/devices/${result.deviceId}`);
    assert.ok(signatureMatches(hubSas, transport.hubKey.toString('base64')), 'hub SAS signed inside the TPM with the imported hub key');
    assert.ok(!signatureMatches(hubSas, transport.identityKey!.toString('base64')));
  });

  test('the key the TPM recovers is exactly the one we issued (HMAC inside the TPM equals ours)', async () => {
    const { authenticationKey, identityKey } = createTpmChallenge(ekA.toString('base64'), srkA.toString('base64'), 'reg-exact');
    await tpmCall.activate(a.client, Buffer.from(authenticationKey, 'base64'));
    const data = Buffer.from('0ne00000001%2Fregistrations%2Freg-exact\n1700000000');
    const signature = await tpmCall.sign(a.client, data);
    assert.deepEqual(signature, createHmac('sha256', identityKey).update(data).digest());
  });

  // The refusals are checked through tss.js directly on TPM B: the SDK cannot report them (see
  // activateWithTss). The first case is the control: same path, right blob, exact key.
  test('through tss.js, TPM B activates its own blob and HMACs with exactly our key', async () => {
    const { authenticationKey, identityKey } = createTpmChallenge(ekB.toString('base64'), srkB.toString('base64'), 'reg-b');
    const data = Buffer.from('proof');
    const r = await activateWithTss(tpmB.port, Buffer.from(authenticationKey, 'base64'), data);
    assert.deepEqual(r, { ok: true, hmac: createHmac('sha256', identityKey).update(data).digest() });
  });

  test('a blob made for another TPM (other EK and SRK) does not activate', async () => {
    const forA = createTpmChallenge(ekA.toString('base64'), srkA.toString('base64'), 'reg-a');
    const r = await activateWithTss(tpmB.port, Buffer.from(forA.authenticationKey, 'base64'), Buffer.from('x'));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.failedCommand, 'ActivateCredential');
  });

  test('a blob for this EK but bound to another SRK does not activate', async () => {
    const wrongSrk = createTpmChallenge(ekB.toString('base64'), srkA.toString('base64'), 'reg-srk');
    const r = await activateWithTss(tpmB.port, Buffer.from(wrongSrk.authenticationKey, 'base64'), Buffer.from('x'));
    assert.deepEqual(r, { ok: false, failedCommand: 'ActivateCredential', responseCode: 'INTEGRITY (0x9f)' });
  });

  test('a blob whose duplicated key was altered in transit is refused by TPM2_Import', async () => {
    const blob = Buffer.from(createTpmChallenge(ekB.toString('base64'), srkB.toString('base64'), 'reg-t').authenticationKey, 'base64');
    const parts = blobParts(blob);
    assert.equal(parts.length, 6);
    blob[parts[2]!.end - 1]! ^= 0x01; // last byte of the TPM2B_PRIVATE duplicate
    const r = await activateWithTss(tpmB.port, blob, Buffer.from('x'));
    assert.deepEqual(r, { ok: false, failedCommand: 'Import', responseCode: 'INTEGRITY (0x9f)' });
  });

  test('the registration SAS token must be for this registration, unexpired, signed with the issued key', () => {
    const key = Buffer.alloc(32, 1);
    const se = Math.floor(Date.now() / 1000) + 600;
    const token = (sr: string, k: Buffer, expiry = se) => {
      const aud = encodeURIComponent(sr);
      const sig = encodeURIComponent(createHmac('sha256', k).update(`${aud}\n${expiry}`).digest('base64'));
      return `SharedAccessSignature sr=${aud}&sig=${sig}&se=${expiry}&skn=registration`;
    };
    verifyTpmSasToken(token(`${idScope}/registrations/r1`, key), key, idScope, 'r1');
    const refused = (t: string, reg = 'r1') =>
      assert.throws(() => verifyTpmSasToken(t, key, idScope, reg), (e: unknown) => e instanceof HubError && e.code === 'IotHubUnauthorizedAccess');
    refused(token(`${idScope}/registrations/r1`, Buffer.alloc(32, 2)));
    refused(token(`${idScope}/registrations/r1`, key), 'r2');
    refused(token(`${idScope}/registrations`, key));
    refused(token(`${idScope}/registrations/r1`, key, Math.floor(Date.now() / 1000) - 1));
    refused('SharedAccessSignature sr=x');
  });

  test('keys that are not TPM storage keys are refused with ArgumentInvalid', () => {
    const argumentInvalid = (e: unknown) => e instanceof HubError && e.code === 'ArgumentInvalid';
    const srk = srkA.toString('base64');
    assert.throws(() => createTpmChallenge('not base64!', srk, 'r'), argumentInvalid);
    assert.throws(() => createTpmChallenge(ekA.subarray(0, 100).toString('base64'), srk, 'r'), argumentInvalid);
    assert.throws(() => createTpmChallenge(Buffer.concat([ekA, Buffer.from([0])]).toString('base64'), srk, 'r'), argumentInvalid);
    const signingKey = Buffer.from(ekA);
    signingKey.writeUInt32BE((signingKey.readUInt32BE(6) & ~(1 << 17)) | (1 << 18), 6); // decrypt → sign
    assert.throws(() => createTpmChallenge(signingKey.toString('base64'), srk, 'r'), argumentInvalid);
  });
});
