import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSasToken } from '../src/core/sas.js';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';
import { issue, rootCa, tpmEndorsementKey } from './support/certs.js';
import { API, dpsConnectionString, dpsRequest, dpsToken } from './support/dps.js';

/** DPS's error body: numeric errorCode (status + detail), trackingId, message, timestampUtc. */
function assertDpsError(res: { status: number; json: any }, status: number, code?: number): void {
  assert.equal(res.status, status, JSON.stringify(res.json));
  assert.equal(typeof res.json?.errorCode, 'number');
  assert.equal(Math.floor(res.json.errorCode / 1000), status);
  if (code !== undefined) assert.equal(res.json.errorCode, code);
  assert.equal(typeof res.json.trackingId, 'string');
  assert.equal(typeof res.json.message, 'string');
  assert.ok(Date.parse(res.json.timestampUtc) > 0);
  assert.equal(res.json.Message, undefined, 'not the IoT Hub error shape');
}

const symmetric = { attestation: { type: 'symmetricKey' } };

describe('DPS over raw HTTPS: bad input gets DPS errors and changes nothing', () => {
  let t: TestHub;
  let ca: Awaited<ReturnType<typeof rootCa>>;
  before(async () => {
    t = await startTestHub();
    ca = await rootCa('http-test-ca');
  });
  after(() => t.close());

  const absent = async (path: string) => assertDpsError(await dpsRequest(t, 'GET', path), 404);

  test('an invalid certificate is refused and nothing is stored', async () => {
    const notPem = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----';
    for (const certificate of [notPem, 'not base64 at all!', '']) {
      const res = await dpsRequest(t, 'PUT', '/enrollments/bad-cert', {
        registrationId: 'bad-cert',
        attestation: { type: 'x509', x509: { clientCertificates: { primary: { certificate } } } },
      });
      assertDpsError(res, 400, 400004);
    }
    await absent('/enrollments/bad-cert');
    const group = await dpsRequest(t, 'PUT', '/enrollmentGroups/bad-group', {
      enrollmentGroupId: 'bad-group',
      attestation: { type: 'x509', x509: { signingCertificates: { primary: { certificate: notPem } } } },
    });
    assertDpsError(group, 400, 400004);
    await absent('/enrollmentGroups/bad-group');
  });

  test('a TPM enrollment group is refused; a malformed TPM key is refused', async () => {
    const res = await dpsRequest(t, 'PUT', '/enrollmentGroups/tpm-group', {
      enrollmentGroupId: 'tpm-group',
      attestation: { type: 'tpm', tpm: { endorsementKey: tpmEndorsementKey() } },
    });
    assertDpsError(res, 400, 400004);
    assert.match(res.json.message, /tpm/i);
    await absent('/enrollmentGroups/tpm-group');

    const truncated = Buffer.from(tpmEndorsementKey(), 'base64').subarray(0, 100).toString('base64');
    for (const endorsementKey of [truncated, Buffer.from('hello').toString('base64')]) {
      assertDpsError(await dpsRequest(t, 'PUT', '/enrollments/bad-tpm', { attestation: { type: 'tpm', tpm: { endorsementKey } } }), 400, 400004);
    }
    await absent('/enrollments/bad-tpm');
  });

  test('registration ids outside DPS rules, unknown hubs and bad policies are refused', async () => {
    for (const id of ['UPPER', 'has space', 'x'.repeat(129), 'slash%2Fin']) {
      assertDpsError(await dpsRequest(t, 'PUT', `/enrollments/${encodeURIComponent(id)}`, symmetric), 400, 400004);
    }
    const res = await dpsRequest(t, 'PUT', '/enrollments/unknown-hub', { ...symmetric, iotHubs: ['elsewhere.azure-devices.net'] });
    assertDpsError(res, 400, 400004);
    assert.match(res.json.message, /elsewhere\.azure-devices\.net/);
    await absent('/enrollments/unknown-hub');
    assertDpsError(await dpsRequest(t, 'PUT', '/enrollments/bad-policy', { ...symmetric, allocationPolicy: 'random' }), 400, 400004);
    assertDpsError(await dpsRequest(t, 'PUT', '/enrollments/bad-static', { ...symmetric, allocationPolicy: 'static' }), 400, 400004);
    assertDpsError(await dpsRequest(t, 'PUT', '/enrollments/bad-custom', { ...symmetric, allocationPolicy: 'custom' }), 400, 400004);
    assertDpsError(await dpsRequest(t, 'PUT', '/enrollments/mismatch', { ...symmetric, registrationId: 'other' }), 400, 400004);
    for (const id of ['bad-policy', 'bad-static', 'bad-custom', 'mismatch', 'other']) await absent(`/enrollments/${id}`);

    const custom = await dpsRequest(t, 'PUT', '/enrollments/good-custom', {
      ...symmetric,
      allocationPolicy: 'custom',
      customAllocationDefinition: { webhookUrl: 'https://localhost:7071/api/allocate', apiVersion: '2021-10-01' },
    });
    assert.equal(custom.status, 200);
    assert.deepEqual(custom.json.customAllocationDefinition, { webhookUrl: 'https://localhost:7071/api/allocate', apiVersion: '2021-10-01' });
  });

  test('malformed JSON and a wrong bulk mode get DPS errors', async () => {
    assertDpsError(await dpsRequest(t, 'PUT', '/enrollments/bad-json', '{"attestation": {'), 400, 400001);
    await absent('/enrollments/bad-json');
    const wrongMode = await dpsRequest(t, 'POST', '/enrollments', { mode: 'upsert', enrollments: [{ registrationId: 'bulk-wrong', ...symmetric }] });
    assertDpsError(wrongMode, 400, 400004);
    await absent('/enrollments/bulk-wrong');
    assertDpsError(await dpsRequest(t, 'POST', '/enrollments', '[1,'), 400, 400001);
    assertDpsError(await dpsRequest(t, 'POST', '/enrollments/query', { query: 'SELECT * FROM enrollments WHERE x = 1' }), 400, 400004);
    assertDpsError(await dpsRequest(t, 'POST', '/enrollments/query', { query: 'SELECT * FROM enrollments' }, { 'x-ms-continuation': 'garbage' }), 400);
  });

  test('missing, wrong and hub SAS tokens get 401 with DPS errors and change nothing', async () => {
    const body = JSON.stringify({ registrationId: 'no-auth', ...symmetric });
    const headers = { 'content-type': 'application/json' };
    const path = `/enrollments/no-auth?${API}`;
    assertDpsError(await rawRequest(t.host, 'PUT', path, { body, headers }), 401, 401002);
    const wrongKey = await dpsToken(t, Buffer.alloc(32, 9).toString('base64'));
    assertDpsError(await rawRequest(t.host, 'PUT', path, { body, headers: { ...headers, authorization: wrongKey } }), 401, 401002);
    // The hub's owner policy does not open the provisioning service.
    const hubToken = await serviceToken(t);
    assertDpsError(await rawRequest(t.host, 'PUT', path, { body, headers: { ...headers, authorization: hubToken } }), 401, 401002);
    const key = /SharedAccessKey=([^;]+)/.exec(await dpsConnectionString(t))![1]!;
    const wrongAudience = createSasToken('elsewhere.example', key, Math.floor(Date.now() / 1000) + 60, 'provisioningserviceowner');
    assertDpsError(await rawRequest(t.host, 'PUT', path, { body, headers: { ...headers, authorization: wrongAudience } }), 401, 401002);
    const expired = createSasToken(t.host, key, Math.floor(Date.now() / 1000) - 60, 'provisioningserviceowner');
    assertDpsError(await rawRequest(t.host, 'PUT', path, { body, headers: { ...headers, authorization: expired } }), 401, 401002);
    await absent('/enrollments/no-auth');
    // No api-version.
    assertDpsError(await rawRequest(t.host, 'GET', '/enrollments/no-auth', { headers: { authorization: await dpsToken(t) } }), 400);
  });

  test('read-only policies read but do not write', async () => {
    const policy = (await import('../src/store/sqlite/dps.js')).openSqliteDpsStore(t.hub.store.db).policies;
    const read = (await policy.get('enrollmentread'))!;
    const token = createSasToken(t.host, read.primaryKey, Math.floor(Date.now() / 1000) + 60, 'enrollmentread');
    const body = JSON.stringify({ registrationId: 'readonly', ...symmetric });
    const put = await rawRequest(t.host, 'PUT', `/enrollments/readonly?${API}`, { body, headers: { 'content-type': 'application/json', authorization: token } });
    assertDpsError(put, 401, 401002);
    assert.equal((await dpsRequest(t, 'PUT', '/enrollments/readonly', symmetric)).status, 200);
    const get = await rawRequest(t.host, 'GET', `/enrollments/readonly?${API}`, { headers: { authorization: token } });
    assert.equal(get.status, 200);
    assert.equal(get.json.registrationId, 'readonly');
  });

  test('CA certificates: upload, verification code, proof of possession, list, delete', async () => {
    const base = '/fleethub/dps/certificates';
    const up = await dpsRequest(t, 'PUT', `${base}/root-1`, { certificate: ca.pem });
    assert.equal(up.status, 200);
    assert.equal(up.json.name, 'root-1');
    assert.equal(up.json.properties.isVerified, false);
    assert.equal(up.json.properties.subject, 'O=Fleethub Tests, CN=http-test-ca');
    assert.match(up.json.properties.thumbprint, /^[0-9A-F]{40}$/);

    // A leaf is not a CA; garbage is not a certificate; a second upload without etag conflicts.
    const leaf = await issue(ca, 'not-a-ca');
    assertDpsError(await dpsRequest(t, 'PUT', `${base}/leaf`, { certificate: leaf.pem }), 400, 400004);
    assertDpsError(await dpsRequest(t, 'PUT', `${base}/junk`, { certificate: 'junk' }), 400, 400004);
    assertDpsError(await dpsRequest(t, 'PUT', `${base}/root-1`, { certificate: ca.pem }), 409);

    // verify before a code exists, with the wrong CN, or signed by another CA: refused.
    assertDpsError(await dpsRequest(t, 'POST', `${base}/root-1/verify`, { certificate: leaf.pem }), 400, 400004);
    const { json: coded } = await dpsRequest(t, 'POST', `${base}/root-1/generateVerificationCode`);
    const code = coded.properties.verificationCode as string;
    assert.match(code, /^[0-9A-F]{48}$/);
    assertDpsError(await dpsRequest(t, 'POST', `${base}/root-1/verify`, { certificate: (await issue(ca, 'wrong-cn')).pem }), 400, 400004);
    const other = await rootCa('someone-else');
    assertDpsError(await dpsRequest(t, 'POST', `${base}/root-1/verify`, { certificate: (await issue(other, code)).pem }), 400, 400004);
    assert.equal((await dpsRequest(t, 'GET', `${base}/root-1`)).json.properties.isVerified, false);

    const ok = await dpsRequest(t, 'POST', `${base}/root-1/verify`, { certificate: (await issue(ca, code)).base64 });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.properties.isVerified, true);
    assert.equal(ok.json.properties.verificationCode, undefined);

    const list = await dpsRequest(t, 'GET', base);
    assert.deepEqual(list.json.value.map((c: any) => [c.name, c.properties.isVerified]), [['root-1', true]]);
    assertDpsError(await dpsRequest(t, 'DELETE', `${base}/root-1`, undefined, { 'if-match': '"stale"' }), 412);
    assert.equal((await dpsRequest(t, 'DELETE', `${base}/root-1`)).status, 204);
    assertDpsError(await dpsRequest(t, 'GET', `${base}/root-1`), 404, 404204);
    // The admin API needs the DPS's ServiceConfig right.
    assertDpsError(await rawRequest(t.host, 'GET', `${base}?${API}`, { headers: { authorization: await serviceToken(t) } }), 401);
  });

  test('info reports the id scope and connection string; the id scope survives a restart', async () => {
    const { dps } = await t.hub.info();
    assert.match(dps!.idScope, /^0ne[0-9A-F]{8}$/);
    assert.equal(dps!.deviceEndpoint, t.host);
    assert.match(dps!.serviceConnectionString, new RegExp(`^HostName=${t.host.replace(/\./g, '\\.')};SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=`));
    assert.equal((await dpsRequest(t, 'PUT', '/enrollments/survivor', symmetric)).status, 200);
    await t.restart();
    assert.equal((await t.hub.info()).dps!.idScope, dps!.idScope);
    assert.equal((await t.hub.info()).dps!.serviceConnectionString, dps!.serviceConnectionString);
    assert.equal((await dpsRequest(t, 'GET', '/enrollments/survivor')).status, 200);
  });
});
