/** Strings and values that tend to break parsers: empty, huge, control characters, bad percent-escapes, unicode. */
import fc from 'fast-check';

export const oddString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string({ maxLength: 40 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      '', ' ', '/', '//', '#', '+', '$', '%', '%zz', '%E0%A4', '%00', '\u0000', '\uD800', '..', '?', '&', '=', '&&==', '?$rid=',
      'null', 'undefined', '__proto__', 'constructor', '[]', '{}', '-1', '1e309', 'NaN', '\r\n', 'a'.repeat(129), 'é'.repeat(200),
    ),
    weight: 3,
  },
  { arbitrary: fc.integer({ min: 100, max: 70_000 }).map((n) => 'x'.repeat(n)), weight: 1 },
);

/** A JSON-ish body: valid JSON of any shape, near-JSON, or anything. */
export const oddBody: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.json({ maxDepth: 4 }), weight: 4 },
  { arbitrary: fc.json({ maxDepth: 2 }).map((j) => j.slice(0, Math.max(0, j.length - 1))), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n)), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 2000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)), weight: 1 },
  { arbitrary: oddString, weight: 2 },
  { arbitrary: fc.constantFrom('{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '{"a":1e999}', '"\\ud800"', 'null', '[]', '{"properties":null}', '{"properties":{"desired":[]}}'), weight: 2 },
);

export const oddNumberString: fc.Arbitrary<string> = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom('', '0', '-1', '4294967296', '1e3', '0x10', ' 1', 'NaN', 'Infinity', '99999999999999999999999'),
  oddString,
);
