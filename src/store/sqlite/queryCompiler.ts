/**
 * Compiles a parsed IoT Hub query into SQL over the twins (or device_jobs) table, so filters,
 * grouping and paging run inside SQLite with its JSON functions rather than in JavaScript.
 *
 * IoT Hub's comparisons are type-strict (a string never equals a number) and a missing property
 * is undefined, not null. Every operand therefore carries its JSON kind; a comparison of
 * different kinds, or with an undefined side, is SQL NULL, whose three-valued logic matches
 * IoT Hub's (NOT undefined is undefined; undefined OR true is true).
 */
import type { Collection, Expr, Query } from '../../hub/query/ast.js';

/** n number, s string, b boolean, z null, o object, a array. */
type Kind = 'n' | 's' | 'b' | 'z' | 'o' | 'a';

interface Operand {
  /** The SQL value (numbers, text, 0/1 for booleans, JSON text for objects and arrays). */
  v: string;
  /** The kind when known at compile time. */
  kind?: Kind;
  /** SQL that is 1 when the operand has kind `k`, 0 otherwise (never NULL). */
  test(k: Kind): string;
  /** SQL yielding the kind letter, NULL when undefined. */
  kindSql: string;
  /** SQL yielding the value as JSON text, NULL when undefined. */
  json: string;
  /** SQL that is 1 when the operand is defined. */
  defined: string;
}

const JSON_TYPES: Record<Kind, string[]> = {
  n: ['integer', 'real'],
  s: ['text'],
  b: ['true', 'false'],
  z: ['null'],
  o: ['object'],
  a: ['array'],
};

export const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

const UNDEFINED: Operand = { v: 'NULL', test: () => '0', kindSql: 'NULL', json: 'NULL', defined: '0' };

function and(...conds: string[]): string {
  const real = conds.filter((c) => c !== '1');
  if (real.includes('0')) return '0';
  return real.length === 0 ? '1' : real.length === 1 ? real[0]! : `(${real.join(' AND ')})`;
}

/** `then` when `cond` holds, SQL NULL (undefined) otherwise. */
function when(cond: string, then: string): string {
  if (cond === '1') return then;
  if (cond === '0') return 'NULL';
  return `(CASE WHEN ${cond} THEN ${then} END)`;
}

function jsonPath(segments: string[]): string | undefined {
  if (segments.some((s) => s.includes('"') || s.includes('\\'))) return undefined;
  return '$' + segments.map((s) => `."${s}"`).join('');
}

function jsonOperand(column: string, segments: string[]): Operand {
  const p = jsonPath(segments);
  if (p === undefined) return UNDEFINED;
  const path = sqlString(p);
  const type = `json_type(${column}, ${path})`;
  return {
    v: `json_extract(${column}, ${path})`,
    test: (k) => `(coalesce(${type}, '') IN (${JSON_TYPES[k].map(sqlString).join(', ')}))`,
    kindSql: `(CASE ${type} ${Object.entries(JSON_TYPES)
      .flatMap(([k, types]) => types.map((t) => `WHEN '${t}' THEN '${k}'`))
      .join(' ')} END)`,
    json: `(${column} -> ${path})`,
    defined: `(${type} IS NOT NULL)`,
  };
}

/** An operand whose kind is known, undefined only when its SQL value is NULL. */
function typed(v: string, kind: Kind, nullable = true): Operand {
  const defined = nullable ? `((${v}) IS NOT NULL)` : '1';
  const json =
    kind === 'b' ? `(CASE WHEN ${v} THEN 'true' WHEN NOT ${v} THEN 'false' END)`
    : kind === 'z' ? `'null'`
    : kind === 'o' || kind === 'a' ? v
    : `json_quote(${v})`;
  return { v, kind, test: (k) => (k === kind ? defined : '0'), kindSql: nullable ? `(CASE WHEN ${defined} THEN '${kind}' END)` : `'${kind}'`, json, defined };
}

function literal(value: string | number | boolean | null): Operand {
  if (value === null) return typed('NULL', 'z', false);
  if (typeof value === 'boolean') return typed(value ? '1' : '0', 'b', false);
  if (typeof value === 'number') return typed(Number.isFinite(value) ? String(value) : 'NULL', 'n', false);
  return typed(sqlString(value), 's', false);
}

const COMPARABLE: Record<string, Kind[]> = { '=': ['n', 's', 'b', 'z'], '!=': ['n', 's', 'b', 'z'], '<': ['n', 's'], '>': ['n', 's'], '<=': ['n', 's'], '>=': ['n', 's'] };

