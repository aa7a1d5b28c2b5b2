/**
 * A recursive-descent parser for IoT Hub's query language:
 * `SELECT [TOP n] * | <items> FROM devices | devices.modules | devices.jobs [WHERE …] [GROUP BY …]`.
 * Every error names the 1-based position it was found at.
 */
import { AGGREGATES, FUNCTIONS, ROUTE_FUNCTIONS, sameExpr, type Collection, type ComparisonOp, type Expr, type Query, type SelectItem } from './ast.js';
import { syntaxError, tokenize, type Dialect, type Token } from './lexer.js';

const KEYWORDS = new Set(['SELECT', 'TOP', 'FROM', 'WHERE', 'GROUP', 'BY', 'AS', 'AND', 'OR', 'NOT', 'IN', 'NIN', 'TRUE', 'FALSE', 'NULL']);
/** Routing conditions reserve fewer words: a property may be called `select` or `from`. */
const ROUTE_KEYWORDS = new Set(['AND', 'OR', 'NOT', 'TRUE', 'FALSE', 'NULL']);
const COMPARISONS = new Set(['=', '!=', '<', '>', '<=', '>=']);
/** IoT Hub caps a query's TOP as it caps a page. */
const MAX_TOP = 1_000_000;
/** Deeper expressions are refused (a bound for the parser's recursion and the SQL they compile to). */
const MAX_DEPTH = 64;

/** Parses a whole query. */
export function parseQuery(text: string): Query {
  const p = new Parser(text);
  const query = p.query();
  return analyze(query);
}

/**
 * Parses a WHERE condition on its own (a job's `queryCondition`, a configuration's
 * `targetCondition`) as a query over `collection`.
 */
export function parseCondition(text: string, collection: Collection = 'devices'): Expr {
  const p = new Parser(text);
  const expr = p.conditionOnly();
  return analyze({ select: '*', from: collection, where: expr }).where!;
}

/**
 * Parses a message routing condition (IoT Hub's routing query language: the WHERE grammar with
 * `$`-names, `$body…` paths with array indexes, routing's functions, no IN, no arrays). Paths are
 * kept as written: the routing evaluator resolves `$body`, `$twin`, system and application names.
 */
export function parseRouteCondition(text: string): Expr {
  const p = new Parser(text, 'route');
  const expr = p.conditionOnly();
  const deep = tooDeep(expr, 0);
  if (deep) throw syntaxError(deep.pos, `the condition has more than ${MAX_DEPTH * 4} operators in one expression chain; split it`);
  return expr;
}

class Parser {
  private readonly tokens: Token[];
  private i = 0;

  private readonly keywords: Set<string>;
  /** How messages name the end of the text. */
  private readonly endName: string;

  constructor(
    text: string,
    private readonly dialect: Dialect = 'twin',
  ) {
    if (text.trim() === '') throw syntaxError(1, 'the query is empty');
    this.tokens = tokenize(text, dialect);
    this.keywords = dialect === 'route' ? ROUTE_KEYWORDS : KEYWORDS;
    this.endName = dialect === 'route' ? 'end of condition' : 'end of query';
  }

  query(): Query {
    this.keyword('SELECT');
    let top: number | undefined;
    if (this.isKeyword('TOP')) {
      this.next();
      const t = this.next();
      if (t.type !== 'number' || !Number.isInteger(t.value) || (t.value as number) < 0 || (t.value as number) > MAX_TOP) {
        throw syntaxError(t.pos, `TOP takes a whole number, not '${t.text}'`);
      }
      top = t.value as number;
    }
    let select: Query['select'];
    if (this.isOp('*')) {
      this.next();
      select = '*';
    } else {
      const items: { expr: Expr; alias?: string }[] = [];
      do {
        const expr = this.expression(true);
        let alias: string | undefined;
        if (this.isKeyword('AS')) {
          this.next();
          alias = this.identifier('an alias after AS').text;
        }
        items.push({ expr, alias });
      } while (this.acceptOp(','));
      let unnamed = 0;
      select = items.map(({ expr, alias }): SelectItem => ({
        expr,
        name: alias ?? (expr.kind === 'path' ? expr.segments[expr.segments.length - 1]! : `$${++unnamed}`),
      }));
    }
    this.keyword('FROM');
    const from = this.collection();
    let where: Expr | undefined;
    if (this.isKeyword('WHERE')) {
      this.next();
      where = this.expression(false);
    }
    let groupBy: Expr[] | undefined;
    if (this.isKeyword('GROUP')) {
      this.next();
      this.keyword('BY');
      groupBy = [];
      do groupBy.push(this.expression(false));
      while (this.acceptOp(','));
    }
    this.end();
    return { select, top, from, where, groupBy };
  }

