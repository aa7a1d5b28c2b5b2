import { sbErrors } from './errors.js';

/**
 * Service Bus SQL filters (the common subset of SqlFilter's grammar): comparisons, arithmetic,
 * AND / OR / NOT, [NOT] IN, [NOT] LIKE … [ESCAPE …], IS [NOT] NULL, EXISTS(…), on system
 * properties (`sys.Label`, …) and application properties (`user.x` or a bare name). Evaluated
 * with SQL's three-valued logic: a comparison with a missing property is unknown, and a message
 * matches only when the whole filter is TRUE.
 */
export type SqlValue = string | number | boolean | Date | null;

/** Looks a property up: `sys` for system properties, `user` for application properties. */
export type PropertyLookup = (scope: 'sys' | 'user', name: string) => SqlValue | undefined;

type Node =
  | { kind: 'literal'; value: SqlValue }
  | { kind: 'property'; scope: 'sys' | 'user'; name: string }
  | { kind: 'exists'; scope: 'sys' | 'user'; name: string }
  | { kind: 'not'; operand: Node }
  | { kind: 'logical'; op: 'AND' | 'OR'; left: Node; right: Node }
  | { kind: 'compare'; op: '=' | '<>' | '<' | '<=' | '>' | '>='; left: Node; right: Node }
  | { kind: 'arith'; op: '+' | '-' | '*' | '/' | '%'; left: Node; right: Node }
  | { kind: 'negate'; operand: Node }
  | { kind: 'in'; operand: Node; list: Node[]; negated: boolean }
  | { kind: 'like'; operand: Node; pattern: RegExp; negated: boolean }
  | { kind: 'isNull'; operand: Node; negated: boolean };

export interface SqlFilter {
  readonly expression: string;
  /** TRUE, FALSE or unknown (null). */
  evaluate(lookup: PropertyLookup): boolean | null;
  matches(lookup: PropertyLookup): boolean;
}

