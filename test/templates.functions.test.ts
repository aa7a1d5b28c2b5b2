/** The expression language and the template functions, one by one, with a stub FunctionEnv. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateExpression, isExpression, parseExpression, type Value } from '../src/control/templates/expressions.js';
import { evaluatorFor, type FunctionEnv } from '../src/control/templates/functions.js';
import { ExpressionError } from '../src/control/templates/errors.js';

const SUB = '00000000-0000-0000-0000-0000000000aa';
function env(over: Partial<FunctionEnv> = {}): FunctionEnv {
  const params: Record<string, Value> = { name: 'hub1', count: 3, flag: true, obj: { a: { b: [10, 20] } } };
  const vars: Record<string, Value> = { v: 'x-var' };
  return {
    parameter: (n) => {
      if (!(n in params)) throw new ExpressionError(`The template parameter '${n}' is not found.`);
      return params[n]!;
    },
    variable: (n) => vars[n]!,
    copyIndex: () => 2,
    resourceGroup: () => ({ id: `/subscriptions/${SUB}/resourceGroups/rg1`, name: 'rg1', location: 'westeurope', type: 'Microsoft.Resources/resourceGroups', properties: { provisioningState: 'Succeeded' } }),
    subscription: () => ({ id: `/subscriptions/${SUB}`, subscriptionId: SUB, tenantId: 't1', displayName: 'Fleethub' }),
    deployment: () => ({ name: 'dep1', properties: {} }),
    tenantId: 't1',
    subscriptionId: SUB,
    resourceGroupName: 'rg1',
    reference: (target, api, full): Value => (full ? { id: target, apiVersion: api ?? null, properties: { p: 1 } } : { p: 1, target }),
    listKeys: (id, api) => ({ keys: [{ keyName: 'key1', value: `${id}@${api}` }] }),
    nonDeterministicAllowed: false,
    ...over,
  };
}
const ev = (s: string, e = env()) => evaluateExpression(s, evaluatorFor(e));
const fails = (s: string, re: RegExp, e = env()) => assert.throws(() => ev(s, e), (x: unknown) => x instanceof ExpressionError && re.test(x.message));

describe('expression syntax', () => {
  test('what is an expression; [[ escapes', () => {
    assert.equal(isExpression('[concat()]'), true);
    assert.equal(isExpression('[[notOne]'), false);
    assert.equal(isExpression('plain'), false);
  });
  test("literals, '' escaping, numbers, nested calls, property and index access", () => {
    assert.equal(ev("[concat('it''s')]"), "it's");
    assert.equal(ev('[add(-2, 5)]'), 3);
    assert.equal(ev("[parameters('obj').a.b[1]]"), 20);
    assert.deepEqual(ev("[parameters('obj')['a']['b']]"), [10, 20]);
    assert.equal(ev("[resourceGroup().Location]"), 'westeurope', 'property names are case-insensitive');
    assert.equal(ev("[CONCAT('a', ToLower('B'))]"), 'ab', 'function names are case-insensitive');
  });
  test('syntax errors and unknown functions are refused', () => {
    assert.throws(() => parseExpression("[concat('a']"), ExpressionError);
    assert.throws(() => parseExpression("[concat('a)]"), /not terminated/);
    assert.throws(() => parseExpression('[foo]'), ExpressionError);
    assert.throws(() => parseExpression('[]'), ExpressionError);
    fails("[foo('x')]", /^The template function 'foo' is not valid\.$/);
    fails("[toString()]", /not valid/);
    fails("[parameters('obj').missing]", /property 'missing' doesn't exist, available properties are 'a'/);
    fails("[parameters('obj').a.b[5]]", /index '5' is out of bounds/);
  });
});

describe('functions', () => {
  test('concat: strings (booleans as .NET spells them) and arrays', () => {
    assert.equal(ev("[concat('a', 1, true())]"), 'a1True');
    assert.deepEqual(ev("[concat(createArray(1, 2), createArray(3))]"), [1, 2, 3]);
    fails("[concat(createArray(1), 'x')]", /all arrays/);
  });
  test('format: .NET composite formatting', () => {
    assert.equal(ev("[format('{0}-{1}', 'a', 2)]"), 'a-2');
    assert.equal(ev("[format('{0}, {1}. Formatted number: {2:N0}', 'Hello', 'User', 8175133)]"), 'Hello, User. Formatted number: 8,175,133');
    assert.equal(ev("[format('{{literal}} {0,4}|{0:D3}', 7)]"), '{literal}    7|007');
    fails("[format('{1}', 'a')]", /refers to argument '1'/);
  });
  test('resourceId: with and without subscription and group, nested types, trailing slash', () => {
    assert.equal(ev("[resourceId('Microsoft.Devices/IotHubs', 'h')]"), `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Devices/IotHubs/h`);
    assert.equal(ev("[resourceId('other', 'Microsoft.Devices/IotHubs', 'h')]"), `/subscriptions/${SUB}/resourceGroups/other/providers/Microsoft.Devices/IotHubs/h`);
    assert.equal(ev("[resourceId('s2', 'other', 'Microsoft.Devices/IotHubs', 'h')]"), '/subscriptions/s2/resourceGroups/other/providers/Microsoft.Devices/IotHubs/h');
    assert.equal(ev("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'sn')]"), `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sn`);
    assert.equal(ev("[resourceID('Microsoft.ManagedIdentity/userAssignedIdentities/', 'id1')]"), `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`);
    assert.equal(ev("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet/sn')]"), ev("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'sn')]"));
    fails("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet')]", /requires '2' resource name/);
    assert.equal(ev("[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r1')]"), `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/r1`);
    assert.equal(ev("[subscriptionResourceId('s9', 'Microsoft.Authorization/roleDefinitions', 'r1')]"), '/subscriptions/s9/providers/Microsoft.Authorization/roleDefinitions/r1');
    assert.equal(ev("[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]"), '/providers/Microsoft.Management/managementGroups/mg');
    assert.equal(ev("[extensionResourceId('/subscriptions/s/resourceGroups/g', 'Microsoft.Authorization/locks', 'l')]"), '/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/locks/l');
  });
  test('resourceGroup(), subscription(), deployment(), parameters(), variables(), copyIndex()', () => {
    assert.equal(ev('[resourceGroup().name]'), 'rg1');
    assert.equal(ev('[resourceGroup().id]'), `/subscriptions/${SUB}/resourceGroups/rg1`);
    assert.equal(ev('[resourceGroup().properties.provisioningState]'), 'Succeeded');
    assert.equal(ev('[subscription().subscriptionId]'), SUB);
    assert.equal(ev('[subscription().tenantId]'), 't1');
    assert.equal(ev('[deployment().name]'), 'dep1');
    assert.equal(ev("[parameters('count')]"), 3);
    assert.equal(ev("[variables('v')]"), 'x-var');
    assert.equal(ev('[copyIndex()]'), 2);
    assert.equal(ev('[copyIndex(1)]'), 3);
    assert.equal(ev("[copyIndex('loop', 10)]"), 12);
  });
  test('reference() and listKeys() go to the context', () => {
    assert.equal(ev("[reference('/x/y').p]"), 1);
    assert.deepEqual(ev("[reference('/x/y', '2021-03-31', 'Full')]"), { id: '/x/y', apiVersion: '2021-03-31', properties: { p: 1 } });
    assert.equal(ev("[listKeys('/h', '2021-03-31').keys[0].value]"), '/h@2021-03-31');
  });
  test('logic and comparison: if (lazy), equals, and/or/not, bool, true/false/null, coalesce, greater…', () => {
    assert.equal(ev("[if(true(), 'a', foo())]"), 'a', 'the branch not taken is not evaluated');
    assert.equal(ev("[if(equals(1, 2), 'a', 'b')]"), 'b');
    assert.equal(ev("[equals(createObject('a', createArray(1)), json('{\"a\":[1]}'))]"), true);
    assert.equal(ev("[equals('a', 'A')]"), false);
    assert.equal(ev('[and(true(), not(false()), or(false(), true()))]'), true);
    fails("[and(true(), 'x')]", /Boolean/);
    assert.equal(ev("[bool('TRUE')]"), true);
    assert.equal(ev('[bool(0)]'), false);
    assert.equal(ev('[null()]'), null);
    assert.equal(ev("[coalesce(null(), null(), 'c')]"), 'c');
    assert.equal(ev('[greater(2, 1)]'), true);
    assert.equal(ev("[lessOrEquals('a', 'b')]"), true);
    assert.equal(ev('[greaterOrEquals(1, 2)]'), false);
    assert.equal(ev('[less(1, 2)]'), true);
  });
  test('empty, length, toLower/toUpper, replace, split, substring, trim, startsWith/endsWith, indexOf', () => {
    assert.equal(ev("[empty('')]"), true);
    assert.equal(ev('[empty(createArray())]'), true);
    assert.equal(ev('[empty(json(\'{}\'))]'), true);
    assert.equal(ev('[empty(null())]'), true);
    assert.equal(ev("[empty('a')]"), false);
    assert.equal(ev("[length('abc')]"), 3);
    assert.equal(ev('[length(createArray(1, 2))]'), 2);
    assert.equal(ev("[length(createObject('a', 1))]"), 1);
    assert.equal(ev("[toLower('AbC')]"), 'abc');
    assert.equal(ev("[toUpper('AbC')]"), 'ABC');
    assert.equal(ev("[replace('a-b-c', '-', '')]"), 'abc');
    assert.deepEqual(ev("[split('a,b;c', createArray(',', ';'))]"), ['a', 'b', 'c']);
    assert.deepEqual(ev("[split('a/b', '/')]"), ['a', 'b']);
    assert.equal(ev("[substring('hello', 1, 3)]"), 'ell');
    assert.equal(ev("[substring('hello', 2)]"), 'llo');
    fails("[substring('hello', 3, 5)]", /must refer to a location within the string/);
    assert.equal(ev("[trim('  x ')]"), 'x');
    assert.equal(ev("[startsWith('Hello', 'he')]"), true);
    assert.equal(ev("[endsWith('Hello', 'LO')]"), true);
    assert.equal(ev("[indexOf('abcdef', 'CD')]"), 2);
    assert.equal(ev("[lastIndexOf('abcabc', 'b')]"), 4);
    assert.equal(ev("[indexOf(createArray('a', 'b'), 'b')]"), 1);
  });
  test('union, createArray, createObject, json, string, int, contains, first/last/take/skip, range, min/max, arithmetic', () => {
    assert.deepEqual(ev("[union(createObject('a', 1, 'n', createObject('x', 1)), createObject('b', 2, 'n', createObject('y', 2)))]"), { a: 1, n: { x: 1, y: 2 }, b: 2 });
    assert.deepEqual(ev("[union(createArray(1, 2), createArray(2, 3))]"), [1, 2, 3]);
    assert.deepEqual(ev("[createArray('a', 1, true())]"), ['a', 1, true]);
    assert.deepEqual(ev("[createObject('k', 'v', 'n', 1)]"), { k: 'v', n: 1 });
    fails("[createObject('k')]", /even number/);
    assert.deepEqual(ev("[json('{\"a\": [1, \"b\"]}')]"), { a: [1, 'b'] });
    assert.equal(ev("[json('null')]"), null);
    fails("[json('{nope')]", /not valid JSON/);
    assert.equal(ev("[string(createObject('a', 1))]"), '{"a":1}');
    assert.equal(ev('[string(true())]'), 'True');
    assert.equal(ev('[string(12)]'), '12');
    assert.equal(ev("[int('42')]"), 42);
    fails("[int('4x')]", /cannot convert/);
    assert.equal(ev("[contains('OneTwo', 'Two')]"), true);
    assert.equal(ev("[contains(createObject('one', 1), 'ONE')]"), true);
    assert.equal(ev("[contains(createArray(1, 2), 3)]"), false);
    assert.equal(ev("[first(createArray('x', 'y'))]"), 'x');
    assert.equal(ev("[last('abc')]"), 'c');
    assert.deepEqual(ev('[take(createArray(1, 2, 3), 2)]'), [1, 2]);
    assert.deepEqual(ev('[skip(createArray(1, 2, 3), 2)]'), [3]);
    assert.deepEqual(ev('[range(5, 3)]'), [5, 6, 7]);
    assert.equal(ev('[min(createArray(4, 2, 9))]'), 2);
    assert.equal(ev('[max(4, 2, 9)]'), 9);
    assert.equal(ev('[sub(10, mul(2, 3))]'), 4);
    assert.equal(ev('[div(7, 2)]'), 3);
    assert.equal(ev('[mod(7, 2)]'), 1);
    fails('[div(1, 0)]', /divide by zero/);
  });
  test('base64, base64ToString, uri, uriComponent, padLeft, guid, uniqueString', () => {
    assert.equal(ev("[base64('one, two')]"), 'b25lLCB0d28=');
    assert.equal(ev("[base64ToString('b25lLCB0d28=')]"), 'one, two');
    assert.equal(ev("[uri('http://contoso.org/firstpath', 'myscript.sh')]"), 'http://contoso.org/myscript.sh');
    assert.equal(ev("[uriComponent('a b/c')]"), 'a%20b%2Fc');
    assert.equal(ev("[uriComponentToString('a%20b')]"), 'a b');
    assert.equal(ev("[padLeft('7', 3, '0')]"), '007');
    assert.equal(ev("[guid('test')]"), 'd6a5baf1-8b9b-542a-8525-2982f1f98a0c');
    assert.equal(ev("[uniqueString('test')]"), 'rbgf3xv4ufgzg');
    fails('[uniqueString(1)]', /of type 'String'/);
  });
  test('newGuid() and utcNow() only where ARM allows them (parameter defaults)', () => {
    fails('[newGuid()]', /can only be used with parameter default values/);
    fails('[utcNow()]', /can only be used with parameter default values/);
    const e = env({ nonDeterministicAllowed: true });
    assert.match(String(ev('[newGuid()]', e)), /^[0-9a-f-]{36}$/);
    assert.match(String(ev("[utcNow('yyyy-MM-dd')]", e)), /^\d{4}-\d{2}-\d{2}$/);
  });
  test('wrong argument counts are refused', () => {
    fails("[toLower('a', 'b')]", /requires 1 argument/);
    fails('[resourceGroup(1)]', /requires 0 argument/);
  });
});