  conditionOnly(): Expr {
    const e = this.expression(false);
    this.end();
    return e;
  }

  private collection(): Collection {
    const first = this.identifier('a collection (devices, devices.modules or devices.jobs)');
    let name = first.text.toLowerCase();
    if (this.isOp('.')) {
      this.next();
      name += '.' + this.identifier('modules or jobs after devices.').text.toLowerCase();
    }
    if (name !== 'devices' && name !== 'devices.modules' && name !== 'devices.jobs') {
      throw syntaxError(first.pos, `unknown collection '${name}' (use devices, devices.modules or devices.jobs)`);
    }
    return name;
  }

  private end(): void {
    const t = this.peek();
    if (t.type !== 'eof') throw syntaxError(t.pos, `unexpected '${t.text}'`);
  }

  // ---- expressions, loosest binding first ----

  private depth = 0;

  private expression(allowAggregates: boolean): Expr {
    return this.nested(() => this.or(allowAggregates));
  }

  /** One level deeper (parentheses, arguments, NOT, unary minus): bounded, so no input can exhaust the stack. */
  private nested(parse: () => Expr): Expr {
    if (++this.depth > MAX_DEPTH) throw syntaxError(this.peek().pos, `the expression is nested more than ${MAX_DEPTH} levels deep`);
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private or(agg: boolean): Expr {
    let left = this.and(agg);
    while (this.isKeyword('OR')) {
      const pos = this.next().pos;
      left = { kind: 'logical', op: 'OR', left, right: this.and(agg), pos };
    }
    return left;
  }

  private and(agg: boolean): Expr {
    let left = this.not(agg);
    while (this.isKeyword('AND')) {
      const pos = this.next().pos;
      left = { kind: 'logical', op: 'AND', left, right: this.not(agg), pos };
    }
    return left;
  }

  private not(agg: boolean): Expr {
    if (this.isKeyword('NOT')) {
      const pos = this.next().pos;
      return { kind: 'not', operand: this.nested(() => this.not(agg)), pos };
    }
    return this.comparison(agg);
  }

  private comparison(agg: boolean): Expr {
    const left = this.additive(agg);
    const t = this.peek();
    if (t.type === 'op' && COMPARISONS.has(t.text)) {
      this.next();
      return { kind: 'compare', op: t.text as ComparisonOp, left, right: this.additive(agg), pos: t.pos };
    }
    if (this.dialect === 'route' && (this.isKeyword('IN') || this.isKeyword('NIN') || (this.isKeyword('NOT') && this.peekKeyword(1, 'IN')))) {
      throw syntaxError(t.pos, `${t.text.toUpperCase()} is not part of IoT Hub's routing query language; combine comparisons with OR`);
    }
    if (this.isKeyword('IN') || this.isKeyword('NIN')) {
      this.next();
      return { kind: 'in', negated: t.text.toUpperCase() === 'NIN', operand: left, list: this.list(), pos: t.pos };
    }
    if (this.isKeyword('NOT') && this.peekKeyword(1, 'IN')) {
      this.next();
      this.next();
      return { kind: 'in', negated: true, operand: left, list: this.list(), pos: t.pos };
    }
    return left;
  }

  private list(): Expr[] {
    const open = this.next();
    const close = open.text === '[' ? ']' : open.text === '(' ? ')' : undefined;
    if (open.type !== 'op' || !close) throw syntaxError(open.pos, `expected a list such as ['a', 'b'] after IN, found '${open.text || this.endName}'`);
    const items: Expr[] = [];
    if (!this.isOp(close)) {
      do items.push(this.additive(false));
      while (this.acceptOp(','));
    }
    this.expectOp(close);
    return items;
  }

  private additive(agg: boolean): Expr {
    let left = this.multiplicative(agg);
    while (this.isOp('+') || this.isOp('-')) {
      const t = this.next();
      left = { kind: 'arithmetic', op: t.text as '+' | '-', left, right: this.multiplicative(agg), pos: t.pos };
    }
    return left;
  }

  private multiplicative(agg: boolean): Expr {
    let left = this.unary(agg);
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const t = this.next();
      left = { kind: 'arithmetic', op: t.text as '*' | '/' | '%', left, right: this.unary(agg), pos: t.pos };
    }
    return left;
  }

