import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import provisioning from 'azure-iot-provisioning-service';
import { startTestHub, type TestHub } from './support/hub.js';
import { sdkError } from './support/sdk.js';
import { issue, rootCa, tpmEndorsementKey, type TestCertificate } from './support/certs.js';
import { dpsConnectionString, dpsRequest } from './support/dps.js';
import { openSqliteDpsStore } from '../src/store/sqlite/dps.js';

const { ProvisioningServiceClient } = provisioning;
type Client = InstanceType<typeof ProvisioningServiceClient>;

/** The SDK raises a bare Error('Not found') for DPS's 404s (it knows only IoT Hub's 404 codes). */
function notFound(e: any): true {
  assert.equal(e?.message, 'Not found', `expected the SDK's not-found error, got ${e?.name}: ${e?.message}`);
  assert.equal(e.response?.statusCode, 404);
  assert.match(JSON.parse(e.responseBody).errorCode.toString(), /^404\d{3}$/);
  return true;
}

/**
 * runBulkEnrollmentOperation only settles its promise when given a callback (the SDK calls back
 * only `if (callback)`), so the tests use the callback form, as applications must.
 */
function bulk(client: Client, operation: any): Promise<any> {
  return new Promise((resolve, reject) =>
    client.runBulkEnrollmentOperation(operation, (err, result) => (err ? reject(err) : resolve(result))),
  );
}

const symmetric = (registrationId: string, extra: Record<string, unknown> = {}): any => ({
  registrationId,
  attestation: { type: 'symmetricKey' },
  ...extra,
});

