import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackAddress } from './support/hub.js';
import { fleethub, runNode, sdkClientPath, startHubProcess } from './support/process.js';

/** The hub as a user runs it: `fleethub start` in its own process, with a CA it made itself. */
describe('fleethub CLI and process lifecycle', () => {
  let host: string;
  let dataDir: string;
  let data: string[];
  let hub: Awaited<ReturnType<typeof startHubProcess>>;
  const info = async () => JSON.parse((await fleethub(['info', '--json', ...data])).stdout);
  /** azure-iothub in a separate process that trusts the hub's CA only through NODE_EXTRA_CA_CERTS. */
  const sdk = async (cs: string, op: string, id?: string) => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(dataDir, 'ca', 'ca-cert.pem') };
    const ran = await runNode([sdkClientPath, cs, op, ...(id ? [id] : [])], { env });
    return JSON.parse(ran.stdout || JSON.stringify({ ok: false, message: ran.stderr }));
  };
  const start = () => startHubProcess([...data, '--host-name', host, '--bind', host, '--log-level', 'warn']);

  before(async () => {
    host = await freeLoopbackAddress();
    dataDir = mkdtempSync(join(tmpdir(), 'fleethub-cli-'));
    data = ['--data', dataDir];
    hub = await start();
  });
  after(async () => {
    hub.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('start prints connection strings and the CA path; info --json has the documented fields', async () => {
    assert.match(hub.output(), /HostName=.*;SharedAccessKeyName=iothubowner;SharedAccessKey=/);
    assert.match(hub.output(), new RegExp(`NODE_EXTRA_CA_CERTS=${join(dataDir, 'ca', 'ca-cert.pem')}`));
    const i = await info();
    for (const k of ['hubHostName', 'hubName', 'iothubownerConnectionString', 'serviceConnectionString', 'registryReadWriteConnectionString', 'deviceConnectionString', 'caCertificatePath', 'ports']) {
      assert.ok(i[k], `info.${k}`);
    }
    assert.equal(i.hubHostName, host);
    assert.equal(i.ports.https, 443);
    assert.match(i.deviceConnectionString, /SharedAccessKeyName=device;/);
    assert.ok(existsSync(i.caCertificatePath));
    // The plain AMQP listener is on the address given to `start --bind`, which the configuration does not know.
    assert.match(i.eventHubCompatibleEmulatorConnectionString, new RegExp(`^Endpoint=sb://${host.replace(/\./g, '\\.')}/;`));
  });

  test('device create, list, show, connection-string, delete', async () => {
    const created = JSON.parse((await fleethub(['device', 'create', 'cli-device', '--json', ...data])).stdout);
    assert.equal(created.deviceId, 'cli-device');
    const list = JSON.parse((await fleethub(['device', 'list', '--json', ...data])).stdout);
    assert.deepEqual(list.map((d: { deviceId: string }) => d.deviceId), ['cli-device']);
    const shown = JSON.parse((await fleethub(['device', 'show', 'cli-device', ...data])).stdout);
    assert.equal(shown.etag, created.etag);
    const cs = (await fleethub(['device', 'connection-string', 'cli-device', ...data])).stdout.trim();
    assert.equal(cs, `HostName=${host};DeviceId=cli-device;SharedAccessKey=${created.authentication.symmetricKey.primaryKey}`);
    const dup = await fleethub(['device', 'create', 'cli-device', ...data]);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /409 DeviceAlreadyExists/);
    assert.equal((await fleethub(['device', 'delete', 'cli-device', ...data])).code, 0);
    assert.match((await fleethub(['device', 'show', 'cli-device', ...data])).stderr, /404 DeviceNotFound/);
  });

  test('policy regenerate-key: the old key stops working at once, the new one works', async () => {
    const before = (await info()).iothubownerConnectionString;
    assert.equal((await sdk(before, 'list')).ok, true);
    assert.equal((await fleethub(['policy', 'regenerate-key', 'iothubowner', ...data])).code, 0);
    const afterCs = (await info()).iothubownerConnectionString;
    assert.notEqual(afterCs, before);
    const refused = await sdk(before, 'list');
    assert.equal(refused.name, 'UnauthorizedError');
    assert.equal((await sdk(afterCs, 'list')).ok, true);
    const policies = JSON.parse((await fleethub(['policy', 'list', '--json', ...data])).stdout);
    assert.deepEqual(policies.map((p: { keyName: string }) => p.keyName).sort(), ['device', 'iothubowner', 'registryRead', 'registryReadWrite', 'service']);
  });

  test('restart keeps devices, keys and the CA; a client that trusted the CA still connects', async () => {
    const cs = (await info()).iothubownerConnectionString;
    const created = await sdk(cs, 'create', 'survivor');
    assert.equal(created.ok, true, created.message);
    const caBefore = readFileSync(join(dataDir, 'ca', 'ca-cert.pem'), 'utf8');

    hub.child.kill('SIGTERM');
    assert.equal(await hub.exited, 0, 'graceful shutdown exits 0');
    assert.equal(existsSync(join(dataDir, 'runtime.json')), false);
    assert.equal((await info()).running, false);

    hub = await start();
    assert.equal(readFileSync(join(dataDir, 'ca', 'ca-cert.pem'), 'utf8'), caBefore);
    assert.equal((await info()).iothubownerConnectionString, cs);
    const got = await sdk(cs, 'get', 'survivor');
    assert.equal(got.ok, true, got.message);
    assert.deepEqual(got.result.authentication, created.result.authentication);
    assert.equal(got.result.generationId, created.result.generationId);
  });

  test('a configured port that cannot be bound is a clear error', async () => {
    const other = mkdtempSync(join(tmpdir(), 'fleethub-cli-busy-'));
    const ran = await fleethub(['start', '--data', other, '--host-name', host, '--bind', host, '--https-port', '443']);
    rmSync(other, { recursive: true, force: true });
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /Cannot listen for HTTPS on .*:443: EADDRINUSE/);
  });

  test('bad configuration is refused with the source and setting named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-cli-cfg-'));
    const file = join(dir, 'fleethub.json');
    writeFileSync(file, JSON.stringify({ hubName: 'ok-hub', ports: { https: 'many' } }));
    const ran = await fleethub(['start', '--config', file, '--data', dir]);
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /fleethub\.json: 'ports\.https' must be a port number/);
    writeFileSync(file, JSON.stringify({ hubname: 'typo' }));
    assert.match((await fleethub(['info', '--config', file, '--data', dir])).stderr, /unknown setting 'hubname'/);
    rmSync(dir, { recursive: true, force: true });
  });

  test('without root, HTTPS falls back to 8443 and says what that leaves out', { skip: process.getuid?.() !== 0 && 'needs root to drop privileges' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-cli-nobody-'));
    chmodSync(dir, 0o777);
    const fallbackHost = await freeLoopbackAddress();
    // nobody cannot read the test CA (in a 0700 temp dir): don't hand it NODE_EXTRA_CA_CERTS.
    const { NODE_EXTRA_CA_CERTS: _unreadable, ...env } = process.env;
    const nobody = await startHubProcess(['--data', join(dir, 'data'), '--host-name', fallbackHost, '--bind', fallbackHost, '--log-level', 'warn'], {
      prefix: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'],
      env,
    });
    try {
      await nobody.waitFor(/setcap cap_net_bind_service/);
      assert.match(nobody.output(), /falls back to port 8443/);
      assert.match(nobody.output(), new RegExp(`running at https://${fallbackHost.replace(/\./g, '\\.')}:8443`));
    } finally {
      nobody.child.kill('SIGTERM');
      await nobody.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