  private unary(agg: boolean): Expr {
    if (this.isOp('-')) {
      const pos = this.next().pos;
      const operand = this.nested(() => this.unary(agg));
      if (operand.kind === 'literal' && typeof operand.value === 'number') return { ...operand, value: -operand.value, pos };
      return { kind: 'negate', operand, pos };
    }
    return this.primary(agg);
  }

  private primary(agg: boolean): Expr {
    const t = this.next();
    if (t.type === 'number' || t.type === 'string') return { kind: 'literal', value: t.value!, pos: t.pos };
    if (t.type === 'op' && t.text === '(') {
      const e = this.expression(agg);
      this.expectOp(')');
      return e;
    }
    if (t.type === 'op' && t.text === '[' && this.dialect === 'twin') {
      this.i--;
      return { kind: 'array', items: this.list(), pos: t.pos };
    }
    if (t.type === 'ident' && t.quoted) return this.path(t);
    if (t.type === 'ident') {
      const upper = t.text.toUpperCase();
      if (upper === 'TRUE' || upper === 'FALSE') return { kind: 'literal', value: upper === 'TRUE', pos: t.pos };
      if (upper === 'NULL') return { kind: 'literal', value: null, pos: t.pos };
      if (this.isOp('(')) return this.call(t, agg);
      if (this.keywords.has(upper)) throw syntaxError(t.pos, `unexpected keyword '${t.text}'`);
      return this.path(t);
    }
    throw syntaxError(t.pos, t.type === 'eof' ? `unexpected ${this.endName}` : `unexpected '${t.text}'`);
  }

  private call(name: Token, agg: boolean): Expr {
    this.expectOp('(');
    const args: Expr[] = [];
    if (!this.isOp(')')) {
      do args.push(this.expression(false));
      while (this.acceptOp(','));
    }
    this.expectOp(')');
    const upper = name.text.toUpperCase();
    if (this.dialect === 'route') {
      const arity = ROUTE_FUNCTIONS[upper];
      if (!arity) throw syntaxError(name.pos, `unknown function '${name.text}'`);
      const [min, max] = arity;
      if (args.length < min || args.length > max) {
        const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
        throw syntaxError(name.pos, `${upper} takes ${want} argument${want === '1' ? '' : 's'}, not ${args.length}`);
      }
      return { kind: 'call', name: upper, args, pos: name.pos };
    }
    if ((AGGREGATES as readonly string[]).includes(upper)) {
      if (!agg) throw syntaxError(name.pos, `${upper}() is allowed only in the SELECT clause`);
      const want = upper === 'COUNT' ? 0 : 1;
      if (args.length !== want) throw syntaxError(name.pos, `${upper} takes ${want} argument${want === 1 ? '' : 's'}`);
      return { kind: 'aggregate', name: upper as (typeof AGGREGATES)[number], arg: args[0], pos: name.pos };
    }
    const arity = FUNCTIONS[upper];
    if (arity === undefined) throw syntaxError(name.pos, `unknown function '${name.text}'`);
    if (args.length !== arity) throw syntaxError(name.pos, `${upper} takes ${arity} argument${arity === 1 ? '' : 's'}, not ${args.length}`);
    return { kind: 'call', name: upper, args, pos: name.pos };
  }

