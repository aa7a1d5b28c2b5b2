import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import iothub from 'azure-iothub';
import { rawRequest, serviceToken, startTestHub, type TestHub } from './support/hub.js';

const { Registry } = iothub;
const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));

describe('cloud-to-device queue: Fleethub admin route and `fleethub c2d send`', () => {
  let t: TestHub;
  let registry: iothub.Registry;
  let send: (deviceId: string, body: unknown, policy?: string) => ReturnType<typeof rawRequest>;

  before(async () => {
    t = await startTestHub();
    registry = Registry.fromConnectionString(await t.connectionString());
    send = async (deviceId, body, policy = 'iothubowner') =>
      rawRequest(t.host, 'POST', `/fleethub/devices/${encodeURIComponent(deviceId)}/messages/devicebound?api-version=2021-04-12`, {
        headers: { authorization: await serviceToken(t, policy), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
  });
  after(() => t.close());

  test('queues a message and keeps cloudToDeviceMessageCount in step', async () => {
    await registry.create({ deviceId: 'queued' });
    const etag = (await registry.get('queued')).responseBody.etag;
    const res = await send('queued', { body: 'hello', messageId: 'm-1', properties: { color: 'blue' }, ttlSeconds: 60 });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.messageId, 'm-1');
    assert.equal(res.json.queueDepth, 1);
    assert.ok(Date.parse(res.json.expiryTimeUtc) - Date.now() <= 60_000);
    const { responseBody: d } = await registry.get('queued');
    assert.equal(d.cloudToDeviceMessageCount, 1);
    assert.equal(d.etag, etag, 'queueing does not change the device etag');
  });

  test('the 51st message is refused with DeviceMaximumQueueDepthExceeded and not queued', async () => {
    await registry.create({ deviceId: 'full' });
    for (let i = 0; i < 50; i++) assert.equal((await send('full', { body: `m${i}` })).status, 201);
    const res = await send('full', { body: 'one too many' });
    assert.equal(res.status, 403);
    assert.equal(res.headers['iothub-errorcode'], 'DeviceMaximumQueueDepthExceeded');
    assert.match(res.json.Message, /^ErrorCode:DeviceMaximumQueueDepthExceeded;/);
    assert.equal((await registry.get('full')).responseBody.cloudToDeviceMessageCount, 50);
  });

  test('bad input, unknown devices and missing rights are refused', async () => {
    await registry.create({ deviceId: 'picky' });
    assert.equal((await send('picky', { body: 'x', ttlSeconds: 2 * 24 * 3600 + 1 })).status, 400);
    assert.equal((await send('picky', { body: 'x', ack: 'sometimes' })).status, 400);
    assert.equal((await send('picky', { body: 'x', properties: { n: 1 } })).status, 400);
    assert.equal((await send('picky', { body: 'x'.repeat(64 * 1024 + 1) })).status, 413);
    const missing = await send('nobody', { body: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['iothub-errorcode'], 'DeviceNotFound');
    assert.equal((await send('picky', { body: 'x' }, 'registryRead')).status, 401);
    assert.equal((await registry.get('picky')).responseBody.cloudToDeviceMessageCount, 0);
  });

  test('messages leave the queue with their device', async () => {
    await registry.create({ deviceId: 'gone' });
    await send('gone', { body: 'x' });
    await registry.delete('gone');
    await registry.create({ deviceId: 'gone' });
    assert.equal((await registry.get('gone')).responseBody.cloudToDeviceMessageCount, 0);
    assert.equal(await t.hub.cloudToDevice.queueDepth('gone'), 0);
  });

  test('fleethub c2d send queues through the running hub', async () => {
    await registry.create({ deviceId: 'cli-target' });
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli, '--data', t.dataDir, 'c2d', 'send', 'cli-target', '{"on":true}',
      '--property', 'k=v=w', '--message-id', 'from-cli', '--ttl', '120', '--json',
    ]);
    const out = JSON.parse(stdout);
    assert.equal(out.messageId, 'from-cli');
    assert.equal(out.queueDepth, 1);
    assert.equal((await registry.get('cli-target')).responseBody.cloudToDeviceMessageCount, 1);
    await assert.rejects(
      promisify(execFile)(process.execPath, [cli, '--data', t.dataDir, 'c2d', 'send', 'nobody', 'x']),
      (e: any) => e.code === 2 && /404 DeviceNotFound/.test(e.stderr),
    );
  });
});