export interface CompiledSource {
  /** FROM … JOIN …, and the condition every row of the collection meets. */
  from: string;
  /** The FROM clause with only the joins whose alias `sql` uses (q alone answers most filters). */
  fromFor(sql: string): string;
  base: string;
  /** Columns that order rows and continue paging. */
  keys: string[];
}

export function sourceOf(collection: Collection): CompiledSource {
  switch (collection) {
    // q: the twin as JSONB (twin_query_docs, kept in step by triggers), which SQLite reads several
    // times faster than JSON text; it drives the scan, so its key order is the result order.
    // A twin_query_docs row exists exactly when its twin, device (and module) do, so the other
    // tables are joined only when the query reads them.
    case 'devices':
    case 'devices.modules': {
      const joins: [string, string][] = [
        ['t', 'JOIN twins t ON t.device_id = q.device_id AND t.module_id = q.module_id'],
        ['d', 'JOIN devices d ON d.device_id = q.device_id'],
        ['m', 'JOIN modules m ON m.device_id = q.device_id AND m.module_id = q.module_id'],
      ];
      const fromFor = (sql: string) =>
        ['twin_query_docs q', ...joins.filter(([alias]) => new RegExp(`\\b${alias}\\.`).test(sql)).map(([, join]) => join)].join(' ');
      return collection === 'devices'
        ? { from: fromFor('t. d.'), fromFor, base: `q.module_id = ''`, keys: ['q.device_id'] }
        : { from: fromFor('t. d. m.'), fromFor, base: `q.module_id <> ''`, keys: ['q.device_id', 'q.module_id'] };
    }
    case 'devices.jobs':
      return { from: 'device_jobs j', fromFor: () => 'device_jobs j', base: '1', keys: ['j.device_id', 'j.job_id'] };
  }
}

export class QueryCompiler {
  constructor(private readonly collection: Collection) {}

  /** A WHERE condition: 1 only where the expression is boolean true. */
  condition(e: Expr): string {
    return this.bool(this.operand(e));
  }

  /** The value of an expression as JSON text (NULL when undefined), for projections and group keys. */
  json(e: Expr): string {
    return this.operand(e).json;
  }

  private bool(o: Operand): string {
    return o.kind === 'b' ? o.v : when(o.test('b'), o.v);
  }

  private operand(e: Expr): Operand {
    switch (e.kind) {
      case 'literal':
        return literal(e.value);
      case 'array': {
        if (!e.items.every((i) => i.kind === 'literal')) return UNDEFINED;
        const text = sqlString(JSON.stringify(e.items.map((i) => (i as { value: unknown }).value)));
        return { ...typed(text, 'a', false), json: text };
      }
      case 'path':
        return this.path(e.segments);
      case 'not':
        return typed(`(NOT ${this.bool(this.operand(e.operand))})`, 'b');
      case 'logical':
        return typed(`(${this.bool(this.operand(e.left))} ${e.op} ${this.bool(this.operand(e.right))})`, 'b');
      case 'compare':
        return typed(this.compare(e.op, this.operand(e.left), this.operand(e.right)), 'b');
      case 'in': {
        const o = this.operand(e.operand);
        const sql = this.inList(o, e.list.map((i) => this.operand(i)), e.list);
        return typed(e.negated ? `(NOT ${sql})` : sql, 'b');
      }
      case 'negate': {
        const o = this.operand(e.operand);
        return typed(when(o.test('n'), `(-${o.v})`), 'n');
      }
      case 'arithmetic': {
        const a = this.operand(e.left);
        const b = this.operand(e.right);
        const value =
          e.op === '/' ? `(CAST(${a.v} AS REAL) / ${b.v})`
          : e.op === '%' ? `(${a.v} % ${b.v})`
          : `(${a.v} ${e.op} ${b.v})`;
        return typed(when(and(a.test('n'), b.test('n')), value), 'n');
      }
      case 'call':
        return this.call(e.name, e.args.map((a) => this.operand(a)));
      case 'aggregate': {
        if (e.name === 'COUNT') return typed('COUNT(*)', 'n', false);
        const a = this.operand(e.arg!);
        const fn = { SUM: 'SUM', AVG: 'AVG', MIN: 'MIN', MAX: 'MAX' }[e.name];
        return typed(`${fn}(${when(a.test('n'), a.v)})`, 'n');
      }
    }
  }

