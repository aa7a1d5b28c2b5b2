/**
 * The routing query language (compileRouteCondition), table-driven: system and application
 * properties, typed properties, `$body` with and without a JSON content type in each encoding,
 * `$twin`, each function, three-valued logic (undefined never matches, and neither does its NOT),
 * and compile errors with their line and column.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileRouteCondition } from '../src/hub/routing/query/index.js';
import { RouteConditionError, type RoutableMessage, type TwinView } from '../src/hub/routing/types.js';
import type { PropertyValue } from '../src/store/eventLog.js';
import { nonTelemetryMessage } from '../src/hub/routing/events/messages.js';

const weather = {
  Weather: {
    Temperature: 50,
    Time: '2017-03-09T00:00:00.000Z',
    PrevTemperatures: [20, 30, 40],
    IsEnabled: true,
    Nothing: null,
    Location: { Street: 'One Microsoft Way', City: 'Redmond', State: 'WA' },
    HistoricalData: [
      { Month: 'Feb', Temperature: 40 },
      { Month: 'Jan', Temperature: 30 },
    ],
    Unicode: 'Grüße 🌡',
  },
};

function utf16be(text: string): Buffer {
  const le = Buffer.from(text, 'utf16le');
  for (let i = 0; i < le.length; i += 2) [le[i], le[i + 1]] = [le[i + 1]!, le[i]!];
  return le;
}
function utf32(text: string, bigEndian = false, bom = false): Buffer {
  const cps = [...(bom ? '\ufeff' : ''), ...text].map((c) => c.codePointAt(0)!);
  const b = Buffer.alloc(cps.length * 4);
  cps.forEach((cp, i) => (bigEndian ? b.writeUInt32BE(cp, i * 4) : b.writeUInt32LE(cp, i * 4)));
  return b;
}

function message(over: { body?: Buffer; system?: Record<string, PropertyValue>; properties?: Record<string, PropertyValue> } = {}): RoutableMessage {
  return {
    source: 'DeviceMessages',
    deviceId: 'dev-1',
    body: over.body ?? Buffer.from(JSON.stringify(weather), 'utf8'),
    systemProperties: {
      'message-id': 'm-1',
      'correlation-id': 'c-1',
      'user-id': 'u-1',
      to: '/devices/dev-1/messages/events',
      'content-type': 'application/json',
      'content-encoding': 'utf-8',
      'absolute-expiry-time': '2030-01-01T00:00:00.000Z',
      'iothub-connection-device-id': 'dev-1',
      'iothub-connection-module-id': 'mod-1',
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub"}',
      'iothub-connection-auth-generation-id': '638000000000000000',
      'iothub-enqueuedtime': '2024-05-01T12:00:00.000Z',
      'iothub-message-source': 'Telemetry',
      'dt-dataschema': 'dtmi:com:example:Thermostat;1',
      'dt-subject': 'thermostat1',
      ...over.system,
    },
    properties: {
      processingPath: 'hot',
      severity: '4',
      verbose: 'true',
      'processing-path': 'cold',
      'a.b': 'dotted',
      'with space': 'spaced',
      $custom: 'dollar',
      count: 7,
      ratio: 0.5,
      flag: true,
      nothing: null,
      int32: { type: 'int', value: 12 },
      long: { type: 'long', value: '9007199254740993' },
      id: { type: 'uuid', value: '0b1e8c5e-7f5c-4a6e-8d2b-5b0e0d3e8a11' },
      when: new Date('2024-05-01T00:00:00.000Z'),
      blob: Buffer.from('bytes'),
      température: 21.5,
      ...over.properties,
    },
  };
}

const twin: TwinView = {
  tags: { deploymentLocation: { building: '43', floor: 1 }, Environment: 'prod' },
  properties: {
    desired: { telemetryConfig: { sendFrequency: '5m' }, $version: 1 },
    reported: { telemetryConfig: { sendFrequency: '5m', status: 'success' }, batteryLevel: 55, $version: 4 },
  },
};

type Outcome = true | false | undefined;
/** Checks the three values: true matches; false does not but its NOT does; undefined matches neither way. */
function outcome(condition: string, m: RoutableMessage = message(), t: TwinView | null = twin): Outcome {
  const yes = compileRouteCondition(condition).matches(m, t ?? undefined);
  const no = compileRouteCondition(`NOT (${condition})`).matches(m, t ?? undefined);
  assert.ok(!(yes && no), `${condition}: both it and its NOT matched`);
  return yes ? true : no ? false : undefined;
}