describe('DPS enrollments through the unmodified azure-iot-provisioning-service client', () => {
  let t: TestHub;
  let client: Client;
  let root: TestCertificate;

  before(async () => {
    t = await startTestHub();
    client = ProvisioningServiceClient.fromConnectionString(await dpsConnectionString(t));
    root = await rootCa('fleethub-test-root');
  });
  after(() => t.close());

  test('a symmetric-key enrollment gets generated keys, readable only through the attestation mechanism', async () => {
    const { responseBody: e } = await client.createOrUpdateIndividualEnrollment({
      ...symmetric('sym-device-1'),
      deviceId: 'thermostat-1',
      initialTwin: { tags: { floor: 3 }, properties: { desired: { interval: 30 } } },
      capabilities: { iotEdge: true },
    } as any);
    assert.equal(e.registrationId, 'sym-device-1');
    assert.equal(e.deviceId, 'thermostat-1');
    assert.equal(e.provisioningStatus, 'enabled');
    assert.deepEqual(e.capabilities, { iotEdge: true });
    assert.deepEqual(e.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: true });
    assert.deepEqual(e.initialTwin, { tags: { floor: 3 }, properties: { desired: { interval: 30 } } } as any);
    assert.ok(e.etag);
    assert.ok(Date.parse(e.createdDateTimeUtc) > 0);
    assert.equal(e.attestation.symmetricKey?.primaryKey, null, 'keys are not echoed');

    const { responseBody: a } = await client.getIndividualEnrollmentAttestationMechanism('sym-device-1');
    assert.equal(a.type, 'symmetricKey');
    assert.equal(Buffer.from(a.symmetricKey!.primaryKey, 'base64').length, 64);
    assert.notEqual(a.symmetricKey!.primaryKey, a.symmetricKey!.secondaryKey);

    const { responseBody: got } = await client.getIndividualEnrollment('sym-device-1');
    assert.deepEqual(got, e);
  });

  test('given symmetric keys are kept', async () => {
    const primaryKey = Buffer.alloc(32, 7).toString('base64');
    const secondaryKey = Buffer.alloc(32, 8).toString('base64');
    await client.createOrUpdateIndividualEnrollment({ registrationId: 'given-keys', attestation: { type: 'symmetricKey', symmetricKey: { primaryKey, secondaryKey } } } as any);
    const { responseBody: a } = await client.getIndividualEnrollmentAttestationMechanism('given-keys');
    assert.deepEqual(a.symmetricKey, { primaryKey, secondaryKey });
  });

  test('update is get, modify, write back with the etag; a stale etag raises InvalidEtagError', async () => {
    const { responseBody: created } = await client.createOrUpdateIndividualEnrollment(symmetric('updatable'));
    const { responseBody: keysBefore } = await client.getIndividualEnrollmentAttestationMechanism('updatable');
    const { responseBody: current } = await client.getIndividualEnrollment('updatable');
    current.provisioningStatus = 'disabled';
    const { responseBody: updated } = await client.createOrUpdateIndividualEnrollment(current);
    assert.equal(updated.provisioningStatus, 'disabled');
    assert.notEqual(updated.etag, created.etag);
    assert.equal(updated.createdDateTimeUtc, created.createdDateTimeUtc);
    const { responseBody: keysAfter } = await client.getIndividualEnrollmentAttestationMechanism('updatable');
    assert.deepEqual(keysAfter, keysBefore, 'writing back the masked enrollment keeps its keys');

    await assert.rejects(client.createOrUpdateIndividualEnrollment({ ...current, provisioningStatus: 'enabled' }), sdkError('InvalidEtagError'));
    await assert.rejects(client.deleteIndividualEnrollment('updatable', created.etag), sdkError('InvalidEtagError'));
    assert.equal((await client.getIndividualEnrollment('updatable')).responseBody.provisioningStatus, 'disabled');

    await client.deleteIndividualEnrollment(updated);
    await assert.rejects(client.getIndividualEnrollment('updatable'), notFound);
  });

  test('delete without an etag; deleting or reading a missing enrollment is not found', async () => {
    await client.createOrUpdateIndividualEnrollment(symmetric('short-lived'));
    await client.deleteIndividualEnrollment('short-lived');
    await assert.rejects(client.getIndividualEnrollment('short-lived'), notFound);
    await assert.rejects(client.deleteIndividualEnrollment('short-lived'), notFound);
    await assert.rejects(client.getIndividualEnrollmentAttestationMechanism('never-was'), notFound);
  });

  test('creating an existing id without an etag conflicts and changes nothing', async () => {
    const { responseBody: first } = await client.createOrUpdateIndividualEnrollment(symmetric('twice'));
    await assert.rejects(client.createOrUpdateIndividualEnrollment(symmetric('twice', { provisioningStatus: 'disabled' })), (e: any) => {
      assert.equal(e.response?.statusCode, 409);
      return true;
    });
    assert.deepEqual((await client.getIndividualEnrollment('twice')).responseBody, first);
  });

  test('a TPM enrollment keeps its endorsement and storage root keys', async () => {
    const endorsementKey = tpmEndorsementKey();
    const storageRootKey = tpmEndorsementKey();
    const { responseBody: e } = await client.createOrUpdateIndividualEnrollment({
      registrationId: 'tpm-device',
      attestation: { type: 'tpm', tpm: { endorsementKey, storageRootKey } },
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
    } as any);
    assert.equal(e.attestation.type, 'tpm');
    assert.deepEqual(e.attestation.tpm, { endorsementKey, storageRootKey });
    assert.deepEqual(e.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: false });
    const { responseBody: a } = await client.getIndividualEnrollmentAttestationMechanism('tpm-device');
    assert.equal(a.tpm!.endorsementKey, endorsementKey);
  });

  test('an individual X.509 enrollment returns the certificate info, not the certificate', async () => {
    const leaf = await issue(root, 'x509-device');
    const { responseBody: e } = await client.createOrUpdateIndividualEnrollment({
      registrationId: 'x509-device',
      attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate: leaf.pem }, secondary: { certificate: leaf.base64 } } } },
    } as any);
    const primary = e.attestation.x509!.clientCertificates!.primary;
    assert.equal(primary.certificate, undefined);
    const node = new X509Certificate(leaf.pem);
    assert.equal(primary.info!.subjectName, 'CN=x509-device');
    assert.equal(primary.info!.issuerName, 'O=Fleethub Tests, CN=fleethub-test-root');
    assert.equal(primary.info!.sha1Thumbprint, node.fingerprint.replace(/:/g, ''));
    assert.equal(primary.info!.sha256Thumbprint, node.fingerprint256.replace(/:/g, ''));
    assert.equal(primary.info!.serialNumber, node.serialNumber.toUpperCase());
    assert.equal(primary.info!.version, 3);
    assert.equal(new Date(primary.info!.notAfterUtc).getTime(), new Date(node.validTo).getTime());
    assert.deepEqual(e.attestation.x509!.clientCertificates!.secondary!.info, primary.info);
  });

  test('enrollment groups from a root and from an intermediate certificate, and a symmetric-key group', async () => {
    const intermediate = await issue(root, 'fleethub-test-intermediate', true);
    const { responseBody: fromRoot } = await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'root-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: root.pem } } } },
      provisioningStatus: 'enabled',
      allocationPolicy: 'hashed',
      iotHubs: [t.host],
    } as any);
    assert.equal(fromRoot.attestation.x509!.signingCertificates!.primary.info!.subjectName, 'O=Fleethub Tests, CN=fleethub-test-root');
    assert.equal(fromRoot.attestation.x509!.signingCertificates!.primary.certificate, undefined);
    assert.deepEqual(fromRoot.iotHubs, [t.host]);
    assert.equal(fromRoot.allocationPolicy, 'hashed');

    const { responseBody: fromIntermediate } = await client.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: 'intermediate-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: intermediate.pem } } } },
      provisioningStatus: 'enabled',
      allocationPolicy: 'static',
      iotHubHostName: t.host,
    } as any);
    const info = fromIntermediate.attestation.x509!.signingCertificates!.primary.info!;
    assert.equal(info.subjectName, 'CN=fleethub-test-intermediate');
    assert.equal(info.issuerName, 'O=Fleethub Tests, CN=fleethub-test-root');

    await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'sym-group', attestation: { type: 'symmetricKey' }, provisioningStatus: 'enabled' } as any);
    const { responseBody: a } = await client.getEnrollmentGroupAttestationMechanism('sym-group');
    assert.equal(Buffer.from(a.symmetricKey!.primaryKey, 'base64').length, 64);

    const { responseBody: got } = await client.getEnrollmentGroup('root-group');
    assert.deepEqual(got, fromRoot);
    got.provisioningStatus = 'disabled';
    const { responseBody: updated } = await client.createOrUpdateEnrollmentGroup(got);
    assert.equal(updated.provisioningStatus, 'disabled');
    await assert.rejects(client.createOrUpdateEnrollmentGroup({ ...got, provisioningStatus: 'enabled' }), sdkError('InvalidEtagError'));
    await assert.rejects(client.deleteEnrollmentGroup('root-group', fromRoot.etag!), sdkError('InvalidEtagError'));
    await client.deleteEnrollmentGroup('root-group', updated.etag!);
    await assert.rejects(client.getEnrollmentGroup('root-group'), notFound);
    await client.deleteEnrollmentGroup('sym-group');
    await assert.rejects(client.getEnrollmentGroupAttestationMechanism('sym-group'), notFound);
  });

  test('a group may reference a verified CA certificate instead of carrying one', async () => {
    const ca = await rootCa('verified-ca');
    const group = {
      enrollmentGroupId: 'ca-group',
      attestation: { type: 'x509', x509: { caReferences: { primary: 'my-ca' } } },
      provisioningStatus: 'enabled',
    } as any;
    // Not uploaded yet, then uploaded but unverified: refused.
    await assert.rejects(client.createOrUpdateEnrollmentGroup(group), sdkError('ArgumentError'));
    assert.equal((await dpsRequest(t, 'PUT', '/fleethub/dps/certificates/my-ca', { certificate: ca.pem })).status, 200);
    await assert.rejects(client.createOrUpdateEnrollmentGroup(group), sdkError('ArgumentError'));
    const { json: withCode } = await dpsRequest(t, 'POST', '/fleethub/dps/certificates/my-ca/generateVerificationCode');
    const proof = await issue(ca, withCode.properties.verificationCode);
    const verified = await dpsRequest(t, 'POST', '/fleethub/dps/certificates/my-ca/verify', { certificate: proof.pem });
    assert.equal(verified.json.properties.isVerified, true);

    const { responseBody: g } = await client.createOrUpdateEnrollmentGroup(group);
    assert.deepEqual(g.attestation.x509!.caReferences, { primary: 'my-ca' });
    // A referenced CA cannot be deleted from under the group.
    assert.equal((await dpsRequest(t, 'DELETE', '/fleethub/dps/certificates/my-ca')).status, 409);
  });

  test('bulk create with mixed success applies only the good items', async () => {
    await client.createOrUpdateIndividualEnrollment(symmetric('bulk-existing'));
    const result = (await bulk(client, {
      mode: 'create',
      enrollments: [symmetric('bulk-1'), symmetric('bulk-existing', { provisioningStatus: 'disabled' }), symmetric('Bad_Id'), symmetric('bulk-2')],
    })) as any;
    assert.equal(result.isSuccessful, false);
    const byId = Object.fromEntries(result.errors.map((e: any) => [e.registrationId, e]));
    assert.deepEqual(Object.keys(byId).sort(), ['Bad_Id', 'bulk-existing']);
    assert.equal(byId['bulk-existing'].errorCode, 409201);
    assert.equal(byId['Bad_Id'].errorCode, 400004);
    assert.equal(typeof byId['Bad_Id'].errorStatus, 'string');
    await client.getIndividualEnrollment('bulk-1');
    await client.getIndividualEnrollment('bulk-2');
    assert.equal((await client.getIndividualEnrollment('bulk-existing')).responseBody.provisioningStatus, 'enabled');
    await assert.rejects(client.getIndividualEnrollment('Bad_Id'), (e: any) => e.response.statusCode === 404);
  });

  test('bulk update creates or replaces; updateIfMatchETag fails only the stale item', async () => {
    const created = (await bulk(client, { mode: 'create', enrollments: [symmetric('etag-a'), symmetric('etag-b')] })) as any;
    assert.deepEqual(created, { isSuccessful: true, errors: [] });
    const a = (await client.getIndividualEnrollment('etag-a')).responseBody;
    const b = (await client.getIndividualEnrollment('etag-b')).responseBody;

    const updated = (await bulk(client, {
      mode: 'update',
      enrollments: [{ ...a, etag: undefined, deviceId: 'updated-a' } as any, symmetric('etag-c')],
    })) as any;
    assert.equal(updated.isSuccessful, true);
    assert.equal((await client.getIndividualEnrollment('etag-a')).responseBody.deviceId, 'updated-a');
    await client.getIndividualEnrollment('etag-c');

    // a's etag is stale now (the update changed it); b's is current.
    const conditional = (await bulk(client, {
      mode: 'updateIfMatchETag' as any,
      enrollments: [{ ...a, provisioningStatus: 'disabled' }, { ...b, provisioningStatus: 'disabled' }],
    })) as any;
    assert.equal(conditional.isSuccessful, false);
    assert.equal(conditional.errors.length, 1);
    assert.equal(conditional.errors[0].registrationId, 'etag-a');
    assert.equal(conditional.errors[0].errorCode, 412002);
    assert.equal((await client.getIndividualEnrollment('etag-a')).responseBody.provisioningStatus, 'enabled');
    assert.equal((await client.getIndividualEnrollment('etag-b')).responseBody.provisioningStatus, 'disabled');
  });

  test('bulk delete removes what exists and reports what does not', async () => {
    await bulk(client, { mode: 'create', enrollments: [symmetric('del-1'), symmetric('del-2')] });
    const result = (await bulk(client, {
      mode: 'delete',
      enrollments: [{ registrationId: 'del-1' }, { registrationId: 'del-missing' }, { registrationId: 'del-2' }] as any,
    })) as any;
    assert.equal(result.isSuccessful, false);
    assert.deepEqual(result.errors.map((e: any) => [e.registrationId, e.errorCode]), [['del-missing', 404201]]);
    await assert.rejects(client.getIndividualEnrollment('del-1'), notFound);
    await assert.rejects(client.getIndividualEnrollment('del-2'), notFound);
  });

  test('the query builders page through enrollments and groups', async () => {
    const ids = ['page-0', 'page-1', 'page-2', 'page-3', 'page-4'];
    await bulk(client, { mode: 'create', enrollments: ids.map((id) => symmetric(id)) });
    // Query.next() without arguments restarts from the first page in the promise form (it uses the
    // stored continuation token only when given a callback), so pass the token, as a caller must.
    const query = client.createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' }, 2);
    const seen: string[] = [];
    let pages = 0;
    while (query.hasMoreResults) {
      const { responseBody: result } = (await query.next(query.continuationToken as any)) as any;
      assert.ok(result.length <= 2);
      pages++;
      seen.push(...result.map((e: any) => e.registrationId));
      for (const e of result) assert.equal(e.attestation.symmetricKey?.primaryKey ?? null, null);
    }
    const all = (await client.createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' }).next()) as any;
    assert.deepEqual(seen, all.responseBody.map((e: any) => e.registrationId));
    assert.ok(pages >= Math.ceil(seen.length / 2));
    for (const id of ids) assert.ok(seen.includes(id));
    assert.equal(new Set(seen).size, seen.length, 'no enrollment appears twice');

    for (const id of ['qg-1', 'qg-2', 'qg-3']) {
      await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: id, attestation: { type: 'symmetricKey' }, provisioningStatus: 'enabled' } as any);
    }
    const groups = client.createEnrollmentGroupQuery({ query: 'SELECT * FROM enrollmentGroups' }, 1);
    const groupIds: string[] = [];
    while (groups.hasMoreResults) groupIds.push(...((await groups.next(groups.continuationToken as any)) as any).responseBody.map((g: any) => g.enrollmentGroupId));
    for (const id of ['qg-1', 'qg-2', 'qg-3']) assert.ok(groupIds.includes(id));
  });

  test('registration states are empty until devices register (part 2)', async () => {
    await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'reg-group', attestation: { type: 'symmetricKey' }, provisioningStatus: 'enabled' } as any);
    const q = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, 'reg-group', 10);
    const { responseBody: result } = (await q.next()) as any;
    assert.deepEqual(result, []);
    assert.equal(q.hasMoreResults, false);
    await assert.rejects(client.getDeviceRegistrationState('nobody'), notFound);
    await assert.rejects(client.deleteDeviceRegistrationState('nobody'), notFound);
    const none = (await client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, 'no-such-group').next()) as any;
    assert.deepEqual(none.responseBody, []);
  });

  test('registration records (as part 2 will write them) are read, paged and deleted through the SDK', async () => {
    // Devices cannot register yet (issue 7), so seed the records the registration flow will store.
    const registrations = openSqliteDpsStore(t.hub.store.db).registrations;
    await client.createOrUpdateEnrollmentGroup({ enrollmentGroupId: 'seeded-group', attestation: { type: 'symmetricKey' }, provisioningStatus: 'enabled' } as any);
    const now = new Date().toISOString();
    for (const id of ['seed-1', 'seed-2', 'seed-3']) {
      await registrations.put({
        enrollmentGroupId: 'seeded-group',
        state: { registrationId: id, deviceId: id, assignedHub: t.host, status: 'assigned', substatus: 'initialAssignment', createdDateTimeUtc: now, lastUpdatedDateTimeUtc: now, etag: `etag-${id}` },
      });
    }
    const { responseBody: state } = await client.getDeviceRegistrationState('seed-2');
    assert.equal(state.status, 'assigned');
    assert.equal(state.assignedHub, t.host);

    const q = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: 'SELECT * FROM enrollments' }, 'seeded-group', 2);
    const seen: string[] = [];
    while (q.hasMoreResults) seen.push(...((await q.next(q.continuationToken as any)) as any).responseBody.map((r: any) => r.registrationId));
    assert.deepEqual(seen, ['seed-1', 'seed-2', 'seed-3']);

    await assert.rejects(client.deleteDeviceRegistrationState('seed-2', 'stale'), sdkError('InvalidEtagError'));
    await client.getDeviceRegistrationState('seed-2');
    await client.deleteDeviceRegistrationState(state);
    await assert.rejects(client.getDeviceRegistrationState('seed-2'), notFound);
    await client.deleteDeviceRegistrationState('seed-3');
    await assert.rejects(client.getDeviceRegistrationState('seed-3'), notFound);

    // An individual enrollment shows its device's registration state.
    await client.createOrUpdateIndividualEnrollment(symmetric('seed-individual'));
    await registrations.put({ state: { registrationId: 'seed-individual', status: 'assigned', assignedHub: t.host, etag: 'e1' } });
    const { responseBody: e } = await client.getIndividualEnrollment('seed-individual');
    assert.equal(e.registrationState?.status, 'assigned');
  });
});
