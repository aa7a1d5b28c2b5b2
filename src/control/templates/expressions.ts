/**
 * ARM's template expression language: `"[func(args).prop['x'][0]]"` strings.
 *
 * - A JSON string is an expression when it starts with `[` and ends with `]`; a string that starts
 *   with `[[` is the literal text without its first `[`.
 * - Literals: strings in single quotes (`''` is a quote), integers and decimals. `true`, `false` and
 *   `null` are functions.
 * - Function names are case-insensitive; `.prop` and `['prop']` read properties (case-insensitively,
 *   as ARM does), `[n]` indexes arrays.
 *
 * Pure: tokenizer, parser and evaluator; the functions themselves come from functions.ts.
 */
import { ExpressionError } from './errors.js';

export type Value = null | boolean | number | string | Value[] | { [key: string]: Value };

export type Ast =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'call'; name: string; args: Ast[] }
  | { kind: 'member'; target: Ast; name: string }
  | { kind: 'index'; target: Ast; index: Ast };

/** Is this JSON string an expression (as opposed to a literal or an escaped `[[…`)? */
export function isExpression(s: string): boolean {
  return s.length >= 2 && s.startsWith('[') && s.endsWith(']') && !s.startsWith('[[');
}

/** The literal value of a non-expression string (`[[x]` → `[x]`). */
export function unescapeLiteral(s: string): string {
  return s.startsWith('[[') ? s.slice(1) : s;
}

type Token =
  | { t: 'ident'; v: string; at: number }
  | { t: 'string'; v: string; at: number }
  | { t: 'number'; v: number; at: number }
  | { t: 'punct'; v: '(' | ')' | '[' | ']' | ',' | '.'; at: number }
  | { t: 'end'; at: number };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      const start = i;
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new ExpressionError(`The language expression literal string is not terminated: the string starting at position '${start}' has no closing quote.`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += text[i];
        i++;
      }
      out.push({ t: 'string', v, at: start });
    } else if (/[0-9]/.test(c) || ((c === '-' || c === '+') && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^[-+]?[0-9]+(\.[0-9]+)?/.exec(text.slice(i))!;
      out.push({ t: 'number', v: Number(m[0]), at: i });
      i += m[0].length;
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(i))!;
      out.push({ t: 'ident', v: m[0], at: i });
      i += m[0].length;
    } else if ('()[],.'.includes(c)) {
      out.push({ t: 'punct', v: c as '(' | ')' | '[' | ']' | ',' | '.', at: i });
      i++;
    } else {
      throw new ExpressionError(`The language expression '${text}' is not valid: the character '${c}' at position '${i}' is not expected.`);
    }
  }
  out.push({ t: 'end', at: text.length });
  return out;
}

/** Parses the text of an expression string (with its outer brackets). */
export function parseExpression(source: string): Ast {
  if (!isExpression(source)) throw new ExpressionError(`The string '${source}' is not a template language expression.`);
  const text = source.slice(1, -1);
  const tokens = tokenize(text);
  let p = 0;
  const peek = () => tokens[p]!;
  const fail = (what: string): never => {
    const tok = peek();
    throw new ExpressionError(`The language expression '${text}' is not valid: ${what} at position '${tok.at}'.`);
  };
  const expectPunct = (v: string) => {
    const tok = peek();
    if (tok.t !== 'punct' || tok.v !== v) fail(`expected '${v}'`);
    p++;
  };

  const primary = (): Ast => {
    const tok = peek();
    if (tok.t === 'string') {
      p++;
      return { kind: 'string', value: tok.v };
    }
    if (tok.t === 'number') {
      p++;
      return { kind: 'number', value: tok.v };
    }
    if (tok.t === 'ident') {
      p++;
      const next = peek();
      if (next.t !== 'punct' || next.v !== '(') fail(`the identifier '${tok.v}' must be followed by '('`);
      p++;
      const args: Ast[] = [];
      const close = peek();
      if (!(close.t === 'punct' && close.v === ')')) {
        for (;;) {
          args.push(expression());
          const sep = peek();
          if (sep.t === 'punct' && sep.v === ',') {
            p++;
            continue;
          }
          break;
        }
      }
      expectPunct(')');
      return { kind: 'call', name: tok.v, args };
    }
    return fail('a function call or literal is expected');
  };

  const expression = (): Ast => {
    let node = primary();
    for (;;) {
      const tok = peek();
      if (tok.t === 'punct' && tok.v === '.') {
        p++;
        const name = peek();
        if (name.t !== 'ident') fail('a property name is expected after \'.\'');
        p++;
        node = { kind: 'member', target: node, name: (name as { v: string }).v };
      } else if (tok.t === 'punct' && tok.v === '[') {
        p++;
        const index = expression();
        expectPunct(']');
        node = { kind: 'index', target: node, index };
      } else {
        return node;
      }
    }
  };

  if (peek().t === 'end') fail('the expression is empty');
  const ast = expression();
  if (peek().t !== 'end') fail('unexpected text after the end of the expression');
  return ast;
}

