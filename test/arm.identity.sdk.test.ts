import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { IotHubClient } from '@azure/arm-iothub';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ResourceManagementClient } from '@azure/arm-resources';
import { startTestHub, type TestHub } from './support/hub.js';
import { armEndpoint, defaultGroup, managementCredential, subscriptionId } from './support/arm.js';

async function armError(p: Promise<unknown>): Promise<{ statusCode: number; code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode: number; code: string; message: string };
    return { statusCode: err.statusCode, code: err.code, message: err.message };
  }
  assert.fail('expected the call to fail');
}

describe('identities, role assignments and resource groups through @azure/arm-msi, arm-authorization and arm-resources', () => {
  let t: TestHub;
  let msi: ManagedServiceIdentityClient;
  let hubs: IotHubClient;
  let auth: AuthorizationManagementClient;
  let resources: ResourceManagementClient;
  let rg: string;
  let hubId: string;

  before(async () => {
    t = await startTestHub();
    const cred = managementCredential(t);
    msi = new ManagedServiceIdentityClient(cred, subscriptionId(t), armEndpoint(t));
    hubs = new IotHubClient(cred, subscriptionId(t), armEndpoint(t));
    auth = new AuthorizationManagementClient(cred, subscriptionId(t), armEndpoint(t));
    resources = new ResourceManagementClient(cred, subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
    hubId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Devices/IotHubs/${t.hub.config.hubName}`;
  });
  after(() => t.close());

  test('a user-assigned identity is created with its principal, listed, attached to the hub and detached', async () => {
    const uai = await msi.userAssignedIdentities.createOrUpdate(rg, 'router-identity', { location: 'local', tags: { role: 'routing' } });
    assert.equal(uai.type, 'Microsoft.ManagedIdentity/userAssignedIdentities');
    assert.match(uai.clientId!, /^[0-9a-f-]{36}$/);
    assert.match(uai.principalId!, /^[0-9a-f-]{36}$/);
    assert.equal(uai.tenantId, t.hub.control!.deps.tenancy.tenantId);
    assert.deepEqual((await msi.userAssignedIdentities.get(rg, 'router-identity')).principalId, uai.principalId);
    const listed = [];
    for await (const x of msi.userAssignedIdentities.listByResourceGroup(rg)) listed.push(x.name);
    assert.deepEqual(listed, ['router-identity']);
    const bySub = [];
    for await (const x of msi.userAssignedIdentities.listBySubscription()) bySub.push(x.id);
    assert.deepEqual(bySub, [uai.id]);

    const hub = await hubs.iotHubResource.get(rg, t.hub.config.hubName);
    const attached = await hubs.iotHubResource.beginCreateOrUpdateAndWait(rg, t.hub.config.hubName, {
      ...hub,
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uai.id!]: {} } },
    });
    assert.equal(attached.identity!.type, 'SystemAssigned, UserAssigned');
    assert.deepEqual(attached.identity!.userAssignedIdentities![uai.id!], { clientId: uai.clientId, principalId: uai.principalId });
    assert.ok(attached.identity!.principalId);
    const state = await t.hub.control!.deps.hubIdentities.get(hubId);
    assert.equal(state.userAssigned.get(uai.id!)?.principalId, uai.principalId);

    // An identity in use by the hub cannot be deleted; detached, it can.
    const e = await armError(msi.userAssignedIdentities.delete(rg, 'router-identity'));
    assert.equal(e.statusCode, 409);
    assert.equal(e.code, 'IdentityInUse');
    const detached = await hubs.iotHubResource.beginCreateOrUpdateAndWait(rg, t.hub.config.hubName, { ...attached, identity: { type: 'SystemAssigned' } });
    assert.equal(detached.identity!.userAssignedIdentities, undefined);
    assert.equal(detached.identity!.principalId, attached.identity!.principalId, 'the system identity stays the same');
    await msi.userAssignedIdentities.delete(rg, 'router-identity');
    assert.equal((await armError(msi.userAssignedIdentities.get(rg, 'router-identity'))).code, 'ResourceNotFound');
    assert.equal(await t.hub.control!.deps.principals.get(uai.principalId!), undefined);
  });

  test('role definitions: the built-in ones with Azure ids', async () => {
    const scope = `/subscriptions/${subscriptionId(t)}`;
    const readers = [];
    for await (const d of auth.roleDefinitions.list(scope, { filter: "roleName eq 'Reader'" })) readers.push(d);
    assert.equal(readers.length, 1);
    assert.equal(readers[0]!.name, 'acdd72a7-3385-48ef-bd42-f606fba81ae7');
    assert.equal(readers[0]!.roleType, 'BuiltInRole');
    const owner = await auth.roleDefinitions.get(scope, '8e3af657-a8ff-443c-a75c-2fe8c4bcb635');
    assert.equal(owner.roleName, 'Owner');
    assert.deepEqual(owner.permissions![0]!.actions, ['*']);
  });

  test('a role assignment at the hub scope lets a principal read the hub and nothing more; deleting it takes that away', async () => {
    const uai = await msi.userAssignedIdentities.createOrUpdate(rg, 'reader-identity', { location: 'local' });
    const principal = await t.hub.control!.deps.principals.get(uai.principalId!);
    const asReader = new IotHubClient(managementCredential(t, async () => principal), subscriptionId(t), armEndpoint(t));
    assert.equal((await armError(asReader.iotHubResource.get(rg, t.hub.config.hubName))).code, 'AuthorizationFailed');

    const name = randomUUID();
    const roleDefinitionId = `/subscriptions/${subscriptionId(t)}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
    const created = await auth.roleAssignments.create(hubId, name, { roleDefinitionId, principalId: uai.principalId!, principalType: 'ServicePrincipal' });
    assert.equal(created.name, name);
    assert.equal(created.scope, hubId);
    assert.equal(created.principalId, uai.principalId);
    assert.equal(created.id, `${hubId}/providers/Microsoft.Authorization/roleAssignments/${name}`);

    const hub = await asReader.iotHubResource.get(rg, t.hub.config.hubName);
    assert.equal(hub.name, t.hub.config.hubName);
    const write = await armError(asReader.iotHubResource.beginUpdateAndWait(rg, t.hub.config.hubName, { tags: { x: 'y' } }));
    assert.equal(write.statusCode, 403);
    assert.equal(write.code, 'AuthorizationFailed');

    const got = await auth.roleAssignments.get(hubId, name);
    assert.equal(got.roleDefinitionId, roleDefinitionId);
    const atHub = [];
    for await (const a of auth.roleAssignments.listForScope(hubId)) atHub.push(a);
    assert.ok(atHub.some((a) => a.name === name));
    assert.ok(atHub.some((a) => a.principalId === t.hub.control!.deps.tenancy.administrator.principalId), 'inherited from the subscription');
    const atScopeOnly = [];
    for await (const a of auth.roleAssignments.listForScope(hubId, { filter: 'atScope()' })) atScopeOnly.push(a);
    assert.ok(atScopeOnly.some((a) => a.name === name));

    await auth.roleAssignments.delete(hubId, name);
    assert.equal((await armError(asReader.iotHubResource.get(rg, t.hub.config.hubName))).code, 'AuthorizationFailed');
  });

  test('bad role assignments get ARM errors and create nothing', async () => {
    const count = async () => {
      let n = 0;
      for await (const _ of auth.roleAssignments.listForScope(`/subscriptions/${subscriptionId(t)}`)) n++;
      return n;
    };
    const before = await count();
    const reader = `/subscriptions/${subscriptionId(t)}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
    const admin = t.hub.control!.deps.tenancy.administrator.principalId;
    let e = await armError(auth.roleAssignments.create(hubId, randomUUID(), { roleDefinitionId: reader, principalId: randomUUID() }));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'PrincipalNotFound');
    e = await armError(auth.roleAssignments.create(hubId, randomUUID(), { roleDefinitionId: reader.replace(/[0-9a-f-]{36}$/, randomUUID()), principalId: admin }));
    assert.equal(e.code, 'RoleDefinitionDoesNotExist');
    e = await armError(auth.roleAssignments.create(hubId, 'not-a-guid', { roleDefinitionId: reader, principalId: admin }));
    assert.equal(e.code, 'InvalidRoleAssignmentId');
    e = await armError(auth.roleAssignments.create(hubId.replace(/IotHubs\/.*/, 'IotHubs/missing-hub'), randomUUID(), { roleDefinitionId: reader, principalId: admin }));
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, 'ResourceNotFound');
    await auth.roleAssignments.create(hubId, randomUUID(), { roleDefinitionId: reader, principalId: admin });
    e = await armError(auth.roleAssignments.create(hubId, randomUUID(), { roleDefinitionId: reader, principalId: admin }));
    assert.equal(e.statusCode, 409);
    assert.equal(e.code, 'RoleAssignmentExists');
    assert.equal(await count(), before + 1);
  });

  test('resource groups: create, exist, list, getById, and delete (long-running) with what they hold', async () => {
    const created = await resources.resourceGroups.createOrUpdate('scratch', { location: 'local', tags: { a: 'b' } });
    assert.equal(created.id, `/subscriptions/${subscriptionId(t)}/resourceGroups/scratch`);
    assert.equal(created.properties!.provisioningState, 'Succeeded');
    assert.equal((await resources.resourceGroups.checkExistence('scratch')).body, true);
    assert.equal((await resources.resourceGroups.checkExistence('nope')).body, false);
    const names = [];
    for await (const g of resources.resourceGroups.list()) names.push(g.name);
    assert.deepEqual(names.sort(), [rg, 'scratch'].sort());

    const uai = await msi.userAssignedIdentities.createOrUpdate('scratch', 'temp', { location: 'local' });
    const byId = await resources.resources.getById(uai.id!, '2023-01-31');
    assert.equal(byId.name, 'temp');
    const hub = await resources.resources.getById(hubId, '2023-06-30');
    assert.equal((hub.properties as { hostName: string }).hostName, t.host);
    const inGroup = [];
    for await (const r of resources.resources.listByResourceGroup('scratch')) inGroup.push(r.id);
    assert.deepEqual(inGroup, [uai.id]);

    await resources.resourceGroups.beginDeleteAndWait('scratch');
    assert.equal((await armError(resources.resourceGroups.get('scratch'))).code, 'ResourceGroupNotFound');
    assert.equal(await t.hub.control!.deps.principals.get(uai.principalId!), undefined, 'the identity went with its group');

    const e = await armError(resources.resourceGroups.beginDeleteAndWait(rg));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, 'CannotDeleteDefaultResourceGroup');
  });

  test('subscriptions, tenants and providers answer as ARM does', async () => {
    const providers = [];
    for await (const p of resources.providers.list()) providers.push(p.namespace);
    assert.ok(providers.includes('Microsoft.Devices'));
    assert.ok(providers.includes('Microsoft.ManagedIdentity'));
    const devices = await resources.providers.get('Microsoft.Devices');
    const iotHubs = devices.resourceTypes!.find((r) => r.resourceType === 'IotHubs')!;
    assert.ok(iotHubs.apiVersions!.includes('2021-03-31'));
    assert.ok(iotHubs.apiVersions!.includes('2023-06-30'));
  });
});
