/**
 * Evaluates a parsed condition (the query language's WHERE grammar) against one JSON document in
 * memory: configurations' target conditions over a twin, and message routing's conditions over a
 * message (src/hub/routing/query resolves `$body`, `$twin`, system and application names).
 *
 * IoT Hub's rules, as the SQL compiler applies them in the store: comparisons are type-strict
 * (a string never equals a number), a missing property is undefined, and undefined propagates
 * through three-valued logic (NOT undefined is undefined, undefined OR true is true); a condition
 * holds only when it evaluates to boolean true.
 */
import type { Expr } from '../query/ast.js';

/** What an expression evaluates to: a JSON value, or undefined (missing, or no answer). */
export type Value = string | number | boolean | null | Value[] | { [key: string]: Value } | undefined;

/** Looks a path up in the document; `resolve` lets a caller map twin fields onto its own shape. */
export type Resolver = (segments: string[]) => Value;

/** True only when the condition evaluates to boolean true (undefined and false do not match). */
export function matches(condition: Expr, doc: object): boolean {
  return evaluate(condition, pathIn(doc)) === true;
}

/** Reads `segments` from a plain JSON document. */
export function pathIn(doc: object): Resolver {
  return (segments) => {
    let v: unknown = doc;
    for (const s of segments) {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, s)) return undefined;
      v = (v as Record<string, unknown>)[s];
    }
    return v as Value;
  };
}

type Kind = 'number' | 'string' | 'boolean' | 'null' | 'object' | 'array';

function kindOf(v: Value): Kind | undefined {
  if (v === undefined) return undefined;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as Kind;
}

const ORDERED: Kind[] = ['number', 'string'];
const EQUATABLE: Kind[] = ['number', 'string', 'boolean', 'null'];

export function evaluate(e: Expr, resolve: Resolver): Value {
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'array':
      return e.items.map((i) => evaluate(i, resolve)).filter((v) => v !== undefined);
    case 'path':
      return resolve(e.segments);
    case 'not': {
      const v = evaluate(e.operand, resolve);
      return typeof v === 'boolean' ? !v : undefined;
    }
    case 'logical': {
      const a = asBool(evaluate(e.left, resolve));
      // Short-circuit only where the answer cannot change (false AND x, true OR x).
      if (e.op === 'AND' && a === false) return false;
      if (e.op === 'OR' && a === true) return true;
      const b = asBool(evaluate(e.right, resolve));
      if (e.op === 'AND') return b === false ? false : a === true && b === true ? true : undefined;
      return b === true ? true : a === false && b === false ? false : undefined;
    }
    case 'compare':
      return compare(e.op, evaluate(e.left, resolve), evaluate(e.right, resolve));
    case 'in': {
      const o = evaluate(e.operand, resolve);
      let sawUndefined = false;
      for (const item of e.list) {
        const r = compare('=', o, evaluate(item, resolve));
        if (r === true) return !e.negated;
        if (r === undefined) sawUndefined = true;
      }
      return sawUndefined ? undefined : e.negated;
    }
    case 'negate': {
      const v = evaluate(e.operand, resolve);
      return typeof v === 'number' ? -v : undefined;
    }
    case 'arithmetic': {
      const a = evaluate(e.left, resolve);
      const b = evaluate(e.right, resolve);
      if (typeof a !== 'number' || typeof b !== 'number') return undefined;
      const r = e.op === '+' ? a + b : e.op === '-' ? a - b : e.op === '*' ? a * b : e.op === '/' ? a / b : a % b;
      return Number.isFinite(r) ? r : undefined;
    }
    case 'call':
      return call(e.name, e.args.map((a) => evaluate(a, resolve)));
    case 'aggregate':
      // Aggregates belong to SELECT lists over many documents, never to one document's condition.
      return undefined;
  }
}

function asBool(v: Value): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