interface Token {
  type: 'number' | 'string' | 'ident' | 'op' | 'eof';
  text: string;
  value?: string | number;
  position: number;
}

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IN', 'LIKE', 'ESCAPE', 'IS', 'NULL', 'TRUE', 'FALSE', 'EXISTS']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (why: string, at: number) => {
    throw sbErrors.argument(`The SQL filter expression is not valid: ${why} at line 1, position ${at + 1}.`);
  };
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(text.slice(i))!;
      i += m[0].length;
      // A trailing L / l marks a long; D / F a double: accepted and ignored.
      if (/[lLdDfFmM]/.test(text[i] ?? '') && !/[A-Za-z0-9_]/.test(text[i + 1] ?? '')) i++;
      tokens.push({ type: 'number', text: m[0], value: Number(m[0]), position: start });
      continue;
    }
    if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) fail('unterminated string literal', start);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      tokens.push({ type: 'string', text: text.slice(start, i), value, position: start });
      continue;
    }
    if (c === '[' || c === '"') {
      const close = c === '[' ? ']' : '"';
      const end = text.indexOf(close, i + 1);
      if (end < 0) fail('unterminated quoted identifier', start);
      tokens.push({ type: 'ident', text: text.slice(start, end + 1), value: text.slice(i + 1, end), position: start });
      i = end + 1;
      continue;
    }
    if (/[A-Za-z_@$]/.test(c)) {
      // Names with other characters ('-', spaces) are written [quoted].
      const word = /^[A-Za-z_@$][A-Za-z0-9_@$]*/.exec(text.slice(i))![0];
      i += word.length;
      tokens.push({ type: 'ident', text: word, value: word, position: start });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (['<>', '!=', '<=', '>='].includes(two)) {
      tokens.push({ type: 'op', text: two === '!=' ? '<>' : two, position: start });
      i += 2;
      continue;
    }
    if ('=<>()+-*/%,.'.includes(c)) {
      tokens.push({ type: 'op', text: c, position: start });
      i++;
      continue;
    }
    fail(`unexpected character '${c}'`, start);
  }
  tokens.push({ type: 'eof', text: '', position: text.length });
  return tokens;
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
  ) {}

  private get t(): Token {
    return this.tokens[this.i]!;
  }
  private fail(why?: string): never {
    const t = this.t;
    const what = why ?? (t.type === 'eof' ? 'unexpected end of expression' : `unexpected '${t.text}'`);
    throw sbErrors.argument(`The SQL filter expression is not valid: ${what} at line 1, position ${t.position + 1}.`);
  }
  private keyword(word: string): boolean {
    if (this.t.type === 'ident' && this.t.text.toUpperCase() === word && !this.t.text.startsWith('[')) {
      this.i++;
      return true;
    }
    return false;
  }
  private op(text: string): boolean {
    if (this.t.type === 'op' && this.t.text === text) {
      this.i++;
      return true;
    }
    return false;
  }
  private expect(text: string): void {
    if (!this.op(text)) this.fail(`expected '${text}'`);
  }

  parse(): Node {
    if (this.t.type === 'eof') this.fail('the expression is empty');
    const node = this.or();
    if ((this.t as Token).type !== 'eof') this.fail();
    return node;
  }
  private or(): Node {
    let left = this.and();
    while (this.keyword('OR')) left = { kind: 'logical', op: 'OR', left, right: this.and() };
    return left;
  }
  private and(): Node {
    let left = this.not();
    while (this.keyword('AND')) left = { kind: 'logical', op: 'AND', left, right: this.not() };
    return left;
  }
  private not(): Node {
    if (this.keyword('NOT')) return { kind: 'not', operand: this.not() };
    return this.predicate();
  }
  private predicate(): Node {
    if (this.t.type === 'ident' && this.t.text.toUpperCase() === 'EXISTS') {
      this.i++;
      this.expect('(');
      const p = this.property();
      this.expect(')');
      return { kind: 'exists', scope: p.scope, name: p.name };
    }
    const left = this.additive();
    const t = this.t;
    if (t.type === 'op' && ['=', '<>', '<', '<=', '>', '>='].includes(t.text)) {
      this.i++;
      return { kind: 'compare', op: t.text as '=', left, right: this.additive() };
    }
    if (this.keyword('IS')) {
      const negated = this.keyword('NOT');
      if (!this.keyword('NULL')) this.fail("expected 'NULL'");
      return { kind: 'isNull', operand: left, negated };
    }
    const negated = this.keyword('NOT');
    if (this.keyword('IN')) {
      this.expect('(');
      const list = [this.additive()];
      while (this.op(',')) list.push(this.additive());
      this.expect(')');
      return { kind: 'in', operand: left, list, negated };
    }
    if (this.keyword('LIKE')) {
      const pattern = this.t;
      if (pattern.type !== 'string') this.fail('LIKE needs a string pattern');
      this.i++;
      let escape: string | undefined;
      if (this.keyword('ESCAPE')) {
        const e = this.t;
        if (e.type !== 'string' || String(e.value).length !== 1) this.fail('ESCAPE needs a one-character string');
        escape = String(e.value);
        this.i++;
      }
      return { kind: 'like', operand: left, pattern: likePattern(String(pattern.value), escape), negated };
    }
    if (negated) this.fail("expected 'IN' or 'LIKE' after 'NOT'");
    return left;
  }
  private additive(): Node {
    let left = this.multiplicative();
    for (;;) {
      const t = this.t;
      if (t.type === 'op' && (t.text === '+' || t.text === '-')) {
        this.i++;
        left = { kind: 'arith', op: t.text, left, right: this.multiplicative() };
      } else return left;
    }
  }
  private multiplicative(): Node {
    let left = this.unary();
    for (;;) {
      const t = this.t;
      if (t.type === 'op' && (t.text === '*' || t.text === '/' || t.text === '%')) {
        this.i++;
        left = { kind: 'arith', op: t.text, left, right: this.unary() };
      } else return left;
    }
  }
  private unary(): Node {
    if (this.op('-')) return { kind: 'negate', operand: this.unary() };
    if (this.op('+')) return this.unary();
    return this.primary();
  }
  private primary(): Node {
    const t = this.t;
    if (t.type === 'number' || t.type === 'string') {
      this.i++;
      return { kind: 'literal', value: t.value! };
    }
    if (this.op('(')) {
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    if (t.type === 'ident') {
      const upper = t.text.toUpperCase();
      if (!t.text.startsWith('[') && !t.text.startsWith('"')) {
        if (upper === 'TRUE' || upper === 'FALSE') {
          this.i++;
          return { kind: 'literal', value: upper === 'TRUE' };
        }
        if (upper === 'NULL') {
          this.i++;
          return { kind: 'literal', value: null };
        }
        if (KEYWORDS.has(upper)) this.fail();
      }
      return { kind: 'property', ...this.property() };
    }
    this.fail();
  }
  private property(): { scope: 'sys' | 'user'; name: string } {
    const first = this.t;
    if (first.type !== 'ident') this.fail('expected a property name');
    this.i++;
    const firstName = String(first.value);
    if (this.t.type === 'op' && this.t.text === '.') {
      const scope = firstName.toLowerCase();
      if (scope !== 'sys' && scope !== 'user') {
        this.i--;
        this.fail(`unknown property scope '${firstName}' (sys or user)`);
      }
      this.i++;
      const name = this.t;
      if (name.type !== 'ident') this.fail('expected a property name');
      this.i++;
      return { scope, name: String(name.value) };
    }
    return { scope: 'user', name: firstName };
  }
}

