import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeploymentsClient } from '@azure/arm-resourcesdeployments';
import { IotHubClient } from '@azure/arm-iothub';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ResourceManagementClient } from '@azure/arm-resources';
import { rawRequest, startTestHub, type TestHub } from './support/hub.js';
import { armEndpoint, defaultGroup, managementCredential, managementToken, subscriptionId } from './support/arm.js';

const fixtures = join(process.cwd(), 'test', 'fixtures', 'templates');
const template = (name: string) => JSON.parse(readFileSync(join(fixtures, name), 'utf8')) as Record<string, unknown>;

type ArmFailure = { statusCode: number; code: string; message: string; details: unknown };
async function armError(p: Promise<unknown>): Promise<ArmFailure> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode: number; code: string; message: string; details?: unknown };
    return { statusCode: err.statusCode, code: err.code, message: err.message, details: err.details };
  }
  assert.fail('expected the call to fail');
}

describe('Microsoft.Resources/deployments through @azure/arm-resourcesdeployments (the documented templates), arm-iothub, arm-msi', () => {
  let t: TestHub;
  let deployments: DeploymentsClient;
  let hubs: IotHubClient;
  let msi: ManagedServiceIdentityClient;
  let resources: ResourceManagementClient;
  let rg: string;
  const endpoint = () => ({ endpoint: `https://${t.host}`, credentials: { scopes: ['https://management.azure.com/.default'] }, updateIntervalInMs: 50 });

  before(async () => {
    t = await startTestHub({ hubDomain: 'localhost' });
    const cred = managementCredential(t);
    deployments = new DeploymentsClient(cred, subscriptionId(t), endpoint());
    hubs = new IotHubClient(cred, subscriptionId(t), armEndpoint(t));
    msi = new ManagedServiceIdentityClient(cred, subscriptionId(t), armEndpoint(t));
    resources = new ResourceManagementClient(cred, subscriptionId(t), armEndpoint(t));
    rg = defaultGroup(t);
  });
  after(() => t.close());

  test('the system-identity template deploys unmodified; the hub has its system identity; the nested deployment and operations are listed', async () => {
    const result = await deployments.deployments.createOrUpdate(rg, 'hub-with-system-identity', {
      properties: { mode: 'Incremental', template: template('iothub-system-identity.json'), parameters: { iotHubName: { value: 'tmpl-sys-hub' } } },
    });
    assert.equal(result.properties!.provisioningState, 'Succeeded');
    assert.equal(result.name, 'hub-with-system-identity');
    assert.deepEqual((result.properties!.parameters as Record<string, { value: unknown }>).skuName!.value, 'S1');

    const hub = await hubs.iotHubResource.get(rg, 'tmpl-sys-hub');
    assert.equal(hub.identity!.type, 'SystemAssigned');
    assert.match(hub.identity!.principalId!, /^[0-9a-f-]{36}$/);
    assert.equal(hub.sku.name, 'S1');
    assert.equal(hub.location, 'local', "location defaults to [resourceGroup().location]");
    assert.equal(hub.properties!.hostName, 'tmpl-sys-hub.localhost');

    // ARM keeps the nested deployment as a deployment of its own; its operations name the hub.
    const names = [];
    for await (const d of deployments.deployments.listByResourceGroup(rg)) names.push(d.name);
    assert.deepEqual(names.sort(), ['createIotHub', 'hub-with-system-identity']);
    const outer = [];
    for await (const o of deployments.deploymentOperations.list(rg, 'hub-with-system-identity')) outer.push(o);
    assert.equal(outer.length, 1);
    assert.equal(outer[0]!.properties!.targetResource!.resourceType, 'Microsoft.Resources/deployments');
    const inner = [];
    for await (const o of deployments.deploymentOperations.list(rg, 'createIotHub')) inner.push(o);
    assert.equal(inner.length, 1);
    assert.equal(inner[0]!.properties!.provisioningState, 'Succeeded');
    assert.equal(inner[0]!.properties!.statusCode, 'Created');
    assert.equal(inner[0]!.properties!.targetResource!.id, hub.id);
    const one = await deployments.deploymentOperations.get(rg, 'createIotHub', inner[0]!.operationId!);
    assert.equal(one.properties!.targetResource!.resourceName, 'tmpl-sys-hub');

    // The same deployment again is an update (Incremental): the hub keeps its identity.
    const again = await deployments.deployments.createOrUpdate(rg, 'hub-with-system-identity', {
      properties: { mode: 'Incremental', template: template('iothub-system-identity.json'), parameters: { iotHubName: { value: 'tmpl-sys-hub' } } },
    });
    assert.equal(again.properties!.provisioningState, 'Succeeded');
    assert.equal((await hubs.iotHubResource.get(rg, 'tmpl-sys-hub')).identity!.principalId, hub.identity!.principalId);
  });

  test('the user-assigned-identity template deploys unmodified: the identity exists with its clientId/principalId and is attached to the hub', async () => {
    const result = await deployments.deployments.createOrUpdate(rg, 'hub-with-user-identity', {
      properties: {
        mode: 'Incremental',
        template: template('iothub-user-identity.json'),
        parameters: { iotHubName: { value: 'tmpl-uai-hub' }, skuName: { value: 'S2' }, skuTier: { value: 'Standard' }, location: { value: 'local' } },
      },
    });
    assert.equal(result.properties!.provisioningState, 'Succeeded');
    const uai = await msi.userAssignedIdentities.get(rg, 'tmpl-uai-hub-identity');
    assert.match(uai.clientId!, /^[0-9a-f-]{36}$/);
    assert.match(uai.principalId!, /^[0-9a-f-]{36}$/);
    const hub = await hubs.iotHubResource.get(rg, 'tmpl-uai-hub');
    assert.equal(hub.identity!.type, 'UserAssigned');
    assert.equal(hub.sku.name, 'S2');
    assert.deepEqual(hub.identity!.userAssignedIdentities![uai.id!], { clientId: uai.clientId, principalId: uai.principalId });
    const ops = [];
    for await (const o of deployments.deploymentOperations.list(rg, 'createIotHub')) ops.push(o.properties!.targetResource!.resourceType);
    assert.deepEqual(ops, ['Microsoft.ManagedIdentity/userAssignedIdentities', 'Microsoft.Devices/IotHubs'], 'the identity first (dependsOn)');
  });

  test('outputs: values, reference() to a resource of the template and to one outside it, at resource-group scope', async () => {
    const result = await deployments.deployments.createOrUpdate(rg, 'with-outputs', {
      properties: {
        mode: 'Incremental',
        template: {
          $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
          contentVersion: '1.0.0.0',
          parameters: { prefix: { type: 'string' } },
          resources: [{ type: 'Microsoft.ManagedIdentity/userAssignedIdentities', apiVersion: '2023-01-31', name: "[concat(parameters('prefix'), '-id')]", location: '[resourceGroup().location]' }],
          outputs: {
            principalId: { type: 'string', value: "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', concat(parameters('prefix'), '-id'))).principalId]" },
            existingHost: { type: 'string', value: `[reference(resourceId('Microsoft.Devices/IotHubs', '${t.hub.config.hubName}'), '2021-03-31').hostName]` },
            names: { type: 'array', value: "[split('a,b', ',')]" },
          },
        },
        parameters: { prefix: { value: 'out' } },
      },
    });
    const outputs = result.properties!.outputs as Record<string, { type: string; value: unknown }>;
    const uai = await msi.userAssignedIdentities.get(rg, 'out-id');
    assert.deepEqual(outputs.principalId, { type: 'String', value: uai.principalId });
    assert.equal(outputs.existingHost!.value, t.host);
    assert.deepEqual(outputs.names!.value, ['a', 'b']);
    const shown = await deployments.deployments.get(rg, 'with-outputs');
    assert.deepEqual(shown.properties!.outputs, outputs);
    assert.deepEqual(shown.properties!.outputResources!.map((r) => r.id), [uai.id]);
  });

  test('a failed deployment keeps what it applied before the failure and says which resource failed and why', async () => {
    const missing = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/not-there`;
    const e = await armError(
      deployments.deployments.createOrUpdate(rg, 'fails-halfway', {
        properties: {
          mode: 'Incremental',
          template: {
            $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
            contentVersion: '1.0.0.0',
            resources: [
              { type: 'Microsoft.ManagedIdentity/userAssignedIdentities', apiVersion: '2018-11-30', name: 'applied-first', location: 'local' },
              {
                type: 'Microsoft.Devices/IotHubs',
                apiVersion: '2021-03-31',
                name: 'never-created',
                location: 'local',
                sku: { name: 'S1', capacity: 1 },
                identity: { type: 'UserAssigned', userAssignedIdentities: { [missing]: {} } },
                dependsOn: ['applied-first'],
              },
            ],
          },
        },
      }),
    );
    // core-lro 3 raises a plain Error naming the code the operation status gave.
    assert.match(e.message, /DeploymentFailed/);
    const d = await deployments.deployments.get(rg, 'fails-halfway');
    assert.equal(d.properties!.provisioningState, 'Failed');
    assert.equal(d.properties!.error!.code, 'DeploymentFailed');
    const detail = d.properties!.error!.details![0]!;
    assert.equal(detail.code, 'FailedIdentityOperation');
    assert.match(detail.target!, /IotHubs\/never-created$/);
    assert.match(detail.message!, /not-there/);
    assert.ok(await msi.userAssignedIdentities.get(rg, 'applied-first'), 'what was applied before the failure stays');
    assert.equal((await armError(hubs.iotHubResource.get(rg, 'never-created'))).code, 'ResourceNotFound');
    const ops = [];
    for await (const o of deployments.deploymentOperations.list(rg, 'fails-halfway')) ops.push(o.properties!);
    assert.deepEqual(ops.map((o) => o.provisioningState), ['Succeeded', 'Failed']);
    assert.equal(ops[1]!.statusCode, 'BadRequest');
    assert.equal((ops[1]!.statusMessage as { error: { code: string } }).error.code, 'FailedIdentityOperation');
  });

  test('bad templates are ARM errors with the template path at validate and at PUT, and nothing is applied or recorded', async () => {
    const before = new Set<string>();
    for await (const r of resources.resources.listByResourceGroup(rg)) before.add(r.id!);
    const base = (resourcesList: unknown[], extra: Record<string, unknown> = {}) => ({
      $schema: 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#',
      contentVersion: '1.0.0.0',
      resources: resourcesList,
      ...extra,
    });
    const uai = (name: string, more: Record<string, unknown> = {}) => ({ type: 'Microsoft.ManagedIdentity/userAssignedIdentities', apiVersion: '2018-11-30', name, location: 'local', ...more });
    const cases: { what: string; template: unknown; parameters?: Record<string, unknown>; code: string; path?: string; match: RegExp }[] = [
      { what: 'unknown function', template: base([uai('ok-1'), uai("[nosuchfunction('x')]")]), code: 'InvalidTemplate', path: 'resources[1].name', match: /nosuchfunction/i },
      { what: 'wrong parameter type', template: base([uai('ok-2')], { parameters: { n: { type: 'int' } } }), parameters: { n: { value: 'seven' } }, code: 'InvalidTemplate', path: 'parameters.n', match: /Expected 'Integer'/ },
      { what: 'dependsOn cycle', template: base([uai('a-1', { dependsOn: ['b-1'] }), uai('b-1', { dependsOn: ['a-1'] })]), code: 'InvalidTemplate', match: /Circular dependency/ },
      { what: 'missing dependsOn', template: base([uai('c-1', { dependsOn: ['nowhere'] })]), code: 'InvalidTemplate', path: 'resources[0].dependsOn[0]', match: /not defined/ },
      { what: 'missing reference', template: base([uai('d-1', { tags: { x: "[reference('ghost').principalId]" } })]), code: 'InvalidTemplate', path: 'resources[0].tags.x', match: /ghost/ },
      { what: 'unknown resource type', template: base([uai('e-1'), { type: 'Microsoft.Devices/Nope', apiVersion: '2021-03-31', name: 'x', location: 'local' }]), code: 'InvalidResourceType', path: 'resources[1]', match: /Nope/ },
      { what: 'unsupported api-version', template: base([uai('f-1', { apiVersion: '1999-01-01' })]), code: 'NoRegisteredProviderFound', path: 'resources[0]', match: /1999-01-01/ },
      { what: 'malformed template (resources not an array)', template: base([], { resources: { a: 1 } }), code: 'InvalidTemplate', path: 'resources', match: /array/ },
    ];
    const token = await managementToken(t);
    for (const c of cases) {
      const body = JSON.stringify({ properties: { mode: 'Incremental', template: c.template, parameters: c.parameters ?? {} } });
      for (const suffix of ['/validate', '']) {
        const r = await rawRequest(t.host, suffix ? 'POST' : 'PUT', `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Resources/deployments/bad${suffix}?api-version=2021-04-01`, {
          body,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
        assert.equal(r.status, 400, `${c.what}${suffix}: ${r.text}`);
        assert.equal(r.json.error.code, c.code, c.what);
        assert.match(r.json.error.message, c.match, c.what);
        if (c.path) assert.equal(r.json.error.additionalInfo?.[0]?.info?.path, c.path, `${c.what}: ${r.text}`);
      }
    }
    // Through the SDK: validate refuses (its 400 is the operation's failure for core-lro 3); Complete mode is refused.
    await armError(deployments.deployments.validate(rg, 'bad', { properties: { mode: 'Incremental', template: cases[0]!.template as Record<string, unknown> } }));
    const complete = await armError(deployments.deployments.createOrUpdate(rg, 'bad', { properties: { mode: 'Complete', template: base([uai('g-1')]) } }));
    assert.equal(complete.code, 'DeploymentModeNotSupported');
    assert.match(complete.message, /Incremental/);

    const after = new Set<string>();
    for await (const r of resources.resources.listByResourceGroup(rg)) after.add(r.id!);
    assert.deepEqual([...after].sort(), [...before].sort(), 'nothing was created');
    assert.equal((await armError(deployments.deployments.get(rg, 'bad'))).code, 'DeploymentNotFound');
  });

  test('validate answers the resources it would deploy; a caller without write permission is refused before anything is applied', async () => {
    const ok = await deployments.deployments.validate(rg, 'check', {
      properties: { mode: 'Incremental', template: template('iothub-user-identity.json'), parameters: { iotHubName: { value: 'validated-only' } } },
    });
    assert.equal(ok.properties!.provisioningState, 'Succeeded');
    assert.deepEqual(
      ok.properties!.validatedResources!.map((r) => r.id!.split('/').slice(-2).join('/')),
      ['deployments/createIotHub', 'userAssignedIdentities/validated-only-identity', 'IotHubs/validated-only'],
    );
    assert.equal((await armError(hubs.iotHubResource.get(rg, 'validated-only'))).code, 'ResourceNotFound');

    // A principal that may deploy (a custom-free way: Contributor on nothing, Reader on the group) cannot.
    const reader = await msi.userAssignedIdentities.createOrUpdate(rg, 'deploy-reader', { location: 'local' });
    const auth = new AuthorizationManagementClient(managementCredential(t), subscriptionId(t), armEndpoint(t));
    const groupId = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}`;
    await auth.roleAssignments.create(groupId, '2b4ad0a1-2b8c-4d6a-8f33-0a7a6c3b9e11', {
      roleDefinitionId: `/subscriptions/${subscriptionId(t)}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`,
      principalId: reader.principalId!,
    });
    const asReader = new DeploymentsClient(managementCredential(t, async () => t.hub.control!.deps.principals.get(reader.principalId!)), subscriptionId(t), endpoint());
    const e = await armError(asReader.deployments.createOrUpdate(rg, 'not-allowed', { properties: { mode: 'Incremental', template: template('iothub-system-identity.json'), parameters: { iotHubName: { value: 'reader-hub' } } } }));
    assert.equal(e.statusCode, 403);
    assert.equal(e.code, 'AuthorizationFailed');
    const listed = [];
    for await (const d of asReader.deployments.listByResourceGroup(rg)) listed.push(d.name);
    assert.ok(listed.includes('hub-with-system-identity'), 'a reader can read deployments');
    assert.equal((await armError(hubs.iotHubResource.get(rg, 'reader-hub'))).code, 'ResourceNotFound');
  });

  test('a subscription-scope deployment creates a resource group; deployments are deleted without their resources', async () => {
    const result = await deployments.deployments.createOrUpdateAtSubscriptionScope('make-group', {
      location: 'local',
      properties: {
        mode: 'Incremental',
        template: {
          $schema: 'https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#',
          contentVersion: '1.0.0.0',
          resources: [{ type: 'Microsoft.Resources/resourceGroups', apiVersion: '2021-04-01', name: 'from-template', location: 'local', tags: { by: 'template' } }],
          outputs: { sub: { type: 'string', value: '[subscription().subscriptionId]' } },
        },
      },
    });
    assert.equal(result.properties!.provisioningState, 'Succeeded');
    assert.equal((result.properties!.outputs as Record<string, { value: string }>).sub!.value, subscriptionId(t));
    const group = await resources.resourceGroups.get('from-template');
    assert.deepEqual(group.tags, { by: 'template' });
    const atSub = [];
    for await (const d of deployments.deployments.listAtSubscriptionScope()) atSub.push(d.name);
    assert.deepEqual(atSub, ['make-group']);

    await deployments.deployments.delete(rg, 'with-outputs');
    assert.equal((await armError(deployments.deployments.get(rg, 'with-outputs'))).code, 'DeploymentNotFound');
    assert.ok(await msi.userAssignedIdentities.get(rg, 'out-id'), 'its resources stay');
  });

  test('the body may be JSON5 (as az 2.45 sends it); other ARM bodies stay strict JSON', async () => {
    const token = await managementToken(t);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const body = `{properties: {mode: 'Incremental', template: {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", contentVersion: '1.0.0.0', resources: [], outputs: {x: {type: 'int', value: 7}}}}}`;
    const path = `/subscriptions/${subscriptionId(t)}/resourceGroups/${rg}/providers/Microsoft.Resources/deployments/json5?api-version=2022-09-01`;
    const put = await rawRequest(t.host, 'PUT', path, { body, headers });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.json.properties.provisioningState, 'Accepted');
    assert.match(String(put.headers['azure-asyncoperation']), /\/operationStatuses\//);
    let status = 'Accepted';
    for (let i = 0; i < 50 && !['Succeeded', 'Failed'].includes(status); i++) {
      const s = await rawRequest(t.host, 'GET', new URL(String(put.headers['azure-asyncoperation'])).pathname + '?api-version=2022-09-01', { headers });
      status = s.json.status;
      if (status === 'Running' || status === 'Accepted') await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 'Succeeded');
    const got = await rawRequest(t.host, 'GET', path, { headers });
    assert.deepEqual(got.json.properties.outputs, { x: { type: 'Int', value: 7 } });
    const strict = await rawRequest(t.host, 'PUT', `/subscriptions/${subscriptionId(t)}/resourceGroups/json5-group?api-version=2021-04-01`, { body: `{location: 'local'}`, headers });
    assert.equal(strict.status, 400);
    assert.equal(strict.json.error.code, 'InvalidRequestContent');
  });
});