/** What the evaluator needs from its surroundings: how to call a function by name. */
export interface Evaluator {
  /** Calls `name` with already-evaluated arguments (throws ExpressionError for unknown names). */
  call(name: string, args: Value[]): Value;
  /** Functions evaluated lazily (`if`, …): return undefined to fall back to `call`. */
  lazy?(name: string, args: Ast[], evaluate: (a: Ast) => Value): Value | undefined;
}

export function typeName(v: Value | undefined): string {
  if (v === null || v === undefined) return 'Null';
  if (Array.isArray(v)) return 'Array';
  switch (typeof v) {
    case 'string':
      return 'String';
    case 'boolean':
      return 'Boolean';
    case 'number':
      return Number.isInteger(v) ? 'Integer' : 'Float';
    default:
      return 'Object';
  }
}

/** Reads a property the way ARM does: exact name first, then case-insensitively. */
export function getProperty(target: Value, name: string): Value {
  if (target === null || typeof target !== 'object' || Array.isArray(target)) {
    throw new ExpressionError(`The language expression property '${name}' can't be evaluated: the value is of type '${typeName(target)}', not an object.`);
  }
  if (Object.prototype.hasOwnProperty.call(target, name)) return target[name]!;
  const lower = name.toLowerCase();
  for (const k of Object.keys(target)) if (k.toLowerCase() === lower) return target[k]!;
  throw new ExpressionError(`The language expression property '${name}' doesn't exist, available properties are '${Object.keys(target).join(', ')}'.`);
}

export function evaluateAst(ast: Ast, ev: Evaluator): Value {
  const evaluate = (a: Ast): Value => evaluateAst(a, ev);
  switch (ast.kind) {
    case 'string':
      return ast.value;
    case 'number':
      return ast.value;
    case 'call': {
      const lazy = ev.lazy?.(ast.name, ast.args, evaluate);
      if (lazy !== undefined) return lazy;
      return ev.call(ast.name, ast.args.map(evaluate));
    }
    case 'member':
      return getProperty(evaluate(ast.target), ast.name);
    case 'index': {
      const target = evaluate(ast.target);
      const index = evaluate(ast.index);
      if (Array.isArray(target)) {
        if (typeof index !== 'number' || !Number.isInteger(index)) {
          throw new ExpressionError(`The language expression property array index '${JSON.stringify(index)}' is not valid: an array is indexed by an integer.`);
        }
        if (index < 0 || index >= target.length) throw new ExpressionError(`The language expression property array index '${index}' is out of bounds.`);
        return target[index]!;
      }
      if (typeof index !== 'string') throw new ExpressionError(`The language expression property '${JSON.stringify(index)}' is not valid: an object property name must be a string.`);
      return getProperty(target, index);
    }
  }
}

/** Evaluates an expression string. */
export function evaluateExpression(source: string, ev: Evaluator): Value {
  return evaluateAst(parseExpression(source), ev);
}
