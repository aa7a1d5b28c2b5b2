/**
 * IoT Hub's message routing query language: `compileRouteCondition(text)` parses a route's
 * condition once (with the hub's query parser in its routing dialect, src/hub/query/parser.ts),
 * checks what can be checked before any message arrives (functions, arity, operand types of
 * literals and function results), and returns a `RouteCondition` that evaluates per message in
 * memory with the one condition evaluator the hub has (src/hub/conditions/evaluate.ts, which
 * configurations' target conditions use too).
 *
 * Names, as IoT Hub resolves them:
 * - `$contentType`, `$connectionDeviceId`, … (aliases) and `$iothub-enqueuedtime`, `$content-type`,
 *   … (the stamped keys): system properties; a `$name` that is no system property is looked up among
 *   the application properties;
 * - `$body.a.b[0]`: the JSON body, only for `application/json` in UTF-8, UTF-16 or UTF-32;
 * - `$twin.tags…`, `$twin.properties.desired…`, `$twin.properties.reported…`: the device's (or
 *   module's) twin, handed to `matches`;
 * - any other name: an application property (`a.b` is the property named `a.b`).
 * Property names match exactly, else in any case. Values keep their types: a string property never
 * equals a number; `AS_NUMBER(p) > 3` converts.
 */
import type { Expr } from '../../query/ast.js';
import { QuerySyntaxError } from '../../query/lexer.js';
import { parseRouteCondition } from '../../query/parser.js';
import { evaluate, type Resolver, type Value } from '../../conditions/evaluate.js';
import type { PropertyValue } from '../../../store/eventLog.js';
import { RouteConditionError, type CompileRouteCondition, type RoutableMessage, type RouteCondition, type TwinView } from '../types.js';
import { bodyFormat, lookup, parse } from './body.js';

/** IoT Hub's query names for system properties, and the keys telemetry stamps them under. */
export const SYSTEM_PROPERTY_ALIASES: Record<string, string> = {
  messageid: 'message-id',
  correlationid: 'correlation-id',
  userid: 'user-id',
  to: 'to',
  contenttype: 'content-type',
  contentencoding: 'content-encoding',
  absoluteexpirytime: 'absolute-expiry-time',
  expirytimeutc: 'absolute-expiry-time',
  enqueuedtime: 'iothub-enqueuedtime',
  connectiondeviceid: 'iothub-connection-device-id',
  connectionmoduleid: 'iothub-connection-module-id',
  connectiondevicegenerationid: 'iothub-connection-auth-generation-id',
  connectionauthmethod: 'iothub-connection-auth-method',
  messagesource: 'iothub-message-source',
  componentname: 'dt-subject',
  interfacename: 'iothub-interface-name',
};

export const compileRouteCondition: CompileRouteCondition = (text: string): RouteCondition => {
  const source = text.trim() === '' ? 'true' : text;
  let expr: Expr;
  try {
    expr = parseRouteCondition(source);
    const top = check(expr);
    if (top !== 'any' && top !== 'boolean') throw new QuerySyntaxError(expr.pos, `the condition must be a boolean expression, not a ${top}`);
  } catch (e) {
    if (e instanceof QuerySyntaxError) {
      const { line, column } = lineAndColumn(source, e.position);
      throw new RouteConditionError(`Syntax error at line ${line}, column ${column}: ${e.detail}`, line, column);
    }
    throw e;
  }
  const refs = references(expr);
  return {
    text,
    needsTwin: refs.has('$twin'),
    needsBody: refs.has('$body'),
    matches: (message: RoutableMessage, twin?: TwinView) => evaluate(expr, messageResolver(message, twin)) === true,
  };
};

