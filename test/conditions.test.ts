import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, matches, pathIn } from '../src/hub/conditions/evaluate.js';
import { parseTargetCondition } from '../src/hub/conditions/targetCondition.js';
import { parseCondition, parseQuery } from '../src/hub/query/parser.js';
import { HubError } from '../src/core/errors.js';

const twin = {
  deviceId: 'd1',
  status: 'enabled',
  tags: { building: '43', floor: 2, location: { city: 'Tacoma' }, list: [1, 2], flag: true, nothing: null },
  properties: { desired: { interval: 10 }, reported: { x: 5, fw: '1.2.3' } },
  configurations: { 'my-config': { status: 'Applied' } },
};

const holds = (condition: string, doc: object = twin) => matches(parseCondition(condition), doc);
const value = (condition: string, doc: object = twin) => evaluate(parseCondition(condition), pathIn(doc));

describe('condition evaluator', () => {
  test('comparisons are type-strict', () => {
    assert.equal(holds("tags.building = '43'"), true);
    assert.equal(holds('tags.building = 43'), false, 'a string never equals a number');
    assert.equal(value('tags.building = 43'), undefined, 'it is undefined, not false');
    assert.equal(holds('tags.floor >= 2 AND tags.floor < 3'), true);
    assert.equal(holds("tags.location.city > 'S'"), true, 'strings are ordered');
    assert.equal(holds('tags.flag = true'), true);
    assert.equal(holds('tags.flag > false'), false, 'booleans are not ordered');
    assert.equal(holds('tags.nothing = null'), true);
    assert.equal(holds('tags.floor != 3'), true);
    assert.equal(holds("deviceId = 'd1' AND status = 'enabled'"), true);
    assert.equal(holds('properties.reported.x > 3'), true);
    assert.equal(holds('properties.reported.x + 1 = 6 AND properties.reported.x % 2 = 1'), true);
    assert.equal(holds('-properties.reported.x = -5'), true);
  });

  test('and, or, not in three-valued logic: a missing property is undefined', () => {
    assert.equal(value('tags.missing = 1'), undefined);
    assert.equal(value('NOT tags.missing = 1'), undefined, 'NOT undefined is undefined');
    assert.equal(holds('NOT tags.missing = 1'), false, 'and undefined does not match');
    assert.equal(holds("tags.missing = 1 OR tags.building = '43'"), true, 'undefined OR true is true');
    assert.equal(value('tags.missing = 1 OR tags.floor = 3'), undefined, 'undefined OR false is undefined');
    assert.equal(value('tags.missing = 1 AND tags.floor = 3'), false, 'undefined AND false is false');
    assert.equal(value('tags.missing = 1 AND tags.floor = 2'), undefined, 'undefined AND true is undefined');
    assert.equal(holds('NOT tags.floor = 3'), true);
    assert.equal(holds('tags.missing != 1'), false, '!= with undefined does not match either');
  });

  test('IN, NIN and functions', () => {
    assert.equal(holds("tags.building IN ['42', '43']"), true);
    assert.equal(holds("tags.building NIN ['42', '43']"), false);
    assert.equal(holds('tags.floor NOT IN [1, 3]'), true);
    assert.equal(value('tags.missing IN [1]'), undefined);
    assert.equal(holds('IS_DEFINED(tags.building) AND NOT IS_DEFINED(tags.missing)'), true);
    assert.equal(holds('IS_NULL(tags.nothing) AND IS_OBJECT(tags.location) AND IS_ARRAY(tags.list) AND IS_BOOL(tags.flag)'), true);
    assert.equal(holds('IS_STRING(tags.building) AND IS_NUMBER(tags.floor) AND IS_PRIMITIVE(tags.nothing) AND NOT IS_PRIMITIVE(tags.list)'), true);
    assert.equal(holds("STARTSWITH(properties.reported.fw, '1.2') AND ENDSWITH(properties.reported.fw, '.3') AND CONTAINS(properties.reported.fw, '2.')"), true);
    assert.equal(holds("LOWER(tags.location.city) = 'tacoma' AND UPPER(tags.location.city) = 'TACOMA' AND LENGTH(tags.location.city) = 6"), true);
    assert.equal(holds('ABS(-2) = 2 AND FLOOR(2.5) = 2 AND CEILING(2.5) = 3'), true);
    assert.equal(value('STARTSWITH(tags.floor, 1)'), undefined, 'a function of the wrong type is undefined');
  });

  test('[[…]] quoted names reach properties whose names the grammar cannot spell', () => {
    assert.equal(holds("configurations.[[my-config]].status = 'Applied'"), true);
    assert.equal(holds("configurations.[[other]].status = 'Applied'"), false);
    const q = parseQuery("SELECT deviceId FROM devices WHERE configurations.[[a-b+c%_*!']].status = 'Applied'");
    assert.deepEqual((q.where as any).left.segments, ['configurations', "a-b+c%_*!'", 'status']);
    assert.throws(() => parseCondition('configurations.[[x].status = 1'), (e: unknown) => e instanceof HubError && /unterminated name/.test(e.message));
    assert.equal(holds("tags.[[building]] = '43'"), true);
  });

  test('target conditions: *, a WHERE condition, FROM devices.modules WHERE', () => {
    assert.deepEqual(parseTargetCondition('*'), { collection: 'devices', whereText: '' });
    assert.deepEqual(parseTargetCondition(''), { collection: 'devices', whereText: '' });
    const d = parseTargetCondition("tags.building='43' and properties.reported.x > 3");
    assert.equal(d.collection, 'devices');
    assert.equal(matches(d.where!, twin), true);
    const m = parseTargetCondition("FROM devices.modules WHERE tags.role = 'sensor'");
    assert.equal(m.collection, 'devices.modules');
    assert.equal(m.whereText, "tags.role = 'sensor'");
    assert.equal(matches(m.where!, { tags: { role: 'sensor' } }), true);
    assert.equal(parseTargetCondition('select * from devices.modules').collection, 'devices.modules');
    for (const bad of ["tags.x = 'unterminated", 'tags.x = = 1', 'FROM devices.modules WHERE', 'FROM devices.jobs WHERE x = 1']) {
      assert.throws(() => parseTargetCondition(bad), (e: unknown) => e instanceof HubError && e.code === 'ArgumentInvalid', bad);
    }
  });
});
