import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCondition, parseQuery } from '../src/hub/query/parser.js';
import { HubError } from '../src/core/errors.js';

const syntax = (position: number, text?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof HubError, String(e));
  assert.equal(e.code, 'ArgumentInvalid');
  assert.match(e.message, new RegExp(`^Syntax error at position ${position}: `));
  if (text) assert.match(e.message, text);
  return true;
};

describe('query parser', () => {
  test('good queries parse into the expected shape', () => {
    const q = parseQuery("SELECT TOP 10 deviceId, tags.location.building AS b, COUNT() AS n FROM devices WHERE tags.x = 'a' GROUP BY deviceId, tags.location.building");
    assert.equal(q.top, 10);
    assert.equal(q.from, 'devices');
    assert.deepEqual(q.select === '*' ? [] : q.select.map((s) => s.name), ['deviceId', 'b', 'n']);
    assert.equal(q.groupBy?.length, 2);

    const m = parseQuery("select * from DEVICES.MODULES where devices.modules.moduleId = 'm' and NOT properties.reported.ok");
    assert.equal(m.from, 'devices.modules');
    assert.equal(m.where?.kind, 'logical');
    const where = m.where as any;
    assert.deepEqual(where.left.left.segments, ['moduleId'], 'collection prefix removed');
    assert.equal(where.right.kind, 'not');

    const p = parseCondition("a.b >= -2.5e1 OR x <> 3 AND y NOT IN ['q'] OR z NIN (1, 2) OR tags['odd key'] = null");
    assert.equal(p.kind, 'logical');
    assert.equal((p as any).op, 'OR', 'AND binds tighter than OR');
    const arith = parseCondition('a + b * 2 - c % 3 = 4') as any;
    assert.equal(arith.left.op, '-');
    assert.equal(arith.left.left.right.op, '*');
    assert.deepEqual(parseCondition("x = 'it''s'"), { kind: 'compare', op: '=', left: { kind: 'path', segments: ['x'], pos: 1 }, right: { kind: 'literal', value: "it's", pos: 5 }, pos: 3 });
    assert.deepEqual((parseCondition('DeviceId = 1') as any).left.segments, ['deviceId'], 'twin fields ignore case');
  });

  test('bad queries name the position of the problem', () => {
    assert.throws(() => parseQuery(''), syntax(1, /empty/));
    assert.throws(() => parseQuery('SELEC * FROM devices'), syntax(1, /expected SELECT/));
    assert.throws(() => parseQuery('SELECT * FROM'), syntax(14, /end of query/));
    assert.throws(() => parseQuery('SELECT * FROM devices.things'), syntax(15, /unknown collection/));
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE a = 1 b'), syntax(35, /unexpected 'b'/));
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE (a = 1'), syntax(35, /expected '\)'/));
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE a IN 1'), syntax(34, /list/));
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE a = #'), syntax(33, /unexpected character/));
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE STARTSWITH(a)'), syntax(29, /takes 2 arguments/));
    assert.throws(() => parseQuery('SELECT * FROM devices GROUP BY a'), syntax(32, /not \*/));
    assert.throws(() => parseQuery('SELECT a, b FROM devices GROUP BY a'), syntax(11, /'b' is neither/));
    assert.throws(() => parseQuery('SELECT a, a FROM devices'), syntax(11, /more than once/));
    // Long runs of NOT or unary minus are bounded like parentheses (no stack overflow).
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE ' + 'NOT '.repeat(100_000) + 'true'), syntax(285, /nested more than 64/));
    assert.throws(() => parseQuery('SELECT * FROM devices WHERE x = ' + '-'.repeat(100_000) + '1'), syntax(97, /nested more than 64/));
    assert.throws(() => parseQuery('SELECT TOP x * FROM devices'), syntax(12, /TOP/));
    assert.throws(() => parseQuery('SELECT COUNT(a) FROM devices'), syntax(8, /COUNT takes 0/));
    assert.throws(() => parseQuery('SELECT * FROM devices.jobs GROUP BY status'), syntax(37, /GROUP BY/));
    assert.throws(() => parseCondition('12abc = 1'), syntax(1, /invalid number/));
    assert.throws(() => parseCondition('a = 1 AND'), syntax(10, /end of query/));
    assert.throws(() => parseCondition('('.repeat(200) + 'a = 1' + ')'.repeat(200)), syntax(65, /nested/));
    assert.throws(() => parseCondition(Array.from({ length: 400 }, (_, i) => `a = ${i}`).join(' OR ')), /split it/);
    assert.doesNotThrow(() => parseCondition(Array.from({ length: 200 }, (_, i) => `a = ${i}`).join(' OR ')));
  });
});