/** Resolves a condition's names against one message (the body is decoded at most once, when read). */
export function messageResolver(message: RoutableMessage, twin?: TwinView): Resolver {
  let body: { value: Value } | undefined;
  return (segments) => {
    const first = segments[0]!;
    const head = first.toLowerCase();
    if (head === '$body') {
      if (segments.length === 1) return undefined;
      body ??= { value: parsedBody(message) };
      // Only properties in the body are queryable, not the body as a whole (`$body[0]` is undefined).
      if (typeof body.value !== 'object' || body.value === null || Array.isArray(body.value)) return undefined;
      return pathIn(body.value, segments.slice(1), false);
    }
    if (head === '$twin') {
      if (segments.length === 1 || !twin) return undefined;
      return pathIn({ tags: twin.tags, properties: twin.properties } as Value, segments.slice(1), true);
    }
    const name = segments.join('.');
    if (first.startsWith('$')) {
      const bare = name.slice(1);
      const key = SYSTEM_PROPERTY_ALIASES[bare.toLowerCase()] ?? bare;
      const system = lookup(message.systemProperties, key);
      if (system !== undefined) return valueOf(system);
    }
    return valueOf(lookup(message.properties, name));
  };
}

/**
 * The body of the message evaluated last, parsed, so that the routes reading `$body` of one message
 * (evaluated one after the other) parse it once. Keyed by the message and its body buffer, checked
 * against the content type and encoding; one entry, as a WeakMap insert per message costs more
 * than the parse it saves.
 */
let lastBody: { message: RoutableMessage; body: Buffer; contentType?: string; encoding?: string; value: Value } | undefined;

function parsedBody(message: RoutableMessage): Value {
  const { contentType, encoding } = bodyFormat(message.systemProperties);
  const l = lastBody;
  if (l && l.message === message && l.body === message.body && l.contentType === contentType && l.encoding === encoding) return l.value;
  const value = parse(message.body, contentType, encoding);
  lastBody = { message, body: message.body, contentType, encoding, value };
  return value;
}

