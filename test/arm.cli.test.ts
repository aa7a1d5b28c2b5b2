import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestHub, type TestHub } from './support/hub.js';
import { fleethub } from './support/process.js';
import { defaultGroup, subscriptionId } from './support/arm.js';

/** `fleethub identity|role assignment|resource show` against a running hub, through its ARM API. */
describe('fleethub identity, role assignment and resource show', () => {
  let t: TestHub;
  let hubId: string;
  const cli = async (...args: string[]) => {
    const r = await fleethub([...args, '--data', t.dataDir]);
    return { ...r, json: r.code === 0 && r.stdout.trim().startsWith('{') || r.stdout.trim().startsWith('[') ? JSON.parse(r.stdout) : undefined };
  };

  before(async () => {
    t = await startTestHub();
    hubId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${defaultGroup(t)}/providers/Microsoft.Devices/IotHubs/${t.hub.config.hubName}`;
  });
  after(() => t.close());

  test('identity create/list, assign to the hub (system and user-assigned), remove, delete', async () => {
    const created = await cli('identity', 'create', 'cli-identity');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.json.properties.principalId, /^[0-9a-f-]{36}$/);
    const listed = await cli('identity', 'list');
    assert.deepEqual(listed.json.map((x: { name: string }) => x.name), ['cli-identity']);

    const assigned = await cli('identity', 'assign', '--system', '--user', 'cli-identity');
    assert.equal(assigned.code, 0, assigned.stderr);
    assert.equal(assigned.json.type, 'SystemAssigned, UserAssigned');
    assert.ok(assigned.json.principalId);
    assert.equal(assigned.json.userAssignedIdentities[created.json.id].principalId, created.json.properties.principalId);

    const refused = await cli('identity', 'delete', 'cli-identity');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /IdentityInUse/);

    const removed = await cli('identity', 'remove', '--system', '--user', 'cli-identity');
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.json.type, 'None');
    assert.equal((await cli('identity', 'delete', 'cli-identity')).code, 0);
    assert.deepEqual((await cli('identity', 'list')).json, []);
  });

  test('role assignment create/list/delete by role name, assignee and scope; resource show', async () => {
    const uai = (await cli('identity', 'create', 'reader')).json;
    const principal = uai.properties.principalId;
    const created = await cli('role', 'assignment', 'create', '--role', 'Reader', '--assignee', principal, '--scope', hubId);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.json.properties.scope, hubId);
    assert.match(created.json.properties.roleDefinitionId, /acdd72a7-3385-48ef-bd42-f606fba81ae7$/);
    const listed = await cli('role', 'assignment', 'list', '--scope', hubId, '--assignee', principal);
    assert.deepEqual(listed.json.map((a: { name: string }) => a.name), [created.json.name]);
    const bad = await cli('role', 'assignment', 'create', '--role', 'Reader', '--assignee', '00000000-0000-0000-0000-000000000001', '--scope', hubId);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /PrincipalNotFound/);
    const deleted = await cli('role', 'assignment', 'delete', '--role', 'Reader', '--assignee', principal, '--scope', hubId);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual((await cli('role', 'assignment', 'list', '--scope', hubId, '--assignee', principal)).json, []);

    const shown = await cli('resource', 'show', '--ids', hubId);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.json.id, hubId);
    assert.equal(shown.json.properties.hostName, t.host);
    const byName = await cli('resource', 'show', '--resource-type', 'Microsoft.ManagedIdentity/userAssignedIdentities', '--name', 'reader');
    assert.equal(byName.json.properties.principalId, principal);
  });
});