  private path(first: Token): Expr {
    const segments = [first.text];
    for (;;) {
      if (this.isOp('.')) {
        this.next();
        segments.push(this.identifier('a property name after "."').text);
      } else if (this.isOp('[') && this.peek(1).type === 'string') {
        this.next();
        segments.push(this.next().value as string);
        this.expectOp(']');
      } else if (this.dialect === 'route' && this.isOp('[')) {
        // `$body.list[0]`: an array index, kept as its decimal text.
        this.next();
        const t = this.next();
        if (t.type !== 'number' || !Number.isInteger(t.value) || (t.value as number) < 0) {
          throw syntaxError(t.pos, `expected an array index (a whole number) or a quoted name after '[', found '${t.text || 'end of condition'}'`);
        }
        segments.push(String(t.value));
        this.expectOp(']');
      } else break;
    }
    return { kind: 'path', segments, pos: first.pos };
  }

  // ---- tokens ----

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.tokens.length - 1) this.i++;
    return t;
  }
  private isKeyword(k: string): boolean {
    const t = this.peek();
    return t.type === 'ident' && t.text.toUpperCase() === k;
  }
  private peekKeyword(ahead: number, k: string): boolean {
    const t = this.peek(ahead);
    return t.type === 'ident' && t.text.toUpperCase() === k;
  }
  private isOp(op: string): boolean {
    const t = this.peek();
    return t.type === 'op' && t.text === op;
  }
  private acceptOp(op: string): boolean {
    if (!this.isOp(op)) return false;
    this.next();
    return true;
  }
  private expectOp(op: string): void {
    const t = this.next();
    if (t.type !== 'op' || t.text !== op) throw syntaxError(t.pos, `expected '${op}', found '${t.text || this.endName}'`);
  }
  private keyword(k: string): void {
    const t = this.next();
    if (t.type !== 'ident' || t.text.toUpperCase() !== k) throw syntaxError(t.pos, `expected ${k}, found '${t.text || this.endName}'`);
  }
  private identifier(what: string): Token {
    const t = this.next();
    if (t.type !== 'ident') throw syntaxError(t.pos, `expected ${what}, found '${t.text || this.endName}'`);
    return t;
  }
}

// ---- after parsing: IoT Hub's rules that are not grammar ----

/** Twin fields matched without regard to case, as IoT Hub does for the twin's own properties. */
const TWIN_FIELDS = [
  'deviceId', 'moduleId', 'etag', 'deviceEtag', 'version', 'status', 'statusReason', 'statusUpdateTime',
  'connectionState', 'lastActivityTime', 'cloudToDeviceMessageCount', 'authenticationType', 'x509Thumbprint',
  'capabilities', 'deviceScope', 'parentScopes', 'modelId', 'tags', 'properties', 'configurations',
];
const JOB_FIELDS = [
  'deviceId', 'jobId', 'jobType', 'status', 'startTimeUtc', 'endTimeUtc', 'createdDateTimeUtc', 'lastUpdatedDateTimeUtc', 'outcome', 'error',
];

