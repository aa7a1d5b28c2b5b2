import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import iothub from 'azure-iothub';
import { startTestHub, type TestHub } from './support/hub.js';
import { issue, selfSigned } from './support/certs.js';

const cli = fileURLToPath(new URL('../src/cli/index.js', import.meta.url));
const run = promisify(execFile);

describe('fleethub certificate add|verify|list|delete (X.509 CA device over MQTT)', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
  });
  after(() => t.close());

  const fleethub = async (...args: string[]) => (await run(process.execPath, [cli, '--data', t.dataDir, 'certificate', ...args], { cwd: t.dataDir })).stdout;

  test('the az iot hub certificate flow from the CLI lets a CA-signed device connect', async () => {
    const ca = await selfSigned('CLI Root', true);
    writeFileSync(join(t.dataDir, 'root.pem'), ca.certPem);
    assert.match(await fleethub('add', 'cli-root', '--path', join(t.dataDir, 'root.pem')), /cli-root\s+unverified/);
    const code = /Verification code: ([0-9A-F]+)/.exec(await fleethub('verify', 'cli-root'))![1]!;
    writeFileSync(join(t.dataDir, 'proof.pem'), (await issue(ca, code)).certPem);
    assert.match(await fleethub('verify', 'cli-root', '--path', join(t.dataDir, 'proof.pem')), /cli-root\s+verified/);
    const listed = JSON.parse(await fleethub('list', '--json'));
    assert.deepEqual(listed.map((c: any) => [c.name, c.properties.isVerified, c.properties.subject]), [['cli-root', true, 'CN=CLI Root']]);

    const registry = iothub.Registry.fromConnectionString(await t.connectionString());
    await registry.create({ deviceId: 'cli-ca-device', authentication: { type: 'certificateAuthority' } } as any);
    const leaf = await issue(ca, 'cli-ca-device');
    const client = device.Client.fromConnectionString(`HostName=${t.host};DeviceId=cli-ca-device;x509=true`, deviceMqtt.Mqtt);
    await client.setOptions({ cert: leaf.certPem, key: leaf.keyPem });
    await client.open();
    await client.sendEvent(new device.Message('hello'));
    await client.close();

    assert.match(await fleethub('delete', 'cli-root'), /Deleted/);
    assert.match(await fleethub('list'), /no certificates/);
    await assert.rejects(fleethub('delete', 'cli-root'), (e: any) => e.code === 2 && /NotFound/.test(e.stderr));
  });
});
