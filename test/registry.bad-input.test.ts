import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSasToken } from '../src/core/sas.js';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';

const API = 'api-version=2021-04-12';

/** Every error must look like IoT Hub's: status, iothub-errorcode header, ErrorCode:<code>;… body. */
function assertHubError(res: Awaited<ReturnType<typeof rawRequest>>, status: number, code: string) {
  assert.equal(res.status, status, res.text);
  assert.equal(res.headers['iothub-errorcode'], code);
  assert.match(res.json?.Message ?? '', new RegExp(`^ErrorCode:${code};.+`));
  assert.match(res.json?.ExceptionMessage ?? '', /^Tracking ID:[0-9a-f]{32}-G:0-TimeStamp:/);
}

describe('bad input over raw HTTPS gets IoT Hub errors and changes nothing', () => {
  let t: TestHub;
  let auth: string;
  const json = (body: string | Buffer, extra: Record<string, string> = {}) => ({
    body,
    headers: { authorization: auth, 'content-type': 'application/json; charset=utf-8', ...extra },
  });
  const snapshot = async () => JSON.stringify(await t.hub.store.devices.list(1000));

  before(async () => {
    t = await startTestHub();
    auth = await serviceToken(t);
    const res = await rawRequest(t.host, 'PUT', `/devices/existing?${API}`, json('{"deviceId":"existing"}'));
    assert.equal(res.status, 200);
  });
  after(() => t.close());

  test('malformed JSON → 400 IotHubFormatError', async () => {
    const before = await snapshot();
    assertHubError(await rawRequest(t.host, 'PUT', `/devices/d1?${API}`, json('{"deviceId": "d1",')), 400, 'IotHubFormatError');
    assertHubError(await rawRequest(t.host, 'POST', `/devices?${API}`, json('[{"id":')), 400, 'IotHubFormatError');
    assert.equal(await snapshot(), before);
  });

  test('invalid device and module ids → 400 ArgumentInvalid', async () => {
    const before = await snapshot();
    for (const id of ['has space', 'a'.repeat(129), 'slash%2Fid', 'ünïcode', 'tab%09']) {
      const res = await rawRequest(t.host, 'PUT', `/devices/${encodeURIComponent(id).replace(/%25/g, '%')}?${API}`, json('{}'));
      assertHubError(res, 400, 'ArgumentInvalid');
    }
    assertHubError(await rawRequest(t.host, 'PUT', `/devices/existing/modules/bad%20module?${API}`, json('{}')), 400, 'ArgumentInvalid');
    assert.equal(await snapshot(), before);
  });

  test('ids with every allowed special character are accepted', async () => {
    const id = "a-:.+%_#*?!(),=@;$'z";
    const res = await rawRequest(t.host, 'PUT', `/devices/${encodeURIComponent(id)}?${API}`, json(JSON.stringify({ deviceId: id })));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.deviceId, id);
    assert.equal((await rawRequest(t.host, 'DELETE', `/devices/${encodeURIComponent(id)}?${API}`, json(''))).status, 204);
    const longest = '%'.repeat(128);
    const long = await rawRequest(t.host, 'PUT', `/devices/${encodeURIComponent(longest)}?${API}`, json('{}'));
    assert.equal(long.status, 200, long.text);
    assert.equal(long.json.deviceId, longest);
  });

  test('invalid fields → 400 ArgumentInvalid', async () => {
    const before = await snapshot();
    const bodies = [
      { deviceId: 'other-id' },
      { status: 'paused' },
      { authentication: { type: 'sas', symmetricKey: { primaryKey: 'not base64!', secondaryKey: '' } } },
      { authentication: { type: 'sas', symmetricKey: { primaryKey: Buffer.alloc(8).toString('base64') } } },
      { authentication: { type: 'sas', symmetricKey: { primaryKey: Buffer.alloc(65).toString('base64') } } },
      { authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: 'abc' } } },
      { authentication: { type: 'selfSigned' } },
      { authentication: { type: 'password' } },
      { authentication: { type: 'none' } },
      { capabilities: { iotEdge: 'yes' } },
      { deviceScope: 'ms-azure-iot-edge://missing-1234' },
      [1, 2, 3],
    ];
    for (const body of bodies) {
      assertHubError(await rawRequest(t.host, 'PUT', `/devices/new-device?${API}`, json(JSON.stringify(body))), 400, 'ArgumentInvalid');
    }
    assert.equal(await snapshot(), before);
  });

  test('unknown fields are ignored, as IoT Hub does', async () => {
    const res = await rawRequest(t.host, 'PUT', `/devices/with-extra?${API}`, json('{"deviceId":"with-extra","favouriteColour":"green"}'));
    assert.equal(res.status, 200);
    assert.equal(res.json.favouriteColour, undefined);
  });

  test('oversize body → 413 MessageTooLarge', async () => {
    const before = await snapshot();
    const big = JSON.stringify({ deviceId: 'big', statusReason: 'x'.repeat(300 * 1024) });
    assertHubError(await rawRequest(t.host, 'PUT', `/devices/big?${API}`, json(big)), 413, 'MessageTooLarge');
    assert.equal(await snapshot(), before);
  });

  test('bulk: too many, duplicated ids, bad mode → whole request refused', async () => {
    const before = await snapshot();
    const many = JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ id: `m${i}`, importMode: 'create' })));
    assertHubError(await rawRequest(t.host, 'POST', `/devices?${API}`, json(many)), 413, 'TooManyDevices');
    const dup = JSON.stringify([{ id: 'dup', importMode: 'create' }, { id: 'dup', importMode: 'create' }]);
    assertHubError(await rawRequest(t.host, 'POST', `/devices?${API}`, json(dup)), 400, 'DeviceDefinedMultipleTimes');
    const mode = JSON.stringify([{ id: 'ok1', importMode: 'create' }, { id: 'ok2', importMode: 'explode' }]);
    assertHubError(await rawRequest(t.host, 'POST', `/devices?${API}`, json(mode)), 400, 'ArgumentInvalid');
    assertHubError(await rawRequest(t.host, 'POST', `/devices?${API}`, json('[]')), 400, 'ArgumentInvalid');
    assert.equal(await snapshot(), before);
  });

  test('etag preconditions: stale If-Match → 412 PreconditionFailed, device unchanged', async () => {
    const created = await rawRequest(t.host, 'PUT', `/devices/cas?${API}`, json('{"deviceId":"cas"}'));
    assert.equal(created.headers.etag, `"${created.json.etag}"`);
    const updated = await rawRequest(t.host, 'PUT', `/devices/cas?${API}`, json('{"deviceId":"cas","status":"disabled"}', { 'if-match': created.headers.etag as string }));
    assert.equal(updated.status, 200);
    const stale = await rawRequest(t.host, 'PUT', `/devices/cas?${API}`, json('{"deviceId":"cas"}', { 'if-match': created.headers.etag as string }));
    assertHubError(stale, 412, 'PreconditionFailed');
    assertHubError(await rawRequest(t.host, 'DELETE', `/devices/cas?${API}`, json('', { 'if-match': created.headers.etag as string })), 412, 'PreconditionFailed');
    const now = await rawRequest(t.host, 'GET', `/devices/cas?${API}`, json(''));
    assert.equal(now.json.status, 'disabled');
    assert.equal((await rawRequest(t.host, 'DELETE', `/devices/cas?${API}`, json('', { 'if-match': now.headers.etag as string }))).status, 204);
    assertHubError(await rawRequest(t.host, 'PUT', `/devices/cas?${API}`, json('{}', { 'if-match': '*' })), 404, 'DeviceNotFound');
  });

  test('missing, malformed, expired, foreign or device tokens → 401 IotHubUnauthorizedAccess', async () => {
    const before = await snapshot();
    const policy = (await t.hub.store.policies.get('iothubowner'))!;
    const device = (await t.hub.store.devices.get('existing'))!;
    const now = Math.floor(Date.now() / 1000);
    const tokens: (string | undefined)[] = [
      undefined,
      'Bearer abc',
      'SharedAccessSignature sr=x',
      createSasToken(t.host, policy.primaryKey, now - 1, 'iothubowner'),
      createSasToken('other.azure-devices.net', policy.primaryKey, now + 600, 'iothubowner'),
      createSasToken(t.host, policy.primaryKey, now + 600, 'nosuchpolicy'),
      createSasToken(`${t.host}/devices/existing`, device.authentication.symmetricKey.primaryKey!, now + 600),
    ];
    for (const authorization of tokens) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization) headers.authorization = authorization;
      assertHubError(await rawRequest(t.host, 'PUT', `/devices/intruder?${API}`, { body: '{}', headers }), 401, 'IotHubUnauthorizedAccess');
    }
    assert.equal(await snapshot(), before);
  });

  test('a token scoped to one device cannot reach another', async () => {
    const policy = (await t.hub.store.policies.get('iothubowner'))!;
    const scoped = createSasToken(`${t.host}/devices/existing`, policy.primaryKey, Math.floor(Date.now() / 1000) + 600, 'iothubowner');
    assert.equal((await rawRequest(t.host, 'GET', `/devices/existing?${API}`, { headers: { authorization: scoped } })).status, 200);
    assertHubError(await rawRequest(t.host, 'GET', `/devices/with-extra?${API}`, { headers: { authorization: scoped } }), 401, 'IotHubUnauthorizedAccess');
  });

  test('missing api-version → 400 InvalidProtocolVersion; unknown path → 404', async () => {
    assertHubError(await rawRequest(t.host, 'GET', '/devices/existing', { headers: { authorization: auth } }), 400, 'InvalidProtocolVersion');
    assertHubError(await rawRequest(t.host, 'GET', `/nothing-here?${API}`, { headers: { authorization: auth } }), 404, 'NotFound');
  });
});
