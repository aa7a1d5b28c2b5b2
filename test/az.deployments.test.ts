import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestHub, type TestHub } from './support/hub.js';
import { caPaths } from '../src/protocols/tls/ca.js';

/**
 * Debian's azure-cli (2.45), unmodified, against Fleethub: cloud register/set, `az login --identity`
 * through the administrator's MSI endpoint (2017-09-01), `az deployment group create` with the
 * documented template, `az iot hub update` (cloud-to-device and feedback settings) and `az resource show`. `npm test` installs azure-cli when it is missing
 * (scripts/test-setup.sh): nothing here is skipped.
 */
describe('azure-cli 2.45: cloud register, login --identity, deployment group create, resource show', () => {
  let t: TestHub;
  let configDir: string;
  let env: NodeJS.ProcessEnv;
  const template = join(process.cwd(), 'test', 'fixtures', 'templates', 'iothub-system-identity.json');

  const az = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const started = Date.now();
      if (process.env.AZ_TRACE) process.stderr.write(`az ${args.slice(0, 3).join(' ')}…\n`);
      execFile('az', args, { env, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (process.env.AZ_TRACE) process.stderr.write(`  ${Date.now() - started} ms\n`);
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const ok = async (...args: string[]) => {
    const r = await az(...args);
    assert.equal(r.code, 0, `az ${args.join(' ')}:\n${r.stderr}`);
    return r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  };

  before(async () => {
    t = await startTestHub({ hubDomain: 'localhost' });
    configDir = mkdtempSync(join(tmpdir(), 'fleethub-az-'));
    const management = (await t.hub.info()).management!;
    env = {
      PATH: process.env.PATH,
      HOME: configDir,
      AZURE_CONFIG_DIR: configDir,
      AZURE_CORE_COLLECT_TELEMETRY: 'no',
      AZURE_CORE_NO_COLOR: 'true',
      AZURE_CORE_SURVEY_MESSAGE: 'no',
      REQUESTS_CA_BUNDLE: caPaths(t.dataDir).cert,
      MSI_ENDPOINT: management.msiEndpoint,
      MSI_SECRET: management.msiSecret,
      APPSETTING_WEBSITE_SITE_NAME: 'fleethub',
    };
  });
  after(async () => {
    await t.close();
    rmSync(configDir, { recursive: true, force: true });
  });

  test('the documented flow end to end', async () => {
    const base = `https://${t.host}/`;
    await ok('cloud', 'register', '-n', 'Fleethub', '--endpoint-resource-manager', base, '--endpoint-active-directory', `https://${t.host}`, '--endpoint-active-directory-resource-id', 'https://management.azure.com/', '--endpoint-active-directory-graph-resource-id', 'https://graph.windows.net/', '--output', 'none');
    await ok('cloud', 'set', '-n', 'Fleethub', '--output', 'none');
    const accounts = await ok('login', '--identity');
    const sub = t.hub.control!.deps.tenancy;
    assert.equal(accounts[0].id, sub.subscriptionId);
    assert.equal(accounts[0].tenantId, sub.tenantId);

    const deployed = await ok('deployment', 'group', 'create', '--name', 'az-deploy', '--resource-group', sub.defaultResourceGroup, '--template-file', template, '--parameters', 'iotHubName=az-hub', 'skuName=S1', 'skuTier=Standard', 'location=local');
    assert.equal(deployed.properties.provisioningState, 'Succeeded');
    assert.equal(deployed.name, 'az-deploy');

    const hub = await ok('resource', 'show', '--resource-type', 'Microsoft.Devices/IotHubs', '--name', 'az-hub', '--resource-group', sub.defaultResourceGroup);
    assert.equal(hub.name, 'az-hub');
    assert.equal(hub.identity.type, 'SystemAssigned');
    assert.match(hub.identity.principalId, /^[0-9a-f-]{36}$/);

    // az iot hub update's cloud-to-device and feedback options: GET, then PUT with If-Match; in effect on the hub at once.
    const updated = await ok('iot', 'hub', 'update', '--name', 'az-hub', '--resource-group', sub.defaultResourceGroup, '--c2d-ttl', '5', '--cdd', '30', '--fd', '20', '--fld', '100', '--ft', '4');
    // az prints the durations as Python's timedeltas; on the wire (and in the resource) they are ISO 8601.
    assert.deepEqual(updated.properties.cloudToDevice, { defaultTtlAsIso8601: '5:00:00', maxDeliveryCount: 30, feedback: { lockDurationAsIso8601: '0:01:40', ttlAsIso8601: '4:00:00', maxDeliveryCount: 20 } });
    const azHub = t.hub.hubs.find((h) => h.config.hubName === 'az-hub')!;
    assert.deepEqual(azHub.cloudToDeviceSettings.current(), { defaultTtlMs: 5 * 3600_000, maxDeliveryCount: 30, feedback: { ttlMs: 4 * 3600_000, lockMs: 100_000, maxDeliveryCount: 20 } });
    // az checks its own options' ranges; a generic --set reaches the provider, which refuses it.
    const refused = await az('iot', 'hub', 'update', '--name', 'az-hub', '--resource-group', sub.defaultResourceGroup, '--set', 'properties.cloudToDevice.maxDeliveryCount=101');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /InvalidRequestContent[\s\S]*maxDeliveryCount/);
    assert.equal(azHub.cloudToDeviceSettings.current().maxDeliveryCount, 30);

    // The managed-identity flow as the CLI does it: az identity create (api-version 2022-01-31-preview),
    // az iot hub identity assign, an identity-based routing endpoint and a route (az sends the source lower-cased).
    const uai = await ok('identity', 'create', '--resource-group', sub.defaultResourceGroup, '--name', 'az-uai');
    assert.match(uai.id, /userAssignedIdentities\/az-uai$/);
    const identity = await ok('iot', 'hub', 'identity', 'assign', '--name', 'az-hub', '--resource-group', sub.defaultResourceGroup, '--user-assigned', uai.id);
    assert.equal(identity.type, 'SystemAssigned, UserAssigned');
    await ok('iot', 'hub', 'routing-endpoint', 'create', '--hub-name', 'az-hub', '--resource-group', sub.defaultResourceGroup, '--endpoint-name', 'eh-uai', '--endpoint-type', 'eventhub', '--endpoint-resource-group', sub.defaultResourceGroup, '--endpoint-subscription-id', sub.subscriptionId, '--auth-type', 'identityBased', '--identity', uai.id, '--endpoint-uri', 'sb://az-ns.servicebus.localhost', '--entity-path', 'routed', '--output', 'none');
    const routes = await ok('iot', 'hub', 'route', 'create', '--hub-name', 'az-hub', '--resource-group', sub.defaultResourceGroup, '--route-name', 'r1', '--source', 'DeviceMessages', '--endpoint-name', 'eh-uai');
    assert.deepEqual(routes.map((r: { name: string; source: string }) => [r.name, r.source]), [['r1', 'DeviceMessages']]);
    assert.equal((await ok('iot', 'hub', 'route', 'test', '--hub-name', 'az-hub', '--resource-group', sub.defaultResourceGroup, '--route-name', 'r1')).result, 'true');

    // A resource the provider refuses: az prints which one failed and why; the hub is not created.
    const bad = await az('deployment', 'group', 'create', '--name', 'az-bad', '--resource-group', sub.defaultResourceGroup, '--template-file', template, '--parameters', 'iotHubName=az-hub-2', 'skuName=S7');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /DeploymentFailed/);
    assert.match(bad.stderr, /Invalid value for 'sku\.name': 'S7'/);
    assert.match(bad.stderr, /IotHubs\/az-hub-2/);
    const missing = await az('resource', 'show', '--resource-type', 'Microsoft.Devices/IotHubs', '--name', 'az-hub-2', '--resource-group', sub.defaultResourceGroup);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ResourceNotFound/);
  });

  test('the administrator MSI endpoint refuses a wrong secret and other api-versions', async () => {
    const { rawRequest } = await import('./support/hub.js');
    const path = new URL(String(env.MSI_ENDPOINT)).pathname;
    const wrong = await rawRequest(t.host, 'GET', `${path}/?resource=https://management.azure.com/&api-version=2017-09-01`, { headers: { secret: 'nope' } });
    assert.equal(wrong.status, 401);
    const version = await rawRequest(t.host, 'GET', `${path}/?resource=https://management.azure.com/&api-version=2019-08-01`, { headers: { secret: String(env.MSI_SECRET) } });
    assert.equal(version.status, 400);
    const good = await rawRequest(t.host, 'GET', `${path}/?resource=https://management.azure.com/&api-version=2017-09-01`, { headers: { secret: String(env.MSI_SECRET) } });
    assert.equal(good.status, 200);
    assert.equal(good.json.token_type, 'Bearer');
    assert.equal(good.json.resource, 'https://management.azure.com/');
    const claims = JSON.parse(Buffer.from(good.json.access_token.split('.')[1], 'base64url').toString());
    assert.equal(claims.tid, t.hub.control!.deps.tenancy.tenantId);
    assert.equal(claims.appid, t.hub.control!.deps.tenancy.administrator.clientId);
  });
});