function analyze(query: Query): Query {
  const prefix = query.from.split('.');
  const fields = new Map((query.from === 'devices.jobs' ? JOB_FIELDS : TWIN_FIELDS).map((f) => [f.toLowerCase(), f]));
  const fix = (e: Expr): Expr => {
    switch (e.kind) {
      case 'path': {
        let segments = e.segments;
        // `devices.jobs.status` in a query FROM devices.jobs is `status`; `devices.tags.x` is `tags.x`.
        for (const n of [prefix.length, 1]) {
          if (segments.length > n && prefix.slice(0, n).every((p, i) => segments[i]!.toLowerCase() === p)) {
            segments = segments.slice(n);
            break;
          }
        }
        const canonical = fields.get(segments[0]!.toLowerCase());
        if (canonical) segments = [canonical, ...segments.slice(1)];
        return { ...e, segments };
      }
      case 'array':
        return { ...e, items: e.items.map(fix) };
      case 'not':
      case 'negate':
        return { ...e, operand: fix(e.operand) };
      case 'compare':
      case 'logical':
      case 'arithmetic':
        return { ...e, left: fix(e.left), right: fix(e.right) };
      case 'in':
        return { ...e, operand: fix(e.operand), list: e.list.map(fix) };
      case 'call':
        return { ...e, args: e.args.map(fix) };
      case 'aggregate':
        return e.arg ? { ...e, arg: fix(e.arg) } : e;
      case 'literal':
        return e;
    }
  };
  const out: Query = {
    ...query,
    select: query.select === '*' ? '*' : query.select.map((s) => ({ ...s, expr: fix(s.expr) })),
    where: query.where && fix(query.where),
    groupBy: query.groupBy?.map(fix),
  };

  if (out.from === 'devices.jobs') {
    // IoT Hub: "queries on devices.jobs don't support projections (only SELECT *) nor aggregations".
    if (out.select !== '*') throw syntaxError(out.select[0]!.expr.pos, 'queries on devices.jobs support only SELECT *');
    if (out.groupBy) throw syntaxError(out.groupBy[0]!.pos, 'queries on devices.jobs do not support GROUP BY');
  }
  for (const e of [...(out.select === '*' ? [] : out.select.map((x) => x.expr)), ...(out.where ? [out.where] : []), ...(out.groupBy ?? [])]) {
    const deep = tooDeep(e, 0);
    if (deep) throw syntaxError(deep.pos, `the query has more than ${MAX_DEPTH * 4} operators in one expression chain; split it`);
  }
  const items = out.select === '*' ? [] : out.select;
  const hasAggregate = items.some((s) => containsAggregate(s.expr));
  for (const s of items) {
    if (s.expr.kind !== 'aggregate' && containsAggregate(s.expr)) throw syntaxError(s.expr.pos, 'an aggregate cannot be part of an expression');
  }
  if (out.groupBy) {
    if (out.select === '*') throw syntaxError(out.groupBy[0]!.pos, 'GROUP BY needs a SELECT list of grouped properties and aggregates, not *');
    for (const s of items) {
      if (s.expr.kind !== 'aggregate' && !out.groupBy.some((g) => sameExpr(g, s.expr))) {
        throw syntaxError(s.expr.pos, `'${s.name}' is neither an aggregate nor in the GROUP BY clause`);
      }
    }
  } else if (hasAggregate) {
    for (const s of items) {
      if (s.expr.kind !== 'aggregate') throw syntaxError(s.expr.pos, `'${s.name}' must be an aggregate or be listed in GROUP BY`);
    }
  }
  const names = new Set<string>();
  for (const s of items) {
    if (names.has(s.name)) throw syntaxError(s.expr.pos, `the name '${s.name}' appears more than once in the SELECT clause; use AS`);
    names.add(s.name);
  }
  return out;
}

/** The first node below `MAX_DEPTH * 4` levels (long AND/OR chains nest one level per operator). */
function tooDeep(e: Expr, depth: number): Expr | undefined {
  if (depth > MAX_DEPTH * 4) return e;
  switch (e.kind) {
    case 'not':
    case 'negate':
      return tooDeep(e.operand, depth + 1);
    case 'compare':
    case 'logical':
    case 'arithmetic':
      return tooDeep(e.left, depth + 1) ?? tooDeep(e.right, depth + 1);
    case 'in':
      return tooDeep(e.operand, depth + 1);
    case 'call':
      return e.args.map((a) => tooDeep(a, depth + 1)).find(Boolean);
    default:
      return undefined;
  }
}

function containsAggregate(e: Expr): boolean {
  switch (e.kind) {
    case 'aggregate':
      return true;
    case 'not':
    case 'negate':
      return containsAggregate(e.operand);
    case 'compare':
    case 'logical':
    case 'arithmetic':
      return containsAggregate(e.left) || containsAggregate(e.right);
    case 'in':
      return containsAggregate(e.operand) || e.list.some(containsAggregate);
    case 'call':
      return e.args.some(containsAggregate);
    case 'array':
      return e.items.some(containsAggregate);
    default:
      return false;
  }
}