  private compare(op: string, a: Operand, b: Operand): string {
    const kinds = COMPARABLE[op]!;
    const sqlOp = op === '!=' ? '<>' : op;
    const nullResult = op === '=' ? '1' : op === '!=' ? '0' : 'NULL';
    const known = a.kind ?? b.kind;
    if (known !== undefined) {
      if (!kinds.includes(known)) return 'NULL';
      const cond = and(a.kind ? (a.kind === known ? a.defined : '0') : a.test(known), b.kind ? (b.kind === known ? b.defined : '0') : b.test(known));
      return when(cond, known === 'z' ? nullResult : `(${a.v} ${sqlOp} ${b.v})`);
    }
    const valueKinds = kinds.filter((k) => k !== 'z').map(sqlString).join(', ');
    const nulls = kinds.includes('z') ? ` WHEN ${a.kindSql} = 'z' AND ${b.kindSql} = 'z' THEN ${nullResult}` : '';
    return `(CASE WHEN ${a.kindSql} = ${b.kindSql} AND ${a.kindSql} IN (${valueKinds}) THEN (${a.v} ${sqlOp} ${b.v})${nulls} END)`;
  }

  private inList(o: Operand, items: Operand[], exprs: Expr[]): string {
    if (items.length === 0) return '0';
    // All literals of one kind: one SQL IN, which an index on the column can serve (deviceId).
    const first = items[0]!.kind;
    if (exprs.every((x) => x.kind === 'literal') && (first === 'n' || first === 's') && items.every((i) => i.kind === first)) {
      return when(o.kind ? (o.kind === first ? o.defined : '0') : o.test(first), `(${o.v} IN (${items.map((i) => i.v).join(', ')}))`);
    }
    return `(${items.map((i) => this.compare('=', o, i)).join(' OR ')})`;
  }

  private call(name: string, args: Operand[]): Operand {
    const [a, b] = args as [Operand, Operand];
    const test = (k: Kind) => typed(a.test(k), 'b', false);
    switch (name) {
      case 'IS_DEFINED':
        return typed(a.defined, 'b', false);
      case 'IS_NULL':
        return test('z');
      case 'IS_STRING':
        return test('s');
      case 'IS_NUMBER':
        return test('n');
      case 'IS_BOOL':
        return test('b');
      case 'IS_OBJECT':
        return test('o');
      case 'IS_ARRAY':
        return test('a');
      case 'IS_PRIMITIVE':
        return typed(`(${['s', 'n', 'b', 'z'].map((k) => a.test(k as Kind)).join(' OR ')})`, 'b', false);
      case 'STARTSWITH':
        return typed(when(and(a.test('s'), b.test('s')), `(substr(${a.v}, 1, length(${b.v})) = ${b.v})`), 'b');
      case 'ENDSWITH':
        return typed(when(and(a.test('s'), b.test('s')), `(length(${b.v}) = 0 OR substr(${a.v}, -length(${b.v})) = ${b.v})`), 'b');
      case 'CONTAINS':
        return typed(when(and(a.test('s'), b.test('s')), `(instr(${a.v}, ${b.v}) > 0)`), 'b');
      case 'LOWER':
        return typed(when(a.test('s'), `lower(${a.v})`), 's');
      case 'UPPER':
        return typed(when(a.test('s'), `upper(${a.v})`), 's');
      case 'LENGTH':
        return typed(when(a.test('s'), `length(${a.v})`), 'n');
      case 'ABS':
        return typed(when(a.test('n'), `abs(${a.v})`), 'n');
      case 'FLOOR':
        return typed(when(a.test('n'), `floor(${a.v})`), 'n');
      case 'CEILING':
        return typed(when(a.test('n'), `ceil(${a.v})`), 'n');
      default:
        return UNDEFINED;
    }
  }

