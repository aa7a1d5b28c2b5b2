/** Template planning and deployment: parameters, variables, copy, conditions, dependsOn, nested deployments, errors. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ArmError } from '../src/control/templates/errors.js';
import { deploy, planDeployment, type DeploymentContext, type ResourceToApply } from '../src/control/templates/template.js';

const SUB = '11111111-2222-3333-4444-555555555555';
const RG = `/subscriptions/${SUB}/resourceGroups/rg1`;
const ctx = (over: Partial<DeploymentContext> = {}): DeploymentContext => ({
  subscriptionId: SUB,
  tenantId: 'tenant1',
  resourceGroup: { name: 'rg1', location: 'westeurope' },
  deploymentName: 'main',
  reference: () => undefined,
  listKeys: () => undefined,
  ...over,
});
const fixture = (name: string) => JSON.parse(readFileSync(join(process.cwd(), 'test/fixtures/templates', name), 'utf8'));
const invalid = (re: RegExp, path?: string) => (e: unknown) => {
  assert.ok(e instanceof ArmError, String(e));
  assert.equal(e.code, 'InvalidTemplate');
  assert.match(e.message, /^Deployment template validation failed: '/);
  assert.match(e.message, re);
  if (path !== undefined) assert.equal(e.toBody().additionalInfo?.[0]?.info.path, path);
  return true;
};
const tpl = (resources: unknown[], extra: Record<string, unknown> = {}) => ({ $schema: 'x', contentVersion: '1.0.0.0', resources, ...extra });
const res = (name: string, more: Record<string, unknown> = {}) => ({ type: 'Microsoft.Test/things', apiVersion: '2020-01-01', name, ...more });
const thingId = (name: string) => `${RG}/providers/Microsoft.Test/things/${name}`;

describe('the documented IoT hub templates', () => {
  test('system-assigned identity: parameters, defaults, nested deployment in outer scope', () => {
    const plan = planDeployment(fixture('iothub-system-identity.json'), { iotHubName: { value: 'hub1' } }, ctx());
    assert.deepEqual(plan.parameters, { iotHubName: 'hub1', skuName: 'S1', skuTier: 'Standard', location: 'westeurope' });
    assert.equal(plan.resources.length, 1);
    const dep = plan.resources[0]!;
    assert.equal(dep.id, `${RG}/providers/Microsoft.Resources/deployments/createIotHub`);
    assert.equal(dep.apiVersion, '2020-10-01');
    assert.equal((dep.body!.properties as any).mode, 'Incremental');
    const hub = dep.nested!.resources[0]!;
    assert.equal(hub.id, `${RG}/providers/Microsoft.Devices/IotHubs/hub1`);
    assert.equal(hub.apiVersion, '2021-03-31');
    assert.deepEqual(hub.body, { location: 'westeurope', properties: {}, sku: { name: 'S1', tier: 'Standard', capacity: 1 }, identity: { type: 'SystemAssigned' } });
  });

  test('user-assigned identity: variable, expression as an object key, resourceID with a trailing slash in dependsOn', async () => {
    const plain = { iotHubName: 'hub2', skuName: 'S2', skuTier: 'Standard', location: 'northeurope' };
    const plan = planDeployment(fixture('iothub-user-identity.json'), plain, ctx());
    const [identity, hub] = plan.resources[0]!.nested!.resources;
    const identityId = `${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hub2-identity`;
    assert.equal(identity!.id, identityId);
    assert.deepEqual(identity!.body, { location: 'westeurope' });
    assert.equal(hub!.id, `${RG}/providers/Microsoft.Devices/IotHubs/hub2`);
    assert.deepEqual(hub!.dependsOn, [identityId]);
    assert.deepEqual(hub!.body!.identity, { type: 'UserAssigned', userAssignedIdentities: { [identityId]: {} } });
    assert.deepEqual(hub!.body!.sku, { name: 'S2', tier: 'Standard', capacity: 1 });

    const applied: ResourceToApply[] = [];
    const result = await deploy(fixture('iothub-user-identity.json'), plain, ctx(), async (r) => {
      applied.push(r);
      return { id: r.id, name: r.name, type: r.type, ...r.body, properties: { provisioningState: 'Succeeded' } };
    });
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(applied.map((r) => r.type), ['Microsoft.ManagedIdentity/userAssignedIdentities', 'Microsoft.Devices/IotHubs']);
    assert.equal(applied[0]!.deploymentName, 'createIotHub');
    assert.equal(result.resources[0]!.nested!.resources.length, 2);
  });
});

describe('parameters', () => {
  const t = tpl([], {
    parameters: {
      s: { type: 'string', allowedValues: ['a', 'b'], defaultValue: 'a' },
      n: { type: 'int', minValue: 1, maxValue: 3, defaultValue: 2 },
      len: { type: 'String', minLength: 2, maxLength: 4, defaultValue: 'abc' },
      b: { type: 'bool', defaultValue: false },
      o: { type: 'object', defaultValue: { k: 1 } },
      so: { type: 'secureObject', defaultValue: {} },
      a: { type: 'array', defaultValue: [] },
      ss: { type: 'securestring', defaultValue: "[concat(parameters('s'), '-x')]" },
    },
    outputs: { out: { type: 'string', value: "[parameters('ss')]" } },
  });
  test('defaults, expressions in defaults, both value shapes', () => {
    assert.equal(planDeployment(t, {}, ctx()).parameters.ss, 'a-x');
    assert.equal(planDeployment(t, { s: { value: 'b' } }, ctx()).parameters.ss, 'b-x');
    assert.equal(planDeployment(t, { n: 3, b: true }, ctx()).parameters.n, 3);
  });
  test('wrong types are refused with ARM\'s message and the parameter path', () => {
    assert.throws(() => planDeployment(t, { n: { value: '2' } }, ctx()), invalid(/Template parameter JToken type is not valid\. Expected 'Integer'\. Actual 'String'\./, 'parameters.n'));
    assert.throws(() => planDeployment(t, { b: 'true' }, ctx()), invalid(/Expected 'Boolean'\. Actual 'String'/, 'parameters.b'));
    assert.throws(() => planDeployment(t, { o: [1] }, ctx()), invalid(/Expected 'Object'\. Actual 'Array'/));
    assert.throws(() => planDeployment(t, { a: { x: 1 } }, ctx()), invalid(/Expected 'Array'\. Actual 'Object'/));
  });
  test('allowedValues, min/max value and length, unknown and missing parameters', () => {
    assert.throws(() => planDeployment(t, { s: 'c' }, ctx()), invalid(/The provided value 'c' for the template parameter 's' is not valid\. The parameter value is not part of the allowed value\(s\): 'a,b'\./));
    assert.throws(() => planDeployment(t, { n: 0 }, ctx()), invalid(/less than the minimum value of '1'/));
    assert.throws(() => planDeployment(t, { n: 4 }, ctx()), invalid(/greater than the maximum value of '3'/));
    assert.throws(() => planDeployment(t, { len: 'a' }, ctx()), invalid(/greater than or equal to '2'/));
    assert.throws(() => planDeployment(t, { len: 'abcde' }, ctx()), invalid(/less than or equal to '4'/));
    assert.throws(() => planDeployment(t, { nope: 1 }, ctx()), invalid(/The template parameters 'nope' in the parameters file are not valid/));
    assert.throws(
      () => planDeployment(fixture('iothub-system-identity.json'), {}, ctx()),
      invalid(/The value for the template parameter 'iotHubName' at 'parameters\.iotHubName' is not provided\./, 'parameters.iotHubName'),
    );
    assert.throws(() => planDeployment(tpl([], { parameters: { x: { type: 'float' } } }), {}, ctx()), invalid(/invalid type 'float'/));
  });
  test('newGuid/utcNow only in defaults', () => {
    const ok = planDeployment(tpl([], { parameters: { g: { type: 'string', defaultValue: '[newGuid()]' } } }), {}, ctx());
    assert.match(String(ok.parameters.g), /^[0-9a-f-]{36}$/);
    assert.throws(() => planDeployment(tpl([res("[newGuid()]")]), {}, ctx()), invalid(/'newGuid' is not expected at this location/, 'resources[0].name'));
  });
});

describe('variables, copy, conditions, dependsOn', () => {
  test('variables reference parameters and each other; variable copy; [[ escapes', () => {
    const t = tpl([res("[variables('b')]", { properties: { lit: '[[notAnExpression]', list: "[variables('items')]" } })], {
      parameters: { p: { type: 'string', defaultValue: 'x' } },
      variables: { a: "[concat(parameters('p'), '1')]", b: "[concat(variables('a'), '2')]", copy: [{ name: 'items', count: 2, input: "[concat('i', copyIndex('items'))]" }] },
    });
    const r = planDeployment(t, {}, ctx()).resources[0]!;
    assert.equal(r.name, 'x12');
    assert.deepEqual(r.body!.properties, { lit: '[notAnExpression]', list: ['i0', 'i1'] });
    assert.throws(() => planDeployment(tpl([res("[variables('nope')]")]), {}, ctx()), invalid(/The template variable 'nope' is not found/, 'resources[0].name'));
    assert.throws(() => planDeployment(tpl([res("[variables('a')]")], { variables: { a: "[variables('b')]", b: "[variables('a')]" } }), {}, ctx()), invalid(/refers to itself/));
  });

  test('copy loops: names with copyIndex(offset), dependsOn a copy name, serial batches, property copy', () => {
    const t = tpl([
      res("[concat('n', copyIndex(1))]", { copy: { name: 'loop', count: 3, mode: 'serial', batchSize: 2 }, properties: { copy: [{ name: 'disks', count: 2, input: { lun: "[copyIndex('disks')]" } }] } }),
      res('after', { dependsOn: ['loop'] }),
    ]);
    const plan = planDeployment(t, {}, ctx());
    assert.deepEqual(plan.resources.map((r) => r.name), ['n1', 'n2', 'n3', 'after']);
    assert.deepEqual(plan.resources[2]!.dependsOn.sort(), [thingId('n1'), thingId('n2')], 'the second batch waits for the first');
    assert.deepEqual(plan.resources[3]!.dependsOn.sort(), [thingId('n1'), thingId('n2'), thingId('n3')]);
    assert.deepEqual(plan.resources[0]!.body!.properties, { disks: [{ lun: 0 }, { lun: 1 }] });
    assert.deepEqual(plan.resources[1]!.copy, { name: 'loop', index: 1 });
    assert.equal(planDeployment(tpl([res('x', { copy: { name: 'l', count: 0 } })]), {}, ctx()).resources.length, 0);
  });

  test('dependsOn by id, by type/name, by name, with a trailing slash; order follows dependencies', () => {
    const t = tpl([
      res('c', { dependsOn: ["[resourceId('Microsoft.Test/things/', 'b')]"] }),
      res('b', { dependsOn: ['Microsoft.Test/things/a'] }),
      res('a'),
      res('d', { dependsOn: ['c', "[concat('Microsoft.Test/things/', 'a')]"] }),
    ]);
    assert.deepEqual(planDeployment(t, {}, ctx()).resources.map((r) => r.name), ['a', 'b', 'c', 'd']);
  });

  test('condition false: not deployed, and depending on it is satisfied', async () => {
    const t = tpl([res('off', { condition: "[equals(1, 2)]" }), res('on', { dependsOn: ['off'] })]);
    const applied: string[] = [];
    const result = await deploy(t, {}, ctx(), async (r) => (applied.push(r.name), { id: r.id }));
    assert.deepEqual(applied, ['on']);
    assert.deepEqual(result.resources.map((r) => r.status), ['Skipped', 'Succeeded']);
  });

  test('cycles, unknown dependsOn, unknown functions, bad names: ARM errors with the template path', () => {
    assert.throws(
      () => planDeployment(tpl([res('a', { dependsOn: ['b'] }), res('b', { dependsOn: ['a'] })]), {}, ctx()),
      invalid(new RegExp(`Circular dependency detected on resource: '${thingId('a')}'`)),
    );
    assert.throws(() => planDeployment(tpl([res('a', { dependsOn: ['ghost'] })]), {}, ctx()), invalid(/The resource 'ghost' is not defined in the template\./, 'resources[0].dependsOn[0]'));
    assert.throws(
      () => planDeployment(tpl([res('a', { properties: { x: "[foo('1')]" } })]), {}, ctx()),
      invalid(/The template resource 'a' at 'resources\[0\]\.properties\.x' is not valid: The template function 'foo' is not valid\. Please see https:\/\/aka\.ms\/arm-template-expressions/, 'resources[0].properties.x'),
    );
    assert.throws(() => planDeployment(tpl([res('a/b')]), {}, ctx()), invalid(/has incorrect segment lengths/));
    assert.throws(() => planDeployment(tpl([{ name: 'x', apiVersion: '1' }]), {}, ctx()), invalid(/the 'type' property is required/, 'resources[0].type'));
    assert.throws(() => planDeployment(tpl([res('a'), res('a')]), {}, ctx()), invalid(/defined multiple times/));
    assert.throws(() => planDeployment({ parameters: {} }, {}, ctx()), invalid(/must have a 'resources' section/));
    assert.throws(() => planDeployment(tpl([res('a', { properties: { x: "[concat('a']" } })]), {}, ctx()), invalid(/resources\[0\]\.properties\.x' is not valid: The language expression/));
    assert.throws(() => planDeployment(tpl([res('a', { properties: { x: "[reference('ghost').x]" } })]), {}, ctx()), invalid(/The template reference 'ghost' is not valid: could not find template resource/));
  });
});

describe('nested deployments and reference()', () => {
  const nested = (scope: 'inner' | 'outer' | undefined) =>
    tpl(
      [
        {
          type: 'Microsoft.Resources/deployments',
          apiVersion: '2020-10-01',
          name: 'inner1',
          properties: {
            mode: 'Incremental',
            ...(scope ? { expressionEvaluationOptions: { scope } } : {}),
            parameters: { p: { value: "[concat(parameters('p'), '-passed')]" } },
            template: {
              parameters: { p: { type: 'string' } },
              variables: { v: 'inner-var' },
              resources: [res("[concat(parameters('p'), '-', variables('v'))]")],
              outputs: { made: { type: 'string', value: "[concat(parameters('p'), '/', variables('v'))]" } },
            },
          },
        },
        res('reader', { properties: { got: "[reference('inner1').outputs.made.value]" } }),
      ],
      { parameters: { p: { type: 'string', defaultValue: 'outerP' } }, variables: { v: 'outer-var' }, outputs: { fromNested: { type: 'string', value: "[reference('inner1').outputs.made.value]" } } },
    );

  test('outer scope (the default): the inner template reads the parent\'s parameters and variables', () => {
    const plan = planDeployment(nested(undefined), {}, ctx());
    assert.equal(plan.resources[0]!.nested!.resources[0]!.name, 'outerP-outer-var');
    assert.equal(planDeployment(nested('outer'), {}, ctx()).resources[0]!.nested!.resources[0]!.name, 'outerP-outer-var');
  });

  test('inner scope: its own parameters (passed in) and variables; outputs readable with reference()', async () => {
    const plan = planDeployment(nested('inner'), {}, ctx());
    assert.equal(plan.resources[0]!.nested!.resources[0]!.name, 'outerP-passed-inner-var');
    assert.deepEqual(plan.resources[1]!.dependsOn, [`${RG}/providers/Microsoft.Resources/deployments/inner1`], 'reference() is an implicit dependency');
    assert.equal(plan.resources[1]!.body, undefined, 'its body waits for the nested deployment');
    const seen: ResourceToApply[] = [];
    const result = await deploy(nested('inner'), {}, ctx(), async (r) => (seen.push(r), { id: r.id, properties: {} }));
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual(seen.map((r) => r.name), ['outerP-passed-inner-var', 'reader']);
    assert.deepEqual(seen[1]!.body.properties, { got: 'outerP-passed/inner-var' });
    assert.deepEqual(result.outputs, { fromNested: { type: 'String', value: 'outerP-passed/inner-var' } });
  });

  test('reference() of a deployed resource, Full, listKeys, and of a resource outside the template', async () => {
    const t = tpl(
      [
        res('src'),
        res('dst', { properties: { a: "[reference('src').state]", b: "[reference(resourceId('Microsoft.Test/things', 'src'), '2020-01-01', 'Full').id]", k: "[listKeys(resourceId('Microsoft.Test/things', 'src'), '2020-01-01').key]", ext: "[reference('/ext/1').v]" } }),
      ],
      { outputs: { many: { type: 'array', copy: { count: 2, input: "[copyIndex()]" } }, hidden: { type: 'string', condition: '[false()]', value: 'x' } } },
    );
    const result = await deploy(t, {}, ctx({ reference: (id) => (id === '/ext/1' ? { properties: { v: 'outside' } } : undefined), listKeys: (id) => ({ key: `k-${id.split('/').pop()}` }) }), async (r) => ({
      id: r.id,
      properties: { state: `made-${r.name}` },
    }));
    assert.equal(result.status, 'Succeeded');
    assert.deepEqual((result.resources[1]!.resource as any).properties, { state: 'made-dst' });
    assert.deepEqual(result.outputs, { many: { type: 'Array', value: [0, 1] } });
  });

  test('a failure stops the deployment; what was applied stays; the error names the resource', async () => {
    const applied: string[] = [];
    const result = await deploy(tpl([res('a'), res('b', { dependsOn: ['a'] }), res('c', { dependsOn: ['b'] })]), {}, ctx(), async (r) => {
      if (r.name === 'b') throw new ArmError('Conflict', 'b is busy', 409);
      applied.push(r.name);
      return { id: r.id };
    });
    assert.equal(result.status, 'Failed');
    assert.deepEqual(applied, ['a']);
    assert.deepEqual(result.resources.map((r) => r.status), ['Succeeded', 'Failed']);
    assert.equal(result.error!.code, 'DeploymentFailed');
    assert.deepEqual(result.error!.details, [{ code: 'Conflict', message: 'b is busy', target: thingId('b') }]);
  });

  test('template errors are thrown before anything is applied; linked templates and Complete mode are refused', async () => {
    let calls = 0;
    await assert.rejects(deploy(tpl([res('a'), res('b', { properties: { x: '[nope()]' } })]), {}, ctx(), async () => (calls++, {})), invalid(/'nope' is not valid/));
    assert.equal(calls, 0);
    const linked = tpl([{ type: 'Microsoft.Resources/deployments', apiVersion: '2020-10-01', name: 'l', properties: { mode: 'Incremental', templateLink: { uri: 'https://x' } } }]);
    assert.throws(() => planDeployment(linked, {}, ctx()), invalid(/linked templates/));
    const complete = tpl([{ type: 'Microsoft.Resources/deployments', apiVersion: '2020-10-01', name: 'c', properties: { mode: 'Complete', template: { resources: [] } } }]);
    assert.throws(() => planDeployment(complete, {}, ctx()), invalid(/mode 'Complete' is not supported/));
  });
});
