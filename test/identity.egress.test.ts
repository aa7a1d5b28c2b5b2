import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { startTestHub, type TestHub } from './support/hub.js';
import { findRole, permissionMatches, roleGrants } from '../src/identity/roles.js';
import type { Principal } from '../src/identity/types.js';

describe('the egress seam, role assignments and RBAC (in-process, local token service)', () => {
  let t: TestHub;
  let hubId: string;
  let uai: Principal;
  let stray: Principal;
  const uaiId = (sub: string, name: string) => `/subscriptions/${sub}/resourceGroups/fleethub/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`;

  before(async () => {
    t = await startTestHub();
    const { subscriptionId } = t.hub.identity.tenancy;
    hubId = t.hub.identity.hubResourceId(t.hub.config.hubName)!;
    uai = await t.hub.identity.principals.create('userAssigned', uaiId(subscriptionId, 'router'), 'router');
    stray = await t.hub.identity.principals.create('userAssigned', uaiId(subscriptionId, 'stray'), 'stray');
  });
  after(() => t.close());

  const egress = () => t.hub.identity.egress;

  test('keyBased returns the connection string', async () => {
    const c = await egress().forConnection(hubId, { authenticationType: 'keyBased', connectionString: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v' });
    assert.deepEqual(c, { kind: 'key', connectionString: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v' });
  });

  test('identityBased with no identity on the hub fails and says so', async () => {
    await assert.rejects(egress().forConnection(hubId, { authenticationType: 'identityBased' }), /system-assigned identity, which is not enabled/);
  });

  test('identityBased without a user-assigned id uses the system-assigned identity', async () => {
    const state = await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: true, userAssigned: [uai.resourceId!] });
    const c = await egress().forConnection(hubId, { authenticationType: 'identityBased', identity: { userAssignedIdentity: null } });
    assert.equal(c.kind, 'identity');
    if (c.kind !== 'identity') return;
    assert.equal(c.identity, 'systemAssigned');
    assert.equal(c.principalId, state.systemAssigned!.principalId);
    const token = await c.credential.getToken('https://eventhubs.azure.net/.default');
    assert.equal(decodeJwt(token!.token).oid, state.systemAssigned!.principalId);
    assert.equal(decodeJwt(token!.token).aud, 'https://eventhubs.azure.net');
  });

  test('identityBased with an attached user-assigned id uses it (ids compared case-insensitively)', async () => {
    const c = await egress().forConnection(hubId, { authenticationType: 'identityBased', identity: { userAssignedIdentity: uai.resourceId!.toUpperCase() } });
    assert.ok(c.kind === 'identity' && c.identity === 'userAssigned');
    const token = await c.credential.getToken(['https://storage.azure.com/.default']);
    assert.equal(decodeJwt(token!.token).oid, uai.principalId);
  });

  test('a user-assigned id not attached to the hub fails and says so', async () => {
    await assert.rejects(egress().forConnection(hubId, { authenticationType: 'identityBased', identity: { userAssignedIdentity: stray.resourceId! } }), /not attached to the hub/);
  });

  test('a credential stops working once its identity is turned off', async () => {
    const c = await egress().forConnection(hubId, { authenticationType: 'identityBased' });
    await t.hub.identity.hubIdentities.setHubIdentity(hubId, { system: false, userAssigned: [uai.resourceId!] });
    assert.ok(c.kind === 'identity');
    await assert.rejects(c.credential.getToken('https://eventhubs.azure.net/.default'), /no longer exists/);
    await assert.rejects(egress().forConnection(hubId, { authenticationType: 'identityBased' }), /not enabled/);
  });

  test('bad settings: an unknown authenticationType, keyBased without a connection string', async () => {
    await assert.rejects(egress().forConnection(hubId, { authenticationType: 'certificate' }), /keyBased or identityBased/);
    await assert.rejects(egress().forConnection(hubId, { authenticationType: 'keyBased' }), /connection string/);
  });

  test('role assignments: data role at a namespace scope grants the hub identity send, inherited below it', async () => {
    const ns = `/subscriptions/${t.hub.identity.tenancy.subscriptionId}/resourceGroups/fleethub/providers/Microsoft.EventHub/namespaces/ns1`;
    const a = await t.hub.identity.roleAssignments.create({ name: randomUUID(), scope: ns, roleDefinitionId: `/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/${findRole('Azure Event Hubs Data Sender')!.id}`, principalId: uai.principalId, principalType: 'ServicePrincipal' });
    assert.equal(a.id, `${ns}/providers/Microsoft.Authorization/roleAssignments/${a.name}`);
    assert.match(a.roleDefinitionId, /\/roleDefinitions\/2b629674-e913-4c01-ae53-ef4638d8f975$/);
    const ac = t.hub.identity.accessControl;
    assert.equal(await ac.allows(uai.principalId, `${ns}/eventhubs/telemetry`, 'Microsoft.EventHub/namespaces/messages/send/action', true), true);
    assert.equal(await ac.allows(uai.principalId, `${ns}/eventhubs/telemetry`, 'Microsoft.EventHub/namespaces/messages/receive/action', true), false);
    assert.equal(await ac.allows(uai.principalId, `${ns}2`, 'Microsoft.EventHub/namespaces/messages/send/action', true), false, 'a sibling whose name starts the same is not below');
    assert.equal(await ac.allows(stray.principalId, ns, 'Microsoft.EventHub/namespaces/messages/send/action', true), false);
    assert.deepEqual((await t.hub.identity.roleAssignments.list({ scope: `${ns}/eventhubs/telemetry`, inherited: true, principalId: uai.principalId })).map((x) => x.name), [a.name]);
    assert.ok((await t.hub.identity.roleAssignments.list({ scope: `/subscriptions/${t.hub.identity.tenancy.subscriptionId}`, atScopeAndBelow: true })).some((x) => x.name === a.name));
  });

  test('role assignment refusals as ARM words them, nothing created', async () => {
    const ra = t.hub.identity.roleAssignments;
    const count = (await ra.list()).length;
    const base = { name: randomUUID(), scope: hubId, roleDefinitionId: findRole('Reader')!.id, principalId: uai.principalId, principalType: 'ServicePrincipal' };
    await assert.rejects(ra.create({ ...base, name: 'not-a-guid' }), { code: 'InvalidRoleAssignmentId' });
    await assert.rejects(ra.create({ ...base, roleDefinitionId: '00000000-0000-0000-0000-000000000000' }), { code: 'RoleDefinitionDoesNotExist' });
    await assert.rejects(ra.create({ ...base, principalId: randomUUID() }), { code: 'PrincipalNotFound' });
    await ra.create(base);
    await assert.rejects(ra.create({ ...base, name: randomUUID() }), { code: 'RoleAssignmentExists', status: 409 });
    assert.equal((await ra.list()).length, count + 1);
  });

  test('built-in roles carry Azure ids and permissions; wildcards and notActions as Azure applies them', () => {
    assert.equal(findRole('owner')!.id, '8e3af657-a8ff-443c-a75c-2fe8c4bcb635');
    assert.equal(findRole('IoT Hub Twin Contributor')!.id, '494bdba2-168f-4f31-a0a1-191d2f7c028c');
    assert.equal(findRole('/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe')!.roleName, 'Storage Blob Data Contributor');
    assert.ok(permissionMatches('*/read', 'Microsoft.Devices/IotHubs/read'));
    assert.ok(!permissionMatches('*/read', 'Microsoft.Devices/IotHubs/write'));
    assert.ok(roleGrants(findRole('Contributor')!, 'Microsoft.Devices/IotHubs/write', false));
    assert.ok(!roleGrants(findRole('Contributor')!, 'Microsoft.Authorization/roleAssignments/write', false));
    assert.ok(roleGrants(findRole('IoT Hub Data Reader')!, 'Microsoft.Devices/IotHubs/twins/read', true));
    assert.ok(!roleGrants(findRole('IoT Hub Data Reader')!, 'Microsoft.Devices/IotHubs/twins/write', true));
    assert.ok(!roleGrants(findRole('Owner')!, 'Microsoft.Devices/IotHubs/twins/read', true), 'actions never grant data actions');
  });
});