describe('routing query language', () => {
  test('system properties by their query names and by their stamped keys', () => {
    const cases: [string, Outcome][] = [
      ["$contentType = 'application/json'", true],
      ["$contentEncoding = 'utf-8'", true],
      ["$contentEncoding = 'UTF-8'", false],
      ["LOWER($contentEncoding) = 'utf-8'", true],
      ["$messageId = 'm-1'", true],
      ["$correlationId = 'c-1'", true],
      ["$userId = 'u-1'", true],
      ["$to = '/devices/dev-1/messages/events'", true],
      ["$absoluteExpiryTime > '2029'", true],
      ["$connectionDeviceId = 'dev-1'", true],
      ["$connectionModuleId = 'mod-1'", true],
      ["$connectionDeviceGenerationId = '638000000000000000'", true],
      ["CONTAINS($connectionAuthMethod, 'sas')", true],
      ["$enqueuedTime >= '2024-05-01'", true],
      ["$iothub-enqueuedtime < '2024-05-01'", false],
      ["$iothub-connection-device-id = 'dev-1'", true],
      ["$iothub-connection-auth-method = $connectionAuthMethod", true],
      ["$iothub-message-source = 'Telemetry'", true],
      ["$content-type = 'application/json'", true],
      ["$dt-dataschema = 'dtmi:com:example:Thermostat;1'", true],
      ["$dt-subject = 'thermostat1'", true],
      ["$CONNECTIONDEVICEID = 'dev-1'", true],
      ["$connectionDeviceId = 'dev-2'", false],
      ["$connectionDeviceId <> 'dev-2'", true],
      ["$nosuch = 'x'", undefined],
      ["$custom = 'dollar'", true], // a $name that is no system property is an application property
    ];
    for (const [c, want] of cases) assert.equal(outcome(c), want, c);
    const noModule = message({ system: { 'iothub-connection-module-id': undefined as unknown as string } });
    delete noModule.systemProperties['iothub-connection-module-id'];
    assert.equal(outcome('IS_DEFINED($connectionModuleId)', noModule), false);
    assert.equal(outcome("$connectionModuleId = 'mod-1'", noModule), undefined);
  });

  test('application properties: bare, dotted and dashed names, any case, typed values', () => {
    const cases: [string, Outcome][] = [
      ["processingPath = 'hot'", true],
      ["processingpath = 'hot'", true],
      ["processingPath = 'cold'", false],
      ["processing-path = 'cold'", true],
      ["processing - path = 1", undefined], // with spaces, '-' subtracts (two missing names)
      ["a.b = 'dotted'", true],
      ['température = 21.5', true],
      ["[[with space]] = 'spaced'", true],
      ["[[processing-path]] = 'cold'", true],
      ["severity = '4'", true],
      ['severity = 4', undefined], // a string property never equals a number
      ['severity > 3', undefined],
      ['AS_NUMBER(severity) > 3', true],
      ["verbose = 'true'", true],
      ['verbose = true', undefined],
      ['count = 7', true],
      ['count + 1 = 8 AND count * 2 = 14 AND count / 2 = 3.5 AND count % 4 = 3 AND count - 10 = -3', true],
      ['-count = -7', true],
      ['ratio < 1', true],
      ['flag', true],
      ['flag = true AND NOT flag = false', true],
      ['nothing = null', true],
      ['IS_NULL(nothing)', true],
      ['int32 = 12 AND int32 > 11', true],
      ['long > 9007199254740990', true],
      ["id = '0b1e8c5e-7f5c-4a6e-8d2b-5b0e0d3e8a11'", true],
      ["when = '2024-05-01T00:00:00.000Z'", true],
      ['IS_DEFINED(blob)', false], // binary has no query value
      ["missing = 'x'", undefined],
      ["missing != 'x'", undefined],
      ['IS_DEFINED(missing)', false],
    ];
    for (const [c, want] of cases) assert.equal(outcome(c), want, c);
  });

  test('$body: JSON in UTF-8, UTF-16 and UTF-32, only with the JSON content type, never sniffed', () => {
    const text = JSON.stringify(weather);
    const bodies: [string, Buffer, string][] = [
      ['utf-8', Buffer.from(text, 'utf8'), 'utf-8'],
      ['UTF-8 with a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]), 'UTF-8'],
      ['utf-16 (little-endian)', Buffer.from(text, 'utf16le'), 'utf-16'],
      ['UTF-16 with a little-endian BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]), 'UTF-16'],
      ['Utf-16 with a big-endian BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(text)]), 'Utf-16'],
      ['utf-32 (little-endian)', utf32(text), 'utf-32'],
      ['UTF-32 big-endian with a BOM', utf32(text, true, true), 'UTF-32'],
    ];
    const conditions: [string, Outcome][] = [
      ["$body.Weather.HistoricalData[0].Month = 'Feb'", true],
      ['$body.Weather.HistoricalData[1].Temperature = 30', true],
      ['$body.Weather.HistoricalData[2].Temperature = 30', undefined],
      ['$body.Weather.PrevTemperatures[2] = 40', true],
      ['$body.Weather.Temperature = 50 AND $body.Weather.IsEnabled', true],
      ["$body.Weather.Temperature = 50 AND processingPath = 'hot'", true],
      ['length($body.Weather.Location.State) = 2', true],
      ["$body.Weather.Location['City'] = 'Redmond'", true],
      ["$body.Weather.Unicode = 'Grüße 🌡'", true],
      ["$body.Weather.Unicode = \"Gr\\u00fc\\u00dfe \\ud83c\\udf21\"", true],
      ['IS_NULL($body.Weather.Nothing) AND IS_OBJECT($body.Weather.Location) AND IS_ARRAY($body.Weather.PrevTemperatures)', true],
      ['$body.weather.temperature = 50', undefined], // body paths are case-sensitive, as JSON is
      ['$body.Weather.Missing = 1', undefined],
      ["$body.Weather.Temperature = '50'", undefined],
    ];
    for (const [label, body, encoding] of bodies) {
      const m = message({ body, system: { 'content-encoding': encoding } });
      for (const [c, want] of conditions) assert.equal(outcome(c, m), want, `${label}: ${c}`);
    }
    // Without application/json (or with another encoding), $body is undefined, whatever the body holds.
    const unreadable: [string, Record<string, PropertyValue>][] = [
      ['no content type', { 'content-type': undefined as unknown as string }],
      ['text/plain', { 'content-type': 'text/plain' }],
      ['application/json; charset=utf-8', { 'content-type': 'application/json; charset=utf-8' }],
      ['no encoding', { 'content-encoding': undefined as unknown as string }],
      ['ascii', { 'content-encoding': 'ascii' }],
      ['utf8 (not a documented name)', { 'content-encoding': 'utf8' }],
    ];
    for (const [label, system] of unreadable) {
      const m = message({ system });
      for (const [k, v] of Object.entries(system)) if (v === undefined) delete m.systemProperties[k];
      assert.equal(outcome('$body.Weather.Temperature = 50', m), undefined, label);
      assert.equal(outcome('IS_DEFINED($body.Weather)', m), false, label);
    }
    assert.equal(outcome('$body.Weather.Temperature = 50', message({ system: { 'content-type': 'Application/JSON', 'content-encoding': 'UTF-8' } })), true);
    // A body that does not decode or parse is undefined too.
    assert.equal(outcome('IS_DEFINED($body.a)', message({ body: Buffer.from('{"a": 1', 'utf8') })), false);
    assert.equal(outcome('IS_DEFINED($body.a)', message({ body: Buffer.from([0xc3, 0x28]) })), false);
    assert.equal(outcome('IS_DEFINED($body.a)', message({ body: Buffer.from('{"a":1}', 'utf8'), system: { 'content-encoding': 'utf-16' } })), false, 'utf-8 bytes read as utf-16');
    assert.equal(outcome('$body.a = 1', message({ body: Buffer.from('{"a":1}', 'utf16le'), system: { 'content-encoding': 'utf-16' } })), true);
    // One body buffer read under another content type or encoding is read again, not taken from a cache.
    const shared = Buffer.from('{"a":1}', 'utf8');
    assert.equal(outcome('$body.a = 1', message({ body: shared, system: { 'content-type': 'text/plain' } })), undefined);
    assert.equal(outcome('$body.a = 1', message({ body: shared })), true);
    assert.equal(outcome('$body.a = 1', message({ body: shared, system: { 'content-encoding': 'utf-32' } })), undefined);
    // The whole body is not queryable, only properties in it.
    assert.equal(outcome('IS_DEFINED($body)', message({ body: Buffer.from('[1]') })), false);
    assert.equal(outcome('$body[0] = 1', message({ body: Buffer.from('[1]') })), undefined);
  });

  test('$twin: tags and desired and reported properties, names in any case', () => {
    const cases: [string, Outcome][] = [
      ["$twin.properties.desired.telemetryConfig.sendFrequency = '5m'", true],
      ["$body.Weather.Temperature = 50 AND $twin.properties.desired.telemetryConfig.sendFrequency = '5m'", true],
      ['$twin.tags.deploymentLocation.floor = 1', true],
      ["$twin.tags.deploymentLocation.building = '43'", true],
      ['$twin.tags.deploymentLocation.building = 43', undefined],
      ["$twin.tags.environment = 'prod'", true],
      ["$twin.properties.reported.telemetryConfig.status = 'success'", true],
      ['$twin.properties.reported.batteryLevel > 50', true],
      ['$twin.properties.reported.batteryLevel > 60', false],
      ['$twin.properties.reported.missing > 60', undefined],
      ['IS_OBJECT($twin.tags.deploymentLocation)', true],
    ];
    for (const [c, want] of cases) assert.equal(outcome(c), want, c);
    assert.equal(outcome('$twin.tags.deploymentLocation.floor = 1', message(), null), undefined, 'no twin: undefined');
    assert.equal(compileRouteCondition('$twin.tags.x = 1').needsTwin, true);
    assert.equal(compileRouteCondition('$TWIN.tags.x = 1').needsTwin, true);
    assert.equal(compileRouteCondition('$body.x = 1').needsTwin, false);
    assert.equal(compileRouteCondition('$body.x = 1').needsBody, true);
    assert.equal(compileRouteCondition("processingPath = 'hot' OR IS_DEFINED($body.x)").needsBody, true);
    assert.equal(compileRouteCondition("processingPath = 'hot'").needsBody, false);
  });

  test("non-telemetry events: IoT Hub's documented twin-change filters on their properties and JSON body", () => {
    const twinChange = nonTelemetryMessage({
      source: 'TwinChangeEvents',
      schema: 'twinChangeNotification',
      opType: 'updateTwin',
      hubName: 'hub-1',
      deviceId: 'dev-1',
      body: { version: 4, properties: { desired: { telemetryConfig: { sendFrequency: 15 } } } },
      at: new Date('2024-05-01T00:00:00.000Z'),
    });
    const cases: [string, Outcome][] = [
      ['$body.properties.desired.telemetryConfig.sendFrequency > 10', true],
      ['is_defined($body.properties.desired.telemetryConfig.sendFrequency)', true],
      ['is_defined($body.properties.reported)', false],
      ["opType = 'updateTwin' AND iothub-message-schema = 'twinChangeNotification' AND hubName = 'hub-1'", true],
      ["$iothub-message-source = 'twinChangeEvents' AND $connectionDeviceId = 'dev-1' AND $userId = 'hub-1'", true],
      ["deviceId = 'dev-1' AND operationTimestamp >= '2024-05-01'", true],
    ];
    for (const [c, want] of cases) assert.equal(outcome(c, twinChange), want, c);
  });

  test('each function', () => {
    const cases: [string, Outcome][] = [
      ['ABS(-2) = 2 AND ABS(count) = 7', true],
      ['EXP(0) = 1 AND EXP(1) > 2.718 AND EXP(1) < 2.719', true],
      ['POWER(2, 10) = 1024 AND POWER(count, 2) = 49', true],
      ['SQUARE(3) = 9', true],
      ['CEILING(2.1) = 3 AND CEILING(-2.1) = -2', true],
      ['FLOOR(2.9) = 2 AND FLOOR(-2.1) = -3', true],
      ['SIGN(-4) = -1 AND SIGN(0) = 0 AND SIGN(ratio) = 1', true],
      ['SQRT(16) = 4', true],
      ['SQRT(-1) = 1', undefined],
      ['POWER(10, 400) > 1', undefined], // beyond the numbers
      ['count / 0 = 1', undefined],
      ["AS_NUMBER('3.5') = 3.5 AND AS_NUMBER(count) = 7 AND AS_NUMBER(' -2e3 ') = -2000", true],
      ["AS_NUMBER('abc') = 1", undefined],
      ['IS_NUMBER(AS_NUMBER(severity))', true],
      ['IS_ARRAY($body.Weather.PrevTemperatures) AND NOT IS_ARRAY($body.Weather)', true],
      ['IS_BOOL(flag) AND NOT IS_BOOL(verbose)', true],
      ['IS_DEFINED(processingPath) AND NOT IS_DEFINED(nope)', true],
      ['IS_NULL(nothing) AND NOT IS_NULL(missing)', true],
      ['IS_NUMBER(count) AND NOT IS_NUMBER(severity)', true],
      ['IS_OBJECT($body.Weather) AND NOT IS_OBJECT(count)', true],
      ['IS_PRIMITIVE(count) AND IS_PRIMITIVE(nothing) AND NOT IS_PRIMITIVE($body.Weather)', true],
      ['IS_STRING(severity) AND NOT IS_STRING(count)', true],
      ["CONCAT(processingPath, '-', $connectionDeviceId) = 'hot-dev-1'", true],
      ["CONCAT('a', count) = 'a7'", undefined],
      ['LENGTH(processingPath) = 3', true],
      ["LOWER('ABC') = 'abc' AND UPPER(processingPath) = 'HOT'", true],
      ["SUBSTRING('routing', 3) = 'ting' AND SUBSTRING('routing', 0, 5) = 'routi' AND SUBSTRING('routing', 2, 100) = 'uting'", true],
      ["INDEX_OF('routing', 'ut') = 2 AND INDEX_OF('routing', 'x') = -1", true],
      ["STARTS_WITH($connectionDeviceId, 'dev') AND ENDS_WITH($connectionDeviceId, '-1') AND CONTAINS($connectionDeviceId, 'v-')", true],
      ["STARTS_WITH($connectionDeviceId, 'x')", false],
      ["starts_with(missing, 'x')", undefined],
      ["LENGTH(count) = 1", undefined],
    ];
    for (const [c, want] of cases) assert.equal(outcome(c), want, c);
  });

  test('three-valued logic: undefined propagates and never matches', () => {
    const cases: [string, Outcome][] = [
      ["missing = 1 OR processingPath = 'hot'", true],
      ["missing = 1 OR processingPath = 'cold'", undefined],
      ["missing = 1 AND processingPath = 'cold'", false],
      ["missing = 1 AND processingPath = 'hot'", undefined],
      ['NOT missing = 1', undefined],
      ['missing', undefined],
      ['count', undefined], // not a boolean: no match either way
      ['nothing', undefined],
      ["severity = 4 OR severity = '4'", true],
      ['true', true],
      ['false', false],
      ['TRUE AND NOT FALSE', true],
      ['null = null', true],
      ['(1 + 2) * 3 = 9 AND 1 + 2 * 3 = 7', true],
      ["'abc' < 'abd' AND 2 >= 2 AND 2 <= 2 AND 1 != 2 AND 1 <> 2", true],
      ['0x1F = 31', true],
      ['1.5e1 = 15', true],
      ["\"double\" = 'double' AND 'it''s' = \"it's\" AND 'it\\'s' = 'it''s'", true],
      ["/* a comment */ processingPath = 'hot'", true],
      ["processingPath = 'hot'\n  AND\n  $connectionDeviceId = 'dev-1'", true],
    ];
    for (const [c, want] of cases) assert.equal(outcome(c), want, c);
    assert.equal(compileRouteCondition('').matches(message()), true, 'an empty condition is true');
    assert.equal(compileRouteCondition('  ').matches(message()), true);
    assert.equal(compileRouteCondition('x = 1').text, 'x = 1');
  });

  test('compile errors name the line and column', () => {
    const cases: [string, number, number, RegExp][] = [
      ['processingPath = ', 1, 18, /unexpected end of condition/],
      ["processingPath = 'hot", 1, 18, /unterminated string/],
      ["processingPath == 'hot'", 1, 17, /unexpected '='/],
      ["processingPath = 'hot' AND", 1, 27, /unexpected end/],
      ["(processingPath = 'hot'", 1, 24, /expected '\)'/],
      ["processingPath = 'hot')", 1, 23, /unexpected '\)'/],
      ['nosuch(1) = 1', 1, 1, /unknown function 'nosuch'/],
      ["STARTSWITH(a, 'b')", 1, 1, /unknown function/], // the twin query spelling is not routing's
      ['ABS(1, 2) = 1', 1, 1, /ABS takes 1 argument, not 2/],
      ["CONCAT('a') = 'a'", 1, 1, /CONCAT takes at least 2 arguments/],
      ["SUBSTRING('a') = 'a'", 1, 1, /SUBSTRING takes 2 to 3 arguments/],
      ["x IN ['a', 'b']", 1, 3, /IN is not part of/],
      ['x NOT IN (1)', 1, 3, /NOT is not part of|IN is not part of/],
      ["'a' + 1 = 2", 1, 5, /'\+' takes number operands, not a string/],
      ["ABS('x') = 1", 1, 5, /argument 1 of ABS must be a number/],
      ["LOWER(1) = 'a'", 1, 7, /argument 1 of LOWER must be a string/],
      ["1 = 'a'", 1, 3, /compares a number with a string/],
      ['true < false', 1, 6, /number or string/],
      ['NOT 3', 1, 1, /NOT takes boolean operands/],
      ["'x' AND true", 1, 5, /AND takes boolean operands/],
      ['3', 1, 1, /must be a boolean expression, not a number/],
      ["processingPath = 'hot'\nAND $body.x[-1] = 2", 2, 13, /array index/],
      ["a = 1 AND\r\n  b = #", 2, 7, /unexpected character '#'/],
      ["a = 1 /* not closed", 1, 7, /unterminated comment/],
      ['0x = 1', 1, 1, /invalid hexadecimal/],
      ['a = 1 AND AND b = 1', 1, 11, /unexpected keyword 'AND'/],
      ['[1] = 1', 1, 1, /unexpected '\['/],
      // No input exhausts the stack: nesting is bounded.
      ['NOT '.repeat(100_000) + 'true', 1, 257, /nested more than 64 levels/],
      ['-'.repeat(100_000) + '1 = 1', 1, 65, /nested more than 64 levels/],
      ['('.repeat(100_000) + 'true', 1, 65, /nested more than 64 levels/],
      ['ABS('.repeat(10_000) + '1', 1, 257, /nested more than 64 levels/],
      ['a = 1 AND '.repeat(300) + 'true', 1, 427, /more than 256 operators/],
    ];
    for (const [text, line, column, message] of cases) {
      const c = text.length > 80 ? `${text.slice(0, 40)}… (${text.length} characters)` : text;
      assert.throws(
        () => compileRouteCondition(text),
        (e: unknown) => {
          assert.ok(e instanceof RouteConditionError, `${c}: ${String(e)}`);
          assert.match(e.message, message, c);
          assert.deepEqual([e.line, e.column], [line, column], `${c}: ${e.message}`);
          assert.match(e.message, new RegExp(`line ${line}, column ${column}`), c);
          return true;
        },
        c,
      );
    }
  });

  test('fuzz: any text compiles or is a RouteConditionError; evaluation never throws, whatever the message', () => {
    const pieces = [
      ' ', '(', ')', ',', '.', '[', ']', '[0]', '=', '!=', '<>', '<', '>=', '+', '-', '*', '/', '%', 'AND', 'OR', 'NOT', 'IN',
      'true', 'null', '1', '2.5e3', '0x1f', "'s'", '"d"', "'", '"', '\\u00e9', '/*', '*/', '$body', '$body.a', '$body.a[1].b', '$twin.tags.t',
      '$twin.properties.reported.r', '$contentType', '$iothub-enqueuedtime', 'p', 'p-q', 'a.b', '[[x y]]', 'ABS(', 'CONCAT(', 'SUBSTRING(',
      'AS_NUMBER(', 'IS_DEFINED(', 'LENGTH(', 'STARTS_WITH(', '\n', 'é',
    ];
    const soup = fc.array(fc.constantFrom(...pieces), { maxLength: 24 }).map((xs) => xs.join(' '));
    // Well-formed expressions of every shape (most compile; some are refused for their types).
    const functions = ['ABS', 'EXP', 'POWER', 'SQUARE', 'CEILING', 'FLOOR', 'SIGN', 'SQRT', 'AS_NUMBER', 'IS_ARRAY', 'IS_BOOL', 'IS_DEFINED', 'IS_NULL', 'IS_NUMBER', 'IS_OBJECT', 'IS_PRIMITIVE', 'IS_STRING', 'CONCAT', 'LENGTH', 'LOWER', 'UPPER', 'SUBSTRING', 'INDEX_OF', 'STARTS_WITH', 'ENDS_WITH', 'CONTAINS'];
    const { expr } = fc.letrec<{ expr: string; leaf: string }>((tie) => ({
      leaf: fc.constantFrom('p', 'p-q', 'a.b', '[[x y]]', 'P', '$body.a', '$body.a[0]', '$body.a.b', '$twin.tags.t', '$twin.properties.reported.r', '$contentType', '$connectionDeviceId', "'s'", '"d"', '1', '-2.5', '0x10', 'true', 'null'),
      expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tie('leaf'),
        fc.tuple(tie('expr'), fc.constantFrom('=', '!=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', 'AND', 'OR'), tie('expr')).map(([l, op, r]) => `${l} ${op} ${r}`),
        tie('expr').map((e) => `NOT ${e}`),
        tie('expr').map((e) => `(${e})`),
        fc.tuple(fc.constantFrom(...functions), fc.array(tie('expr'), { minLength: 1, maxLength: 3 })).map(([f, args]) => `${f}(${args.join(', ')})`),
      ),
    }));
    const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });
    const propertyValue = fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.constant(null), fc.integer().map((n) => ({ type: 'int' as const, value: n })));
    const randomMessage = fc.record({
      body: fc.oneof(json.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))),
      encoding: fc.constantFrom('utf-8', 'UTF-16', 'utf-32', 'latin1'),
      properties: fc.dictionary(fc.constantFrom('p', 'p-q', 'a.b', 'x y', 'P'), propertyValue),
      tags: fc.dictionary(fc.constantFrom('t', 'T'), json),
    });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), soup, expr, expr), randomMessage, (text, r) => {
        let condition;
        try {
          condition = compileRouteCondition(text);
        } catch (e) {
          assert.ok(e instanceof RouteConditionError, `${JSON.stringify(text)}: ${String(e)}`);
          assert.ok(e.line >= 1 && e.column >= 1);
          return;
        }
        const m = message({ body: r.body, system: { 'content-encoding': r.encoding }, properties: r.properties });
        const result = condition.matches(m, { tags: r.tags as Record<string, unknown>, properties: { reported: { r: 1 } } });
        assert.equal(typeof result, 'boolean');
      }),
      { numRuns: 3000 },
    );
  });
});
