import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSqlFilter, type SqlValue } from '../src/namespaces/serviceBus/sqlFilter.js';
import { ServiceBusError } from '../src/namespaces/serviceBus/errors.js';

const sys: Record<string, SqlValue> = { Label: 'alert', MessageId: 'm-1', To: 'ops', CorrelationId: 'c-9', ContentType: 'application/json' };
const user: Record<string, SqlValue> = { colour: 'red', count: 7, ratio: 0.5, ok: true, 'my-prop': 'x', pct: '50%' };
const lookup = (scope: 'sys' | 'user', name: string) => {
  const bag = scope === 'sys' ? sys : user;
  const key = Object.keys(bag).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : bag[key];
};
const evaluate = (expr: string) => parseSqlFilter(expr).evaluate(lookup);

describe('Service Bus SQL filters', () => {
  test('comparisons on system and application properties', () => {
    assert.equal(evaluate("sys.Label = 'alert'"), true);
    assert.equal(evaluate("sys.label = 'ALERT'"), false, 'string comparison is exact');
    assert.equal(evaluate("user.colour = 'red' AND count > 5"), true);
    assert.equal(evaluate('count >= 7 AND count <= 7 AND count <> 8 AND count != 6'), true);
    assert.equal(evaluate('count * 2 + 1 = 15 AND count % 2 = 1 AND -count < 0'), true);
    assert.equal(evaluate('ratio < 1.0 AND ok = TRUE'), true);
    assert.equal(evaluate("[my-prop] = 'x'"), true);
    assert.equal(evaluate("sys.To = 'ops' OR sys.To = 'dev'"), true);
    assert.equal(evaluate("NOT (sys.CorrelationId = 'c-9')"), false);
  });

  test('IN, LIKE with ESCAPE, EXISTS, IS NULL', () => {
    assert.equal(evaluate("colour IN ('blue', 'red')"), true);
    assert.equal(evaluate("colour NOT IN ('blue', 'red')"), false);
    assert.equal(evaluate("sys.ContentType LIKE 'application/%'"), true);
    assert.equal(evaluate("sys.MessageId LIKE 'm-_'"), true);
    assert.equal(evaluate("colour NOT LIKE 'r%'"), false);
    assert.equal(evaluate("pct LIKE '50!%' ESCAPE '!'"), true);
    assert.equal(evaluate("pct LIKE '5!%' ESCAPE '!'"), false);
    assert.equal(evaluate('EXISTS(colour) AND NOT EXISTS(missing)'), true);
    assert.equal(evaluate('missing IS NULL AND colour IS NOT NULL'), true);
  });

  test('three-valued logic: a missing property is unknown, and only TRUE matches', () => {
    assert.equal(evaluate("missing = 'x'"), null);
    assert.equal(evaluate("NOT (missing = 'x')"), null);
    assert.equal(evaluate("missing = 'x' OR colour = 'red'"), true);
    assert.equal(evaluate("missing = 'x' AND colour = 'red'"), null);
    assert.equal(evaluate("missing = 'x' AND colour = 'blue'"), false);
    assert.equal(evaluate("missing = 'x' OR colour = 'blue'"), null);
    assert.equal(evaluate("missing IN ('a')"), null);
    assert.equal(parseSqlFilter("NOT (missing = 'x')").matches(lookup), false);
    assert.equal(evaluate("count = '7'"), null, 'a number against a string is never equal');
    assert.equal(evaluate('1=1'), true);
    assert.equal(evaluate('1=0'), false);
  });

  test('a filter that does not parse is refused with the position', () => {
    const bad = (expr: string, position: number) =>
      assert.throws(
        () => parseSqlFilter(expr),
        (e: unknown) => e instanceof ServiceBusError && e.code === 'InvalidArgument' && e.message.includes(`position ${position}.`),
        expr,
      );
    bad("colour = 'red' AND", 19);
    bad("colour == 'red'", 9);
    bad("colour = 'red", 10);
    bad('', 1);
    bad('colour IN ()', 12);
    bad("colour LIKE 'a' ESCAPE 'ab'", 24);
    bad('foo.bar = 1', 1);
    bad("a = 1 'x'", 7);
  });
});
