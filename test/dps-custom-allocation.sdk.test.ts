/**
 * Custom allocation end to end: a small local HTTP(S) server is the webhook; the unmodified
 * azure-iot-provisioning-device registers over Http and Mqtt with a payload; the webhook sees
 * the AllocationRequest DPS sends, picks a linked hub and returns an initial twin and a payload;
 * the device gets the payload in its registration result and finds the webhook's twin in the hub.
 * Webhook failures end the registration `failed` with DPS's codes and create nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import provisioningService from 'azure-iot-provisioning-service';
import provisioningDevice from 'azure-iot-provisioning-device';
import provisioningHttp from 'azure-iot-provisioning-device-http';
import provisioningMqtt from 'azure-iot-provisioning-device-mqtt';
import symmetricKey from 'azure-iot-security-symmetric-key';
import securityX509 from 'azure-iot-security-x509';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { dpsConnectionString } from './support/dps.js';
import { sdkError } from './support/sdk.js';
import { issue, selfSigned, thumbprint } from './support/x509.js';
import { HttpAllocationWebhook } from '../src/protocols/webhook/allocationWebhook.js';

const { ProvisioningServiceClient } = provisioningService;
const { ProvisioningDeviceClient } = provisioningDevice;
const { Http } = provisioningHttp;
const { SymmetricKeySecurityClient } = symmetricKey;
const { X509Security } = securityX509 as any;

const OTHER_HUB = 'hub2.example';

type Handler = (body: any, req: IncomingMessage, res: ServerResponse) => void;

/** A webhook on 127.0.0.1 that records what it was sent and answers with the current handler. */
interface Webhook {
  url: string;
  requests: { body: any; headers: IncomingMessage['headers']; method: string }[];
  handler: Handler;
  close(): Promise<void>;
}