function compare(op: string, a: Value, b: Value): boolean | undefined {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === undefined || kb === undefined || ka !== kb) return undefined;
  if (op === '=' || op === '!=') {
    if (!EQUATABLE.includes(ka)) return undefined;
    const same = a === b;
    return op === '=' ? same : !same;
  }
  if (!ORDERED.includes(ka)) return undefined;
  const x = a as number | string;
  const y = b as number | string;
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
    default:
      return undefined;
  }
}

/** A number, or undefined when the arithmetic left the finite numbers (NaN, ±Infinity). */
const finite = (n: number): Value => (Number.isFinite(n) ? (Object.is(n, -0) ? 0 : n) : undefined);
const num = (v: Value): v is number => typeof v === 'number';
const str = (v: Value): v is string => typeof v === 'string';
/** What AS_NUMBER reads: a decimal number, optionally signed, with an exponent; nothing else. */
const NUMBER_TEXT = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

function call(name: string, args: Value[]): Value {
  const [a, b, c] = args;
  const k = kindOf(a);
  switch (name) {
    // Routing's math, type-casting and string functions (IoT Hub's names): undefined for the wrong types.
    case 'EXP':
      return num(a) ? finite(Math.exp(a)) : undefined;
    case 'POWER':
      return num(a) && num(b) ? finite(Math.pow(a, b)) : undefined;
    case 'SQUARE':
      return num(a) ? finite(a * a) : undefined;
    case 'SIGN':
      return num(a) ? finite(Math.sign(a)) : undefined;
    case 'SQRT':
      return num(a) ? finite(Math.sqrt(a)) : undefined;
    case 'AS_NUMBER':
      if (num(a)) return a;
      return str(a) && NUMBER_TEXT.test(a) ? finite(Number(a)) : undefined;
    case 'CONCAT':
      return args.every(str) ? (args as string[]).join('') : undefined;
    case 'SUBSTRING': {
      if (!str(a) || !num(b) || (args.length > 2 && !num(c))) return undefined;
      const start = Math.max(0, Math.trunc(b));
      const length = args.length > 2 ? Math.max(0, Math.trunc(c as number)) : undefined;
      return a.substr(start, length);
    }
    case 'INDEX_OF':
      return str(a) && str(b) ? a.indexOf(b) : undefined;
    case 'STARTS_WITH':
      return str(a) && str(b) ? a.startsWith(b) : undefined;
    case 'ENDS_WITH':
      return str(a) && str(b) ? a.endsWith(b) : undefined;
    case 'IS_DEFINED':
      return a !== undefined;
    case 'IS_NULL':
      return k === 'null';
    case 'IS_STRING':
      return k === 'string';
    case 'IS_NUMBER':
      return k === 'number';
    case 'IS_BOOL':
      return k === 'boolean';
    case 'IS_OBJECT':
      return k === 'object';
    case 'IS_ARRAY':
      return k === 'array';
    case 'IS_PRIMITIVE':
      return k === 'string' || k === 'number' || k === 'boolean' || k === 'null';
    case 'STARTSWITH':
      return typeof a === 'string' && typeof b === 'string' ? a.startsWith(b) : undefined;
    case 'ENDSWITH':
      return typeof a === 'string' && typeof b === 'string' ? a.endsWith(b) : undefined;
    case 'CONTAINS':
      return typeof a === 'string' && typeof b === 'string' ? a.includes(b) : undefined;
    case 'LOWER':
      return typeof a === 'string' ? a.toLowerCase() : undefined;
    case 'UPPER':
      return typeof a === 'string' ? a.toUpperCase() : undefined;
    case 'LENGTH':
      return typeof a === 'string' ? [...a].length : undefined;
    case 'ABS':
      return typeof a === 'number' ? Math.abs(a) : undefined;
    case 'FLOOR':
      return typeof a === 'number' ? Math.floor(a) : undefined;
    case 'CEILING':
      return typeof a === 'number' ? Math.ceil(a) : undefined;
    default:
      return undefined;
  }
}