  private path(segments: string[]): Operand {
    const [top, ...rest] = segments as [string, ...string[]];
    if (this.collection === 'devices.jobs') {
      const column = { deviceId: 'j.device_id', jobId: 'j.job_id', status: 'j.status' }[top];
      if (column) return rest.length ? UNDEFINED : typed(column, 's', false);
      return jsonOperand('j.doc', segments);
    }
    const modules = this.collection === 'devices.modules';
    const identity = modules ? 'm.doc' : 'd.doc';
    const column = (c: string, kind: Kind) => (rest.length ? UNDEFINED : typed(c, kind, false));
    switch (top) {
      case 'deviceId':
        return column('q.device_id', 's');
      case 'moduleId':
        return modules ? column('q.module_id', 's') : UNDEFINED;
      case 'etag':
        return column('t.etag', 's');
      case 'version':
        return column('t.version', 'n');
      case 'deviceEtag':
        return column(modules ? 'm.etag' : 'd.etag', 's');
      case 'status':
        return column('d.status', 's');
      case 'statusReason':
        return modules ? UNDEFINED : jsonOperand('d.doc', segments);
      case 'statusUpdateTime':
        return jsonOperand('d.doc', ['statusUpdatedTime', ...rest]);
      case 'connectionState':
        return modules ? jsonOperand('m.doc', segments) : column('d.connection_state', 's');
      case 'lastActivityTime':
      case 'cloudToDeviceMessageCount':
        return jsonOperand(identity, segments);
      case 'authenticationType':
        return jsonOperand(identity, ['authentication', 'type', ...rest]);
      case 'x509Thumbprint':
        return jsonOperand(identity, ['authentication', ...segments]);
      case 'capabilities':
      case 'deviceScope':
      case 'parentScopes':
        return modules ? UNDEFINED : jsonOperand('d.doc', segments);
      case 'modelId':
        return rest.length ? UNDEFINED : literal('');
      case 'tags':
      case 'configurations':
        return jsonOperand('q.doc', segments);
      case 'properties': {
        if (rest.length === 0) {
          const v = `json_object('desired', q.doc -> '$.desired', 'reported', q.doc -> '$.reported')`;
          return { ...typed(v, 'o', false), json: v };
        }
        if (rest[0] === 'desired' || rest[0] === 'reported') return jsonOperand('q.doc', rest);
        return UNDEFINED;
      }
      default:
        return UNDEFINED;
    }
  }
}

/** The SQL of a query's filter over its collection (base condition included). */
export function whereSql(query: Pick<Query, 'from' | 'where'>, useIndex: (s: Sargable) => boolean = () => false): string {
  const source = sourceOf(query.from);
  if (!query.where) return source.base;
  const compiler = new QueryCompiler(query.from);
  const ranges = sargable(query.from, query.where).filter(useIndex).map((s) => s.sql);
  return and(source.base, ...ranges, compiler.condition(query.where));
}

export interface Sargable {
  /** The twins-document JSON path compared. */
  path: string;
  /** How many literal values it is compared with for equality (0 for a range). */
  equalities: number;
  /** A redundant `json_extract(q.doc, path) <op> literal` that an expression index can serve. */
  sql: string;
}

/**
 * The top-level AND terms of a condition that compare a twin-document path with literals.
 * The type-strict comparison SQL cannot use an index; these plain comparisons, implied by it,
 * can (they are added beside it, never instead of it, so the result does not change).
 */
export function sargable(collection: Collection, where: Expr): Sargable[] {
  if (collection === 'devices.jobs') return [];
  const terms: Expr[] = [];
  const flatten = (e: Expr): void => {
    if (e.kind === 'logical' && e.op === 'AND') {
      flatten(e.left);
      flatten(e.right);
    } else terms.push(e);
  };
  flatten(where);
  const out: Sargable[] = [];
  const docPath = (e: Expr): string | undefined => {
    if (e.kind !== 'path') return undefined;
    const [top, ...rest] = e.segments;
    const segs = top === 'tags' ? e.segments : top === 'properties' && (rest[0] === 'desired' || rest[0] === 'reported') ? rest : undefined;
    return segs && segs.length > 1 ? jsonPath(segs) : undefined;
  };
  const lit = (e: Expr) => (e.kind === 'literal' && (typeof e.value === 'string' || typeof e.value === 'number') ? literal(e.value).v : undefined);
  const flip: Record<string, string> = { '<': '>', '>': '<', '<=': '>=', '>=': '<=', '=': '=' };
  for (const term of terms) {
    if (term.kind === 'compare' && term.op !== '!=') {
      const [path, value, op] = docPath(term.left) ? [docPath(term.left), lit(term.right), term.op] : [docPath(term.right), lit(term.left), flip[term.op]!];
      if (path && value !== undefined) out.push({ path, equalities: op === '=' ? 1 : 0, sql: `json_extract(q.doc, ${sqlString(path)}) ${op} ${value}` });
    } else if (term.kind === 'in' && !term.negated) {
      const path = docPath(term.operand);
      const values = term.list.map(lit);
      if (path && values.length > 0 && values.every((v) => v !== undefined)) out.push({ path, equalities: values.length, sql: `json_extract(q.doc, ${sqlString(path)}) IN (${values.join(', ')})` });
    }
  }
  return out;
}