async function startWebhook(server: Server = createHttpServer(), scheme = 'http'): Promise<Webhook> {
  const hook: Webhook = {
    url: '',
    requests: [],
    handler: (_b, _q, res) => res.writeHead(500).end(),
    close: () => new Promise((r) => server.close(() => r())),
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      hook.requests.push({ body, headers: req.headers, method: req.method ?? '' });
      hook.handler(body, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hook.url = `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}/api/allocate?code=secret`;
  return hook;
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));

function derivedKey(groupKey: string, registrationId: string): string {
  return createHmac('sha256', Buffer.from(groupKey, 'base64')).update(registrationId).digest('base64');
}

describe('DPS custom allocation (webhook) through the unmodified SDKs', () => {
  let t: TestHub;
  let hook: Webhook;
  let service: InstanceType<typeof ProvisioningServiceClient>;
  let registry: InstanceType<typeof iothub.Registry>;
  let idScope: string;

  before(async () => {
    // A second linked hub, so the webhook has a choice to make (it is not hosted by this process).
    t = await startTestHub({ dps: { linkedHubs: [{ hostName: OTHER_HUB, allocationWeight: 1 }], allocationPolicy: 'hashed' } } as any);
    hook = await startWebhook();
    service = ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
    registry = iothub.Registry.fromConnectionString(await t.connectionString());
    idScope = (await t.hub.info()).dps!.idScope;
  });
  after(async () => {
    await hook.close();
    await t.close();
  });

  function register(registrationId: string, key: string, payload?: unknown, transport: any = new Http()) {
    const client = ProvisioningDeviceClient.create(t.host, idScope, transport, new SymmetricKeySecurityClient(registrationId, key) as any);
    if (payload !== undefined) client.setProvisioningPayload(payload as any);
    return client.register() as Promise<any>;
  }

  async function individual(registrationId: string, extra: Record<string, unknown> = {}, url = hook.url): Promise<string> {
    await service.createOrUpdateIndividualEnrollment({
      registrationId,
      attestation: { type: 'symmetricKey' },
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: url, apiVersion: '2021-10-01' },
      ...extra,
    } as any);
    return (await service.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody.symmetricKey!.primaryKey;
  }

  async function twinAfterConnecting(assignedHub: string, deviceId: string, key: string) {
    const client = device.Client.fromConnectionString(`HostName=${assignedHub};DeviceId=${deviceId};SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
    await client.open();
    try {
      const twin: any = await client.getTwin();
      return twin.properties.desired;
    } finally {
      await client.close();
    }
  }

  async function assertNoDevice(deviceId: string) {
    await assert.rejects(registry.get(deviceId), sdkError('DeviceNotFoundError'));
  }

  /** The registration fails with DPS's code; the service's record says so too; nothing exists in the hub. */
  async function assertFailed(p: Promise<unknown>, registrationId: string, errorCode: number, message: RegExp) {
    await assert.rejects(p, (e: any) => {
      assert.equal(e.name, 'ProvisioningRegistrationFailedError', `${e.name}: ${e.message}`);
      assert.equal(e.result.status, 'failed');
      assert.equal(e.result.registrationState.status, 'failed');
      assert.equal(e.result.registrationState.errorCode, errorCode);
      assert.match(e.result.registrationState.errorMessage, message);
      assert.equal(e.result.registrationState.assignedHub, undefined);
      return true;
    });
    await assertNoDevice(registrationId);
    const { responseBody: state } = await service.getDeviceRegistrationState(registrationId);
    assert.equal(state.status, 'failed');
    assert.equal((state as any).errorCode, errorCode);
  }

  test('Http, individual enrollment: the webhook sees the request, picks the hub, sets the twin and returns a payload to the device', async () => {
    const key = await individual('custom-http', {
      deviceId: 'toaster-1',
      initialTwin: { tags: { from: 'enrollment' }, properties: { desired: { source: 'enrollment' } } },
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    });
    hook.requests.length = 0;
    hook.handler = (body, _req, res) => {
      const chosen = body.linkedHubs.find((h: string) => h === t.host);
      json(res, 200, {
        iotHubHostName: chosen,
        initialTwin: { tags: { deviceType: 'toaster', model: body.deviceRuntimeContext.payload?.model }, properties: { desired: { state: 'ready', darkness: 'medium' } } },
        payload: { welcome: body.deviceRuntimeContext.registrationId, hubs: body.linkedHubs.length },
      });
    };

    const result = await register('custom-http', key, { model: 'T-1000', firmware: '1.2.3' });
    assert.equal(result.status, 'assigned');
    assert.equal(result.assignedHub, t.host);
    assert.equal(result.deviceId, 'toaster-1');
    assert.deepEqual(result.payload, { welcome: 'custom-http', hubs: 2 });

    // What DPS sends: one POST, JSON, the enrollment without its keys, the device's runtime context, the hubs offered.
    assert.equal(hook.requests.length, 1);
    const [sent] = hook.requests;
    assert.equal(sent!.method, 'POST');
    assert.match(String(sent!.headers['content-type']), /^application\/json/);
    const req = sent!.body;
    assert.equal(req.enrollmentGroup, undefined);
    assert.equal(req.individualEnrollment.registrationId, 'custom-http');
    assert.equal(req.individualEnrollment.deviceId, 'toaster-1');
    assert.equal(req.individualEnrollment.allocationPolicy, 'custom');
    assert.deepEqual(req.individualEnrollment.customAllocationDefinition, { webhookUrl: hook.url, apiVersion: '2021-10-01' });
    assert.deepEqual(req.individualEnrollment.attestation, { type: 'symmetricKey' });
    assert.ok(!JSON.stringify(req).includes(key), 'the device key is not sent to the webhook');
    assert.deepEqual(req.deviceRuntimeContext, { registrationId: 'custom-http', symmetricKey: {}, payload: { model: 'T-1000', firmware: '1.2.3' } });
    assert.deepEqual(req.linkedHubs, [t.host, OTHER_HUB]);

    // The webhook's initial twin replaced the enrollment's.
    const desired = await twinAfterConnecting(result.assignedHub, 'toaster-1', key);
    assert.equal(desired.state, 'ready');
    assert.equal(desired.darkness, 'medium');
    assert.equal(desired.source, undefined);
    const { responseBody: twin } = await registry.getTwin('toaster-1');
    assert.deepEqual(twin.tags, { deviceType: 'toaster', model: 'T-1000' });

    // The service's registration record has the assignment, not the device's payload.
    const { responseBody: state } = await service.getDeviceRegistrationState('custom-http');
    assert.equal(state.status, 'assigned');
    assert.equal(state.assignedHub, t.host);
    assert.equal((state as any).payload, undefined);

    // Registering again: the webhook is told where the device is now; a new payload reaches the device.
    hook.handler = (body, _req, res) => json(res, 200, { iotHubHostName: body.deviceRuntimeContext.currentIotHubHostName, payload: { again: true } });
    const again = await register('custom-http', key);
    assert.deepEqual(again.payload, { again: true });
    const ctx = hook.requests[1]!.body.deviceRuntimeContext;
    assert.equal(ctx.currentIotHubHostName, t.host);
    assert.equal(ctx.currentDeviceId, 'toaster-1');
    assert.equal(ctx.payload, undefined);
  });

  test('Mqtt, enrollment group: the webhook sees the group and each device payload; each device gets its own answer', async () => {
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'custom-group',
      attestation: { type: 'symmetricKey' },
      allocationPolicy: 'custom',
      iotHubs: [t.host],
      customAllocationDefinition: { webhookUrl: hook.url, apiVersion: '2021-10-01' },
      initialTwin: { tags: { from: 'group' } },
    } as any);
    const groupKey = (await service.getEnrollmentGroupAttestationMechanism('custom-group')).responseBody.symmetricKey!.primaryKey;
    hook.requests.length = 0;
    hook.handler = (body, _req, res) =>
      json(res, 200, {
        iotHubHostName: body.linkedHubs[0],
        initialTwin: { properties: { desired: { slot: body.deviceRuntimeContext.payload.slot } } },
        payload: { slot: body.deviceRuntimeContext.payload.slot, via: body.enrollmentGroup.enrollmentGroupId },
      });

    for (const [i, registrationId] of ['custom-member-1', 'custom-member-2'].entries()) {
      const key = derivedKey(groupKey, registrationId);
      const result = await register(registrationId, key, { slot: i + 1 }, new provisioningMqtt.Mqtt());
      assert.equal(result.assignedHub, t.host);
      assert.equal(result.deviceId, registrationId);
      assert.deepEqual(result.payload, { slot: i + 1, via: 'custom-group' });
      assert.equal((await twinAfterConnecting(result.assignedHub, registrationId, key)).slot, i + 1);
      // No initialTwin tags from the webhook: the webhook's twin still replaces the group's entirely.
      assert.equal((await registry.getTwin(registrationId)).responseBody.tags?.from, undefined);
    }
    assert.equal(hook.requests.length, 2);
    const req = hook.requests[0]!.body;
    assert.equal(req.individualEnrollment, undefined);
    assert.equal(req.enrollmentGroup.enrollmentGroupId, 'custom-group');
    assert.deepEqual(req.enrollmentGroup.attestation, { type: 'symmetricKey' });
    assert.ok(!JSON.stringify(req).includes(groupKey), 'the group key is not sent to the webhook');
    // The enrollment's iotHubs limit the hubs offered.
    assert.deepEqual(req.linkedHubs, [t.host]);
    assert.deepEqual(req.deviceRuntimeContext, { registrationId: 'custom-member-1', symmetricKey: {}, payload: { slot: 1 } });
  });

  test('X.509 group through an intermediate: the runtime context carries the device certificate\'s details', async () => {
    const root = await selfSigned('custom-x509-root', true);
    const intermediate = await issue(root, 'custom-x509-intermediate', true);
    const leaf = await issue(intermediate, 'custom-x509-device');
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'custom-x509-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: intermediate.certPem } } } },
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: hook.url, apiVersion: '2021-10-01' },
    } as any);
    hook.requests.length = 0;
    hook.handler = (body, _req, res) =>
      json(res, 200, { iotHubHostName: body.linkedHubs[0], initialTwin: { tags: { cn: body.deviceRuntimeContext.x509?.certificateInfo?.subjectName } }, payload: { ok: 1 } });
    const client = ProvisioningDeviceClient.create(t.host, idScope, new provisioningMqtt.Mqtt(), new X509Security('custom-x509-device', { cert: `${leaf.certPem}\n${intermediate.certPem}\n`, key: leaf.keyPem }));
    client.setProvisioningPayload({ kind: 'x509' } as any);
    const result: any = await client.register();
    assert.equal(result.deviceId, 'custom-x509-device');
    assert.deepEqual(result.payload, { ok: 1 });

    const req = hook.requests[0]!.body;
    assert.equal(req.enrollmentGroup.enrollmentGroupId, 'custom-x509-group');
    assert.ok(req.enrollmentGroup.attestation.x509.signingCertificates.primary.info.sha1Thumbprint);
    assert.equal(req.enrollmentGroup.attestation.x509.signingCertificates.primary.certificate, undefined);
    const x509 = req.deviceRuntimeContext.x509;
    assert.equal(x509.certificateInfo.subjectName, 'CN=custom-x509-device');
    assert.equal(x509.certificateInfo.issuerName, 'CN=custom-x509-intermediate');
    assert.equal(x509.certificateInfo.sha1Thumbprint, await thumbprint(leaf));
    assert.equal(x509.enrollmentGroupId, 'custom-x509-group');
    assert.deepEqual(req.deviceRuntimeContext.payload, { kind: 'x509' });
    assert.equal(req.deviceRuntimeContext.symmetricKey, undefined);
    assert.deepEqual((await registry.getTwin('custom-x509-device')).responseBody.tags, { cn: 'CN=custom-x509-device' });
    assert.equal(((await registry.get('custom-x509-device')).responseBody as any).authentication.type, 'selfSigned');
  });

  test('a webhook answer without initialTwin or payload keeps the enrollment twin and returns no payload', async () => {
    const key = await individual('custom-plain', { initialTwin: { tags: { from: 'enrollment' }, properties: { desired: { source: 'enrollment' } } } });
    hook.handler = (body, _req, res) => json(res, 200, { iotHubHostName: body.linkedHubs[0], initialTwin: null });
    const result = await register('custom-plain', key);
    assert.equal(result.status, 'assigned');
    assert.equal(result.payload, undefined);
    assert.equal((await twinAfterConnecting(result.assignedHub, 'custom-plain', key)).source, 'enrollment');
    assert.deepEqual((await registry.getTwin('custom-plain')).responseBody.tags, { from: 'enrollment' });
  });

  test('an https webhook with a certificate from Fleethub\'s CA is trusted; one with an untrusted certificate fails the registration', async () => {
    // Fleethub's own server certificate names 127.0.0.1 and is issued by its CA.
    const trusted = await startWebhook(
      createHttpsServer({ cert: readFileSync(join(t.dataDir, 'tls', 'server-cert.pem')), key: readFileSync(join(t.dataDir, 'tls', 'server-key.pem')) }),
      'https',
    );
    const stranger = await selfSigned('127.0.0.1');
    const untrusted = await startWebhook(createHttpsServer({ cert: stranger.certPem, key: stranger.keyPem }), 'https');
    try {
      trusted.handler = (body, _req, res) => json(res, 200, { iotHubHostName: body.linkedHubs[0], payload: { tls: 'ok' } });
      untrusted.handler = trusted.handler;
      const key = await individual('custom-https', {}, trusted.url);
      const result = await register('custom-https', key);
      assert.deepEqual(result.payload, { tls: 'ok' });
      assert.equal(trusted.requests.length, 1);

      const key2 = await individual('custom-https-untrusted', {}, untrusted.url);
      await assertFailed(register('custom-https-untrusted', key2), 'custom-https-untrusted', 400207, /could not be called/);
      assert.equal(untrusted.requests.length, 0);
    } finally {
      await trusted.close();
      await untrusted.close();
    }
  });

  test('webhook failures end the registration failed with DPS\'s error codes and create nothing in the hub', async () => {
    // Unreachable: a port nobody listens on.
    const gone = await startWebhook();
    const goneUrl = gone.url;
    await gone.close();
    const k1 = await individual('custom-down', {}, goneUrl);
    await assertFailed(register('custom-down', k1), 'custom-down', 400207, /could not be called/);

    const cases: [string, Handler, number, RegExp][] = [
      ['custom-500', (_b, _q, res) => json(res, 500, { error: 'boom' }), 400207, /answered HTTP 500/],
      ['custom-401', (_b, _q, res) => json(res, 401, { error: 'no key' }), 400209, /401/],
      ['custom-not-json', (_b, _q, res) => json(res, 200, 'this is not json'), 400207, /not JSON/],
      ['custom-no-hub', (_b, _q, res) => json(res, 200, { iotHubHostName: '', payload: { x: 1 } }), 400208, /no iotHubHostName/],
      ['custom-not-offered', (_b, _q, res) => json(res, 200, { iotHubHostName: 'elsewhere.azure-devices.net' }), 400207, /not one of the linked hubs offered/],
      ['custom-bad-twin', (b, _q, res) => json(res, 200, { iotHubHostName: b.linkedHubs[0], initialTwin: { tags: 'x' } }), 400207, /initialTwin/],
    ];
    for (const [registrationId, handler, code, message] of cases) {
      hook.handler = handler;
      const key = await individual(registrationId);
      await assertFailed(register(registrationId, key), registrationId, code, message);
    }

    // A hub that is offered (enrollment iotHubs) but hosted elsewhere: failed, nothing created here.
    hook.handler = (b, _q, res) => json(res, 200, { iotHubHostName: b.linkedHubs.find((h: string) => h === OTHER_HUB) });
    const k2 = await individual('custom-far', { iotHubs: [t.host, OTHER_HUB] });
    await assertFailed(register('custom-far', k2), 'custom-far', 500207, /not hosted by this Fleethub process/);

    // A hub offered by DPS but outside the enrollment's iotHubs is refused.
    hook.handler = (_b, _q, res) => json(res, 200, { iotHubHostName: OTHER_HUB });
    const k3 = await individual('custom-outside', { iotHubs: [t.host] });
    await assertFailed(register('custom-outside', k3), 'custom-outside', 400207, /not one of the linked hubs offered/);
  });
});

describe('HttpAllocationWebhook (the outbound call)', () => {
  test('gives up on a webhook that does not answer in time', async () => {
    const server = createHttpServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`;
    try {
      const started = Date.now();
      await assert.rejects(new HttpAllocationWebhook({ timeoutMs: 300 }).post(url, '{}'), /no answer within 300 ms/);
      assert.ok(Date.now() - started < 3000);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('refuses an answer larger than the limit and URLs that are not http(s)', async () => {
    const server = createHttpServer((_req, res) => res.end(Buffer.alloc(64 * 1024, 0x61)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big`;
    try {
      await assert.rejects(new HttpAllocationWebhook({ maxResponseBytes: 1024 }).post(url, '{}'), /exceeds 1024 bytes/);
      const ok = await new HttpAllocationWebhook().post(url, '{}');
      assert.equal(ok.status, 200);
      assert.equal(ok.body.length, 64 * 1024);
      await assert.rejects(new HttpAllocationWebhook().post('ftp://127.0.0.1/x', '{}'), /unsupported webhook URL scheme/);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('custom allocation across two hubs in one process', () => {
  let t: TestHub;
  let second: TestHub;
  let hook: Webhook;

  before(async () => {
    t = await startTestHub({}, { extraHubs: 1 });
    second = t.hubs[0]!;
    hook = await startWebhook();
  });
  after(async () => {
    await hook.close();
    await t.close();
  });

  test('the webhook picks the second hub: the device is created only there, connects there and finds the webhook\'s twin', async () => {
    const service = ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
    const primary = iothub.Registry.fromConnectionString(await t.connectionString());
    const other = iothub.Registry.fromConnectionString(await second.connectionString());
    const idScope = (await t.hub.info()).dps!.idScope;
    const enroll = async (registrationId: string, extra: Record<string, unknown> = {}) => {
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey' },
        allocationPolicy: 'custom',
        customAllocationDefinition: { webhookUrl: hook.url, apiVersion: '2021-10-01' },
        initialTwin: { tags: { from: 'enrollment' } },
        ...extra,
      } as any);
      return (await service.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody.symmetricKey!.primaryKey;
    };
    const register = (registrationId: string, key: string, payload: unknown, transport: any) => {
      const client = ProvisioningDeviceClient.create(t.host, idScope, transport, new SymmetricKeySecurityClient(registrationId, key) as any);
      client.setProvisioningPayload(payload as any);
      return client.register() as Promise<any>;
    };
    // The webhook sends devices of region "b" to whichever offered hub is not the primary.
    hook.handler = (body, _req, res) => {
      const hub = body.deviceRuntimeContext.payload.region === 'b' ? body.linkedHubs.find((h: string) => h !== t.host) : t.host;
      json(res, 200, { iotHubHostName: hub, initialTwin: { tags: { region: body.deviceRuntimeContext.payload.region } }, payload: { hub } });
    };

    for (const [registrationId, transport] of [['multi-http', new Http()], ['multi-mqtt', new provisioningMqtt.Mqtt()]] as const) {
      const key = await enroll(registrationId);
      const result = await register(registrationId, key, { region: 'b' }, transport);
      assert.equal(result.assignedHub, second.host);
      assert.deepEqual(result.payload, { hub: second.host });
      const sent = hook.requests.at(-1)!.body;
      assert.deepEqual([...sent.linkedHubs].sort(), [t.host, second.host].sort());

      await assert.rejects(primary.get(registrationId), sdkError('DeviceNotFoundError'));
      const client = device.Client.fromConnectionString(`HostName=${second.host};DeviceId=${registrationId};SharedAccessKey=${key}`, deviceMqtt.Mqtt as any);
      await client.open();
      await client.close();
      assert.deepEqual((await other.getTwin(registrationId)).responseBody.tags, { region: 'b' });
      const { responseBody: state } = await service.getDeviceRegistrationState(registrationId);
      assert.equal(state.assignedHub, second.host);
    }

    // The enrollment offers only the primary hub: choosing the second one fails, nothing is created anywhere.
    hook.handler = (_b, _q, res) => json(res, 200, { iotHubHostName: second.host });
    const key = await enroll('multi-limited', { iotHubs: [t.host] });
    await assert.rejects(register('multi-limited', key, { region: 'b' }, new Http()), (e: any) => {
      assert.equal(e.result?.registrationState?.errorCode, 400207);
      assert.match(e.result.registrationState.errorMessage, /not one of the linked hubs offered/);
      return true;
    });
    assert.deepEqual(hook.requests.at(-1)!.body.linkedHubs, [t.host]);
    await assert.rejects(primary.get('multi-limited'), sdkError('DeviceNotFoundError'));
    await assert.rejects(other.get('multi-limited'), sdkError('DeviceNotFoundError'));
  });

  test('re-registration: the webhook is called with the current hub; it may move the device (data migrated, its initialTwin ignored) unless the policy pins it', async () => {
    const service = ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
    const primary = iothub.Registry.fromConnectionString(await t.connectionString());
    const other = iothub.Registry.fromConnectionString(await second.connectionString());
    const idScope = (await t.hub.info()).dps!.idScope;
    const enroll = async (registrationId: string, reprovisionPolicy: unknown) => {
      await service.createOrUpdateIndividualEnrollment({
        registrationId,
        attestation: { type: 'symmetricKey' },
        allocationPolicy: 'custom',
        reprovisionPolicy,
        customAllocationDefinition: { webhookUrl: hook.url, apiVersion: '2021-10-01' },
      } as any);
      return (await service.getIndividualEnrollmentAttestationMechanism(registrationId)).responseBody.symmetricKey!.primaryKey;
    };
    const register = (registrationId: string, key: string) =>
      ProvisioningDeviceClient.create(t.host, idScope, new Http(), new SymmetricKeySecurityClient(registrationId, key) as any).register() as Promise<any>;
    let target = second.host;
    hook.handler = (body, _req, res) =>
      json(res, 200, { iotHubHostName: body.linkedHubs.includes(target) ? target : body.linkedHubs[0], initialTwin: { tags: { by: 'webhook' } }, payload: { offered: body.linkedHubs } });

    // Pinned: the webhook is still called (for a new payload) but offered only the current hub.
    const pinnedKey = await enroll('multi-pinned', { updateHubAssignment: false, migrateDeviceData: true });
    assert.equal((await register('multi-pinned', pinnedKey)).assignedHub, second.host);
    target = t.host;
    const pinned = await register('multi-pinned', pinnedKey);
    assert.equal(pinned.assignedHub, second.host);
    assert.deepEqual(pinned.payload, { offered: [second.host] });
    const ctx = hook.requests.at(-1)!.body.deviceRuntimeContext;
    assert.equal(ctx.currentIotHubHostName, second.host);
    assert.equal(ctx.currentDeviceId, 'multi-pinned');
    await assert.rejects(primary.get('multi-pinned'), sdkError('DeviceNotFoundError'));

    // Free to move, data migrated: the webhook moves it to the primary hub; the twin comes along, the webhook's initialTwin does not apply.
    target = second.host;
    const movingKey = await enroll('multi-moving', { updateHubAssignment: true, migrateDeviceData: true });
    assert.equal((await register('multi-moving', movingKey)).assignedHub, second.host);
    await other.updateTwin('multi-moving', { tags: { by: 'operator' } }, '*');
    target = t.host;
    const moved = await register('multi-moving', movingKey);
    assert.equal(moved.assignedHub, t.host);
    assert.equal(moved.substatus, 'deviceDataMigrated');
    assert.deepEqual(moved.payload.offered.sort(), [t.host, second.host].sort());
    assert.deepEqual((await primary.getTwin('multi-moving')).responseBody.tags, { by: 'operator' });
    await assert.rejects(other.get('multi-moving'), sdkError('DeviceNotFoundError'));
  });
});
