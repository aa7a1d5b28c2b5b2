/**
 * DPS device registration over AMQP (TLS 5671) and AMQP over WebSocket (443, /$iothub/websocket)
 * with the unmodified azure-iot-provisioning-device-amqp (`Amqp`, `AmqpWs`), for symmetric keys
 * (SASL PLAIN) and X.509 (TLS client certificate); then each device connects to the hub with
 * azure-iot-device, sends telemetry and finds its initial twin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import rhea, { type Message, type Sender } from 'rhea';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningAmqp from 'azure-iot-provisioning-device-amqp';
import symmetricKey from 'azure-iot-security-symmetric-key';
import securityX509 from 'azure-iot-security-x509';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import deviceAmqp from 'azure-iot-device-amqp';
import { derivedKey, disabledRegistration, dpsFixture, type DpsFixture } from './support/dps.js';
import { eventsOf } from './support/devices.js';
import { connectAmqp } from './support/amqp.js';
import { createSasToken, parseSasToken, signatureMatches } from '../src/core/sas.js';
import { tpmRegistrationId } from '../src/dps/attestation/tpm.js';
import { sdkError, within } from './support/sdk.js';
import { countActivations, sdkOperation, startSwtpm, tpmCall, withTpm, type Swtpm, type TpmSecurityClientLike } from './support/swtpm.js';
import { issue, selfSigned, thumbprint, verifyHubCa, type Issued } from './support/x509.js';

const { ProvisioningDeviceClient } = provisioningDevice;
const { Amqp, AmqpWs } = provisioningAmqp;
const { SymmetricKeySecurityClient } = symmetricKey;
const { X509Security } = securityX509 as any;
const { TpmAuthenticationProvider } = createRequire(import.meta.url)('azure-iot-security-tpm');

const transports = { Amqp: () => new Amqp(), AmqpWs: () => new AmqpWs() } as const;
type TransportName = keyof typeof transports;

describe('DPS device registration over AMQP and AMQP over WebSocket', () => {
  let { t, service, registry, idScope, connectAndSend, assertNoDevice } = {} as DpsFixture;
  before(async () => ({ t, service, registry, idScope, connectAndSend, assertNoDevice } = await dpsFixture()));
  after(() => t.close());

  const registerSymmetric = (registrationId: string, key: string, transport: TransportName, payload?: unknown) => {
    const client = ProvisioningDeviceClient.create(t.host, idScope, transports[transport](), new SymmetricKeySecurityClient(registrationId, key) as any);
    if (payload !== undefined) client.setProvisioningPayload(payload as any);
    return client.register() as Promise<any>;
  };

  const registerX509 = (registrationId: string, cert: Issued, chainPem: string, transport: TransportName) =>
    ProvisioningDeviceClient.create(t.host, idScope, transports[transport](), new X509Security(registrationId, { cert: chainPem, key: cert.keyPem })).register() as Promise<any>;

  for (const transport of ['Amqp', 'AmqpWs'] as const) {
    test(`${transport}: individual symmetric-key enrollment is assigned; the device connects and finds its initial twin`, async () => {
      const registrationId = `sym-${transport.toLowerCase()}`;
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        deviceId: `${registrationId}-device`,
        attestation: { type: 'symmetricKey' },
        initialTwin: { tags: { via: transport }, properties: { desired: { interval: 30 } } },
      } as any);
      const key = (await service.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody.symmetricKey!.primaryKey;

      const result = await registerSymmetric(registrationId, key, transport);
      assert.equal(result.assignedHub, t.host);
      assert.equal(result.deviceId, `${registrationId}-device`);
      assert.equal(result.status, 'assigned');
      assert.equal(result.substatus, 'initialAssignment');
      assert.ok(result.etag);

      const created: any = (await registry.get(`${registrationId}-device`)).responseBody;
      assert.equal(created.authentication.type, 'sas');
      assert.equal(created.authentication.symmetricKey.primaryKey, key);
      const twin = await connectAndSend(result.assignedHub, `${registrationId}-device`, { key }, transport === 'Amqp' ? deviceAmqp.Amqp : deviceMqtt.Mqtt);
      assert.deepEqual(twin.tags, { via: transport });
      assert.equal(twin.properties.desired.interval, 30);
      assert.equal((await service.getDeviceRegistrationState(registrationId)).responseBody.status, 'assigned');
    });

    test(`${transport}: two devices of a symmetric-key group register with derived keys; the group key itself is refused`, async () => {
      const groupId = `sym-group-${transport.toLowerCase()}`;
      await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: groupId,
        attestation: { type: 'symmetricKey' },
        initialTwin: { tags: { fleet: groupId }, properties: { desired: { rate: 5 } } },
      } as any);
      const groupKey = (await service.getEnrollmentGroupAttestationMechanism(groupId)).responseBody.symmetricKey!.primaryKey;
      for (const registrationId of [`${groupId}-a`, `${groupId}-b`]) {
        const key = derivedKey(groupKey, registrationId);
        const result = await registerSymmetric(registrationId, key, transport);
        assert.equal(result.deviceId, registrationId);
        assert.equal(result.status, 'assigned');
        const twin = await connectAndSend(result.assignedHub, registrationId, { key });
        assert.deepEqual(twin.tags, { fleet: groupId });
        assert.equal(twin.properties.desired.rate, 5);
        assert.equal((await service.getDeviceRegistrationState(registrationId)).responseBody.status, 'assigned');
      }
      await assert.rejects(registerSymmetric(`${groupId}-c`, groupKey, transport), unauthorized);
      await assertNoDevice(`${groupId}-c`);
    });

    test(`${transport}: a wrong key and an unknown registration id are refused alike; nothing is created`, async () => {
      const registrationId = `sym-guarded-${transport.toLowerCase()}`;
      await service.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'symmetricKey' } } as any);
      const wrong = Buffer.alloc(32, 9).toString('base64');
      await assert.rejects(registerSymmetric(registrationId, wrong, transport), unauthorized);
      await assert.rejects(registerSymmetric(`nobody-${transport.toLowerCase()}`, wrong, transport), unauthorized);
      await assertNoDevice(registrationId);
      await assertNoDevice(`nobody-${transport.toLowerCase()}`);
      await assert.rejects(service.getDeviceRegistrationState(registrationId), (e: any) => e.response?.statusCode === 404);
    });

    test(`${transport}: individual X.509 enrollment matched by the TLS client certificate; an impostor is refused`, async () => {
      const registrationId = `x509-${transport.toLowerCase()}`;
      const cert = await selfSigned(registrationId);
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: cert.certPem } } } },
        initialTwin: { tags: { kind: 'x509', via: transport }, properties: { desired: { level: 1 } } },
      } as any);
      const impostor = await selfSigned(registrationId);
      await assert.rejects(registerX509(registrationId, impostor, impostor.certPem, transport), unauthorized);
      await assertNoDevice(registrationId);

      const result = await registerX509(registrationId, cert, cert.certPem, transport);
      assert.equal(result.assignedHub, t.host);
      assert.equal(result.deviceId, registrationId);
      const created: any = (await registry.get(registrationId)).responseBody;
      assert.equal(created.authentication.type, 'selfSigned');
      assert.equal(created.authentication.x509Thumbprint.primaryThumbprint, await thumbprint(cert));
      // Over WebSocket the hub reads the client certificate from the HTTPS upgrade too.
      const twin = await connectAndSend(result.assignedHub, registrationId, { cert, chainPem: cert.certPem }, transport === 'AmqpWs' ? deviceAmqp.AmqpWs : deviceAmqp.Amqp);
      assert.deepEqual(twin.tags, { kind: 'x509', via: transport });
      assert.equal(twin.properties.desired.level, 1);
      assert.equal((await service.getDeviceRegistrationState(registrationId)).responseBody.status, 'assigned');
    });

    test(`${transport}: X.509 group through an intermediate; an untrusted chain and a foreign CN are refused`, async () => {
      const suffix = transport.toLowerCase();
      const root = await selfSigned(`x509-root-${suffix}`, true);
      const intermediate = await issue(root, `x509-intermediate-${suffix}`, true);
      await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: `x509-group-${suffix}`,
        attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: intermediate.certPem } } } },
        initialTwin: { tags: { fleet: 'x509', via: transport }, properties: { desired: { rate: 9 } } },
      } as any);
      const registrationId = `x509-member-${suffix}`;
      const leaf = await issue(intermediate, registrationId);
      const chainPem = `${leaf.certPem}\n${intermediate.certPem}\n`;
      const result = await registerX509(registrationId, leaf, chainPem, transport);
      assert.equal(result.deviceId, registrationId);
      assert.equal(((await registry.get(registrationId)).responseBody as any).authentication.type, 'selfSigned');

      // The hub authenticates a CA-signed device against its own verified CAs (as in Azure).
      await verifyHubCa(t, `root-${suffix}`, root);
      const twin = await connectAndSend(result.assignedHub, registrationId, { cert: leaf, chainPem });
      assert.deepEqual(twin.tags, { fleet: 'x509', via: transport });
      assert.equal(twin.properties.desired.rate, 9);

      const stranger = await issue(await selfSigned(`other-root-${suffix}`, true), `x509-stranger-${suffix}`);
      await assert.rejects(registerX509(`x509-stranger-${suffix}`, stranger, stranger.certPem, transport), unauthorized);
      await assertNoDevice(`x509-stranger-${suffix}`);
      const wrongCn = await issue(intermediate, `somebody-else-${suffix}`);
      await assert.rejects(registerX509(`x509-wrong-cn-${suffix}`, wrongCn, `${wrongCn.certPem}\n${intermediate.certPem}\n`, transport), unauthorized);
      await assertNoDevice(`x509-wrong-cn-${suffix}`);
    });
  }

  test('Amqp: a disabled enrollment yields status disabled; the payload is taken; nothing is created', async () => {
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'amqp-disabled', attestation: { type: 'symmetricKey' }, provisioningStatus: 'disabled' } as any);
    const key = (await service.getIndividualEnrollmentAttestationMechanism('amqp-disabled')).responseBody.symmetricKey!.primaryKey;
    await assert.rejects(registerSymmetric('amqp-disabled', key, 'Amqp', { site: 'lab' }), disabledRegistration);
    await assertNoDevice('amqp-disabled');
    assert.equal((await service.getDeviceRegistrationState('amqp-disabled')).responseBody.status, 'disabled');
  });

  test('raw AMQP: answers are correlated and carry retry-after; bad requests are rejected with DPS errors and change nothing', async () => {
    await service.createOrUpdateIndividualEnrollment({ registrationId: 'amqp-raw', attestation: { type: 'symmetricKey' }, initialTwin: { tags: { raw: true } } } as any);
    const key = (await service.getIndividualEnrollmentAttestationMechanism('amqp-raw')).responseBody.symmetricKey!.primaryKey;
    const node = `${idScope}/registrations/amqp-raw`;
    const token = createSasToken(node, key, Math.floor(Date.now() / 1000) + 600, 'registration');
    const amqp = await connectAmqp(t.host, { username: node, password: token });
    try {
      const answers = new Map<string, (m: Message) => void>();
      const receiver = await amqp.receiver(node);
      receiver.on('message', (ctx) => answers.get(String(ctx.message!.correlation_id))?.(ctx.message!));
      const sender = await amqp.sender(node);
      const ask = (props: Record<string, unknown>, body: string) => {
        const correlationId = randomUUID();
        const answer = new Promise<Message>((resolve) => answers.set(correlationId, resolve));
        return settle(sender, { correlation_id: correlationId, application_properties: props, body: rhea.message.data_section(Buffer.from(body)) }).then((outcome) => ({ outcome, answer }));
      };

      const notJson = await ask({ 'iotdps-operation-type': 'iotdps-register' }, '{not json');
      assert.equal(notJson.outcome.condition, 'com.microsoft:argument-error');
      assert.equal(JSON.parse(notJson.outcome.description!).errorCode, 400001);
      const otherId = await ask({ 'iotdps-operation-type': 'iotdps-register' }, JSON.stringify({ registrationId: 'someone-else' }));
      assert.equal(otherId.outcome.condition, 'com.microsoft:argument-error');
      const unknownType = await ask({ 'iotdps-operation-type': 'iotdps-reboot' }, '');
      assert.equal(unknownType.outcome.condition, 'com.microsoft:argument-error');
      const noOperation = await ask({ 'iotdps-operation-type': 'iotdps-get-operationstatus', 'iotdps-operation-id': 'nope' }, '');
      assert.equal(noOperation.outcome.condition, 'amqp:not-found');
      assert.equal(JSON.parse(noOperation.outcome.description!).errorCode, 404000);
      await assertNoDevice('amqp-raw');
      await assert.rejects(service.getDeviceRegistrationState('amqp-raw'), (e: any) => e.response?.statusCode === 404);
      // Another registration's node with this connection's token is refused.
      const foreign = await amqp.sender(`${idScope}/registrations/amqp-other`);
      const refused = await settle(foreign, { correlation_id: randomUUID(), application_properties: { 'iotdps-operation-type': 'iotdps-register' }, body: rhea.message.data_section(Buffer.from('{}')) });
      assert.equal(refused.condition, 'amqp:unauthorized-access');

      const register = await ask({ 'iotdps-operation-type': 'iotdps-register', 'iotdps-forceRegistration': false }, JSON.stringify({ registrationId: 'amqp-raw' }));
      assert.equal(register.outcome.state, 'accepted');
      const first = await register.answer;
      // A string, as the SDK reads it with a truthiness test (a number 0 would be ignored).
      assert.equal(first.application_properties?.['retry-after'], '1');
      const op = JSON.parse(messageText(first));
      assert.equal(op.status, 'assigning');
      const status = await ask({ 'iotdps-operation-type': 'iotdps-get-operationstatus', 'iotdps-operation-id': op.operationId }, '');
      assert.equal(status.outcome.state, 'accepted');
      const done = JSON.parse(messageText(await status.answer));
      assert.equal(done.status, 'assigned');
      assert.equal(done.registrationState.deviceId, 'amqp-raw');
      assert.equal(done.registrationState.assignedHub, t.host);
      assert.deepEqual(((await registry.getTwin('amqp-raw')).responseBody as any).tags, { raw: true });
    } finally {
      await amqp.close();
    }
  });
});

describe('DPS TPM registration over AMQP (SASL TPM) with swtpm and the unmodified SDKs', { timeout: 120_000 }, () => {
  let { t, service, registry, idScope, assertNoDevice } = {} as DpsFixture;
  let tpmA: Swtpm;
  let tpmB: Swtpm;
  let ekA: string;

  const register = (client: TpmSecurityClientLike, transport: TransportName) =>
    sdkOperation(() => ProvisioningDeviceClient.create(t.host, idScope, transports[transport](), client as any).register() as Promise<any>);

  before(async () => {
    ({ t, service, registry, idScope, assertNoDevice } = await dpsFixture());
    [tpmA, tpmB] = await Promise.all([startSwtpm(), startSwtpm()]);
    ekA = await withTpm(tpmA, undefined, async (c) => (await tpmCall.endorsementKey(c)).toString('base64'));
  });
  after(async () => {
    await Promise.all([tpmA?.stop(), tpmB?.stop()]);
    await t?.close();
  });

  for (const transport of ['Amqp', 'AmqpWs'] as const) {
    test(`${transport}: the TPM passes the SASL TPM challenge, gets its hub key, connects, sends telemetry and finds its initial twin`, async () => {
      // The id the SDK derives from the EK when none is configured: the enrollment is made for it.
      const registrationId = tpmRegistrationId(ekA);
      const deviceId = `tpm-${transport.toLowerCase()}`;
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        deviceId,
        attestation: { type: 'tpm', tpm: { endorsementKey: ekA } },
        initialTwin: { tags: { via: transport, secure: true }, properties: { desired: { setpoint: 21.5 } } },
        etag: '*',
      } as any);
      await withTpm(tpmA, undefined, async (client) => {
        const result = await register(client, transport);
        assert.equal(result.status, 'assigned');
        const state = result.registrationState;
        assert.equal(state.registrationId, registrationId);
        assert.equal(state.assignedHub, t.host);
        assert.equal(state.deviceId, deviceId);
        assert.equal(typeof state.tpm?.authenticationKey, 'string');

        const key: string = ((await registry.get(deviceId)).responseBody as any).authentication.symmetricKey.primaryKey;
        const auth = TpmAuthenticationProvider.fromTpmSecurityClient(deviceId, state.assignedHub, client);
        const deviceClient = device.Client.fromAuthenticationProvider(auth, deviceMqtt.Mqtt as any);
        try {
          await sdkOperation(() => deviceClient.open());
          await sdkOperation(() => deviceClient.sendEvent(new device.Message(JSON.stringify({ hello: deviceId }))));
          const credentials = await sdkOperation(() => auth.getDeviceCredentials() as Promise<{ sharedAccessSignature: string }>);
          assert.ok(signatureMatches(parseSasToken(credentials.sharedAccessSignature)!, key), 'the TPM signs hub SAS tokens with the key the hub has');
        } finally {
          await deviceClient.close();
          auth.stop();
        }
      });
      const events = await eventsOf(t, deviceId);
      assert.deepEqual(events.map((e) => JSON.parse(e.body.toString())), [{ hello: deviceId }]);
      const twin: any = (await registry.getTwin(deviceId)).responseBody;
      assert.deepEqual(twin.tags, { via: transport, secure: true });
      assert.equal(twin.properties.desired.setpoint, 21.5);
      assert.equal((await service.getDeviceRegistrationState(registrationId)).responseBody.status, 'assigned');
    });
  }

  for (const transport of ['Amqp', 'AmqpWs'] as const) {
    test(`${transport}: another TPM's EK and an unknown id get a challenge, then the auth outcome; register() rejects promptly; nothing is created`, async () => {
      const registrationId = `tpm-guarded-${transport.toLowerCase()}`;
      await service.createOrUpdateIndividualEnrollment({ registrationId, deviceId: `${registrationId}-device`, attestation: { type: 'tpm', tpm: { endorsementKey: ekA } } } as any);
      for (const id of [registrationId, `tpm-nobody-${transport.toLowerCase()}`]) {
        await withTpm(tpmB, id, async (client) => {
          const tpm = countActivations(client);
          // The SASL failure after the challenge: azure-iot-amqp-base reports it as NotConnectedError.
          await assert.rejects(within(15_000, register(client, transport), `register() as ${id} over ${transport}`), sdkError('NotConnectedError'));
          assert.equal(tpm.activated, 1, `${id}: the TPM activated the challenge before the refusal`);
        });
        await assertNoDevice(id);
        await assert.rejects(service.getDeviceRegistrationState(id), (e: any) => e.response?.statusCode === 404);
      }
      await assertNoDevice(`${registrationId}-device`);
    });
  }

  test('SASL TPM on the wire: the blob comes in chunks; another TPM\'s EK, an unknown id and a forged SAS get the auth outcome; nothing is created', async () => {
    // Every well-formed EK and SRK gets a blob (made for them), so that the refusal comes at the
    // signed SAS, after a challenge: azure-iot-provisioning-device-amqp 1.9.1 reports a SASL
    // failure only then (a refusal right after the SRK would leave register() pending).
    const registrationId = 'tpm-raw';
    await service.createOrUpdateIndividualEnrollment({ registrationId, attestation: { type: 'tpm', tpm: { endorsementKey: ekA } } } as any);
    const srkA = await withTpm(tpmA, undefined, async (c) => (await tpmCall.storageRootKey(c)).toString('base64'));
    const [ekB, srkB] = await withTpm(tpmB, undefined, async (c) => [(await tpmCall.endorsementKey(c)).toString('base64'), (await tpmCall.storageRootKey(c)).toString('base64')]);
    const forged = (id: string) => `SharedAccessSignature sr=${encodeURIComponent(`${idScope}/registrations/${id}`)}&sig=${encodeURIComponent(Buffer.alloc(32, 7).toString('base64'))}&se=${Math.floor(Date.now() / 1000) + 600}&skn=registration`;

    const tpmSasl = async (id: string, ek: string, srk: string, sas: string) => {
      const challenges: Buffer[] = [];
      const mechanism = {
        start: (cb: (e: unknown, r: Buffer) => void) =>
          cb(undefined, Buffer.concat([Buffer.from([0]), Buffer.from(idScope), Buffer.from([0]), Buffer.from(id), Buffer.from([0]), Buffer.from(ek, 'base64')])),
        step: (challenge: Buffer, cb: (e: unknown, r: Buffer) => void) => {
          challenges.push(Buffer.from(challenge));
          if (challenge.length === 1) return cb(undefined, Buffer.concat([Buffer.from([0]), Buffer.from(srk, 'base64')]));
          cb(undefined, (challenge[0]! & 0xc0) === 0xc0 ? Buffer.concat([Buffer.from([0]), Buffer.from(sas)]) : Buffer.from([0]));
        },
      };
      const container = rhea.create_container();
      container.on('error', () => undefined);
      const connection = container.connect({ host: t.host, port: 5671, transport: 'tls', reconnect: false, sasl_mechanisms: { TPM: mechanism } } as any);
      const outcome = await new Promise<string>((resolve) => {
        connection.once('connection_open', () => resolve('open'));
        connection.once('connection_error', (ctx) => resolve((ctx.error as any)?.condition ?? String(ctx.error)));
        connection.once('disconnected', () => resolve('disconnected'));
      });
      if (!connection.is_closed()) connection.close();
      return { outcome, challenges };
    };

    // TPM B's EK for A's registration, and an id nobody enrolled: a blob as for A's keys, then refused.
    for (const id of [registrationId, 'tpm-nobody']) {
      const { outcome, challenges } = await tpmSasl(id, ekB, srkB, forged(id));
      assert.equal(outcome, 'amqp:unauthorized-access');
      assert.ok(challenges.length >= 3, `${id}: a blob after the SRK, challenges: ${challenges.length}`);
      assert.equal(challenges.at(-1)![0], 0xc0);
    }
    // Keys that are not TPM keys: refused right after the SRK, no blob.
    const junk = Buffer.from('not a key').toString('base64');
    for (const [ek, srk] of [[junk, srkB], [ekB, junk]] as const) {
      const { outcome, challenges } = await tpmSasl('tpm-nobody', ek, srk, forged('tpm-nobody'));
      assert.equal(outcome, 'amqp:unauthorized-access');
      assert.deepEqual(challenges, [Buffer.from([0])]);
    }
    // A's keys get the blob (more than one chunk: 0x80 …, then 0xC0), but a SAS the TPM did not sign is refused.
    const { outcome, challenges } = await tpmSasl(registrationId, ekA, srkA, forged(registrationId));
    assert.equal(outcome, 'amqp:unauthorized-access');
    assert.ok(challenges.length >= 3, `challenges: ${challenges.length}`);
    assert.ok(challenges.slice(1, -1).every((c) => c[0] === 0x80));
    assert.equal(challenges.at(-1)![0], 0xc0);
    assert.ok(challenges.every((c) => c.length <= 512), 'SASL frames stay within 512 bytes');
    for (const id of [registrationId, 'tpm-nobody']) {
      await assert.rejects(service.getDeviceRegistrationState(id), (e: any) => e.response?.statusCode === 404);
      await assertNoDevice(id);
    }
  });
});

/**
 * The refusal as azure-iot-provisioning-device-amqp hands it over: the AMQP error itself (the
 * connection's close for a SAS token, the request's rejection for a certificate), with
 * amqp:unauthorized-access and DPS's error body (401002) as description.
 */
function unauthorized(e: any): true {
  const amqp = e?.amqpError ?? e;
  assert.equal(amqp?.condition, 'amqp:unauthorized-access', `expected amqp:unauthorized-access, got ${e?.name}: ${e?.message}`);
  assert.equal(JSON.parse(amqp.description).errorCode, 401002);
  return true;
}

/** Sends `message` and resolves with how the server settled it. */
function settle(sender: Sender, message: Message): Promise<{ state: string; condition?: string; description?: string }> {
  return new Promise((resolve) => {
    const delivery = sender.send(message);
    const onSettled = (ctx: any) => {
      if (ctx.delivery !== delivery) return;
      const state = ctx.delivery.remote_state;
      resolve({ state: ctx.delivery.remote_state?.constructor?.name === 'Rejected' || state?.error ? 'rejected' : 'accepted', condition: state?.error?.condition, description: state?.error?.description });
    };
    sender.on('accepted', onSettled);
    sender.on('rejected', onSettled);
  });
}

function messageText(m: Message): string {
  const body = m.body as any;
  return Buffer.isBuffer(body) ? body.toString('utf8') : Buffer.from(body.content).toString('utf8');
}