/** A typed property value as the query sees it. */
export function valueOf(v: PropertyValue | undefined): Value {
  if (v === undefined || v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return undefined;
  if (v.type === 'uuid' || v.type === 'symbol' || v.type === 'char') return String(v.value);
  const n = Number(v.value);
  return Number.isFinite(n) ? n : undefined;
}

/** Walks a JSON value; array items by index; twin names in any case (IoT Hub's twin queries are case-insensitive). */
function pathIn(root: Value, segments: string[], anyCase: boolean): Value {
  let v: Value = root;
  for (const s of segments) {
    if (Array.isArray(v)) {
      if (!/^\d+$/.test(s)) return undefined;
      v = v[Number(s)];
    } else if (typeof v === 'object' && v !== null) {
      v = anyCase ? lookup(v as Record<string, Value>, s) : Object.prototype.hasOwnProperty.call(v, s) ? (v as Record<string, Value>)[s] : undefined;
    } else return undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

function lineAndColumn(text: string, position: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, position - 1));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

/** The roots a condition reads: `$body`, `$twin` (lower-cased), and other names. */
function references(e: Expr, out = new Set<string>()): Set<string> {
  switch (e.kind) {
    case 'path':
      out.add(e.segments[0]!.toLowerCase());
      break;
    case 'not':
    case 'negate':
      references(e.operand, out);
      break;
    case 'compare':
    case 'logical':
    case 'arithmetic':
      references(e.left, out);
      references(e.right, out);
      break;
    case 'in':
      references(e.operand, out);
      e.list.forEach((x) => references(x, out));
      break;
    case 'call':
      e.args.forEach((x) => references(x, out));
      break;
    case 'array':
      e.items.forEach((x) => references(x, out));
      break;
    default:
      break;
  }
  return out;
}

// ---- what can be known before a message arrives: the types of literals and function results ----

type StaticType = 'number' | 'string' | 'boolean' | 'null' | 'any';

const RETURNS: Record<string, StaticType> = {
  ABS: 'number', EXP: 'number', POWER: 'number', SQUARE: 'number', CEILING: 'number', FLOOR: 'number', SIGN: 'number', SQRT: 'number',
  AS_NUMBER: 'number', LENGTH: 'number', INDEX_OF: 'number',
  IS_ARRAY: 'boolean', IS_BOOL: 'boolean', IS_DEFINED: 'boolean', IS_NULL: 'boolean', IS_NUMBER: 'boolean', IS_OBJECT: 'boolean', IS_PRIMITIVE: 'boolean', IS_STRING: 'boolean',
  STARTS_WITH: 'boolean', ENDS_WITH: 'boolean', CONTAINS: 'boolean',
  CONCAT: 'string', LOWER: 'string', UPPER: 'string', SUBSTRING: 'string',
};
/** What each function's arguments must be (the last entry repeats); type checks take anything. */
const TAKES: Record<string, StaticType[]> = {
  ABS: ['number'], EXP: ['number'], POWER: ['number'], SQUARE: ['number'], CEILING: ['number'], FLOOR: ['number'], SIGN: ['number'], SQRT: ['number'],
  CONCAT: ['string'], LENGTH: ['string'], LOWER: ['string'], UPPER: ['string'], INDEX_OF: ['string'],
  STARTS_WITH: ['string'], ENDS_WITH: ['string'], CONTAINS: ['string'], SUBSTRING: ['string', 'number'],
};

function fits(actual: StaticType, wanted: StaticType): boolean {
  return actual === 'any' || actual === wanted;
}

function mismatch(pos: number, what: string, wanted: string, actual: StaticType): QuerySyntaxError {
  return new QuerySyntaxError(pos, `${what} takes ${wanted} operands, not a ${actual}`);
}

/** The static type of an expression; throws when an operand's known type cannot work. */
function check(e: Expr): StaticType {
  switch (e.kind) {
    case 'literal':
      return e.value === null ? 'null' : (typeof e.value as StaticType);
    case 'path':
      return 'any';
    case 'not': {
      const t = check(e.operand);
      if (t !== 'any' && t !== 'boolean' && t !== 'null') throw mismatch(e.pos, 'NOT', 'boolean', t);
      return 'boolean';
    }
    case 'negate': {
      const t = check(e.operand);
      if (!fits(t, 'number')) throw mismatch(e.pos, "'-'", 'number', t);
      return 'number';
    }
    case 'logical': {
      for (const t of [check(e.left), check(e.right)]) if (t !== 'any' && t !== 'boolean' && t !== 'null') throw mismatch(e.pos, e.op, 'boolean', t);
      return 'boolean';
    }
    case 'arithmetic': {
      for (const t of [check(e.left), check(e.right)]) if (!fits(t, 'number')) throw mismatch(e.pos, `'${e.op}'`, 'number', t);
      return 'number';
    }
    case 'compare': {
      const a = check(e.left);
      const b = check(e.right);
      if (e.op === '=' || e.op === '!=') {
        if (a !== 'any' && b !== 'any' && a !== 'null' && b !== 'null' && a !== b) throw new QuerySyntaxError(e.pos, `'${e.op}' compares a ${a} with a ${b}, which is never true`);
      } else {
        for (const t of [a, b]) if (t === 'boolean' || t === 'null') throw mismatch(e.pos, `'${e.op}'`, 'number or string', t);
        if (a !== 'any' && b !== 'any' && a !== b) throw new QuerySyntaxError(e.pos, `'${e.op}' compares a ${a} with a ${b}, which is never true`);
      }
      return 'boolean';
    }
    case 'call': {
      const wanted = TAKES[e.name];
      e.args.forEach((arg, i) => {
        const t = check(arg);
        const want = wanted?.[Math.min(i, wanted.length - 1)];
        if (want && !fits(t, want)) throw new QuerySyntaxError(arg.pos, `argument ${i + 1} of ${e.name} must be a ${want}, not a ${t}`);
        if (e.name === 'AS_NUMBER' && t !== 'any' && t !== 'number' && t !== 'string') throw new QuerySyntaxError(arg.pos, `AS_NUMBER converts a string, not a ${t}`);
      });
      return RETURNS[e.name] ?? 'any';
    }
    default:
      return 'any';
  }
}