function likePattern(pattern: string, escape: string | undefined): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (escape !== undefined && c === escape && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

type Tri = boolean | null;

function comparable(v: SqlValue): string | number | boolean | null {
  return v instanceof Date ? v.getTime() : v;
}

function evaluate(node: Node, lookup: PropertyLookup): SqlValue {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'property': {
      const v = lookup(node.scope, node.name);
      return v === undefined ? null : v;
    }
    case 'exists':
      return lookup(node.scope, node.name) !== undefined;
    case 'not': {
      const v = truth(evaluate(node.operand, lookup));
      return v === null ? null : !v;
    }
    case 'logical': {
      const l = truth(evaluate(node.left, lookup));
      if (node.op === 'AND' && l === false) return false;
      if (node.op === 'OR' && l === true) return true;
      const r = truth(evaluate(node.right, lookup));
      if (node.op === 'AND') return r === false ? false : l === null || r === null ? null : true;
      return r === true ? true : l === null || r === null ? null : false;
    }
    case 'compare': {
      const l = comparable(evaluate(node.left, lookup));
      const r = comparable(evaluate(node.right, lookup));
      return compare(node.op, l, r);
    }
    case 'arith': {
      const l = comparable(evaluate(node.left, lookup));
      const r = comparable(evaluate(node.right, lookup));
      if (l === null || r === null) return null;
      if (node.op === '+' && typeof l === 'string' && typeof r === 'string') return l + r;
      if (typeof l !== 'number' || typeof r !== 'number') return null;
      switch (node.op) {
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
          return r === 0 ? null : l / r;
        case '%':
          return r === 0 ? null : l % r;
      }
      return null;
    }
    case 'negate': {
      const v = evaluate(node.operand, lookup);
      return typeof v === 'number' ? -v : null;
    }
    case 'in': {
      const v = comparable(evaluate(node.operand, lookup));
      if (v === null) return null;
      let unknown = false;
      for (const item of node.list) {
        const r = compare('=', v, comparable(evaluate(item, lookup)));
        if (r === true) return !node.negated;
        if (r === null) unknown = true;
      }
      return unknown ? null : node.negated;
    }
    case 'like': {
      const v = evaluate(node.operand, lookup);
      if (v === null) return null;
      if (typeof v !== 'string') return null;
      return node.pattern.test(v) !== node.negated;
    }
    case 'isNull': {
      const v = evaluate(node.operand, lookup);
      return (v === null) !== node.negated;
    }
  }
}

function compare(op: string, l: string | number | boolean | null, r: string | number | boolean | null): Tri {
  if (l === null || r === null) return null;
  // Mixed types (a string property against a number) never match; neither are they an error.
  if (typeof l !== typeof r) return null;
  switch (op) {
    case '=':
      return l === r;
    case '<>':
      return l !== r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
  }
  return null;
}

function truth(v: SqlValue): Tri {
  if (v === null) return null;
  if (typeof v === 'boolean') return v;
  // A non-boolean where a condition is expected (e.g. a bare property) is unknown.
  return null;
}

/** Parses a SqlFilter expression; throws InvalidArgument naming the position of the first error. */
export function parseSqlFilter(expression: string): SqlFilter {
  if (typeof expression !== 'string') throw sbErrors.argument('The SQL filter expression must be a string.');
  if (expression.length > 1024) throw sbErrors.argument('The SQL filter expression is longer than 1024 characters.');
  const root = new Parser(tokenize(expression)).parse();
  return {
    expression,
    evaluate: (lookup) => truth(evaluate(root, lookup)),
    matches: (lookup) => truth(evaluate(root, lookup)) === true,
  };
}
