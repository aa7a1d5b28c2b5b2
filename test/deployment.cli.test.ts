import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';

/** `fleethub deployment create|show|list` against a running hub, through its ARM API. */
describe('fleethub deployment create, show and list', () => {
  let t: TestHub;
  const fixture = (name: string) => join(process.cwd(), 'test', 'fixtures', 'templates', name);
  const cli = async (...args: string[]) => {
    const r = await fleethub([...args, '--data', t.dataDir]);
    const out = r.stdout.trim();
    return { ...r, json: out.startsWith('{') || out.startsWith('[') ? JSON.parse(out) : undefined };
  };

  before(async () => {
    t = await startTestHub({ hubDomain: 'localhost' });
  });
  after(() => t.close());

  test('create deploys the documented template with k=v parameters, printing progress; show and list find it', async () => {
    const r = await cli('deployment', 'create', '--template-file', fixture('iothub-user-identity.json'), '--parameters', 'iotHubName=cli-hub', 'skuName=S1', '--name', 'cli-deploy');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.properties.provisioningState, 'Succeeded');
    assert.match(r.stderr, /cli-deploy: (Accepted|Running)/);
    assert.match(r.stderr, /Succeeded\s+Microsoft\.Resources\/deployments createIotHub/);
    assert.match(r.stderr, /cli-deploy: Succeeded/);

    const shown = await cli('deployment', 'show', 'cli-deploy');
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.json.properties.parameters.iotHubName.value, 'cli-hub');
    const listed = await cli('deployment', 'list');
    assert.deepEqual(listed.json.map((d: { name: string }) => d.name).sort(), ['cli-deploy', 'createIotHub']);
    const hub = await cli('resource', 'show', '--resource-type', 'Microsoft.Devices/IotHubs', '--name', 'cli-hub');
    assert.equal(hub.json.identity.type, 'UserAssigned');
  });

  test('bad input: a template error names the path and creates nothing; a failed resource is named with its error; wrong parameter types', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleethub-tmpl-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ $schema: 'x', contentVersion: '1.0.0.0', resources: [{ type: 'Microsoft.ManagedIdentity/userAssignedIdentities', apiVersion: '2018-11-30', name: "[bogus('x')]", location: 'local' }] }));
    let r = await cli('deployment', 'create', '--template-file', bad);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /InvalidTemplate/);
    assert.match(r.stderr, /resources\[0\]\.name/);
    assert.equal((await cli('deployment', 'show', 'bad')).code, 2, 'no deployment recorded');

    r = await cli('deployment', 'create', '--template-file', fixture('iothub-system-identity.json'), '--parameters', 'iotHubName=Not Valid!');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Failed\s+Microsoft\.Devices\/IotHubs Not Valid!/);
    assert.match(r.stderr, /failed: DeploymentFailed/);

    const typed = join(dir, 'typed.json');
    writeFileSync(typed, JSON.stringify({ $schema: 'x', contentVersion: '1.0.0.0', parameters: { n: { type: 'int' } }, resources: [] }));
    r = await cli('deployment', 'create', '--template-file', typed, '--parameters', 'n=seven');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /'n' is an int/);
  });
});
