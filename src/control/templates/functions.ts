/**
 * The template functions: ARM's standard library (a subset; see docs/compatibility.md). Function
 * names are case-insensitive. Everything that needs the deployment (parameters, variables,
 * copyIndex, reference, listKeys, the scope) comes from a FunctionEnv: no I/O here.
 */
import JSON5 from 'json5';
import { randomUUID } from 'node:crypto';
import { ExpressionError } from './errors.js';
import { type Ast, type Evaluator, type Value, typeName } from './expressions.js';
import { armGuid, uniqueString } from './hash.js';

export interface FunctionEnv {
  parameter(name: string): Value;
  variable(name: string): Value;
  copyIndex(loopName: string | undefined): number;
  resourceGroup(): Value;
  subscription(): Value;
  deployment(): Value;
  tenantId: string;
  subscriptionId: string;
  /** Undefined at subscription scope. */
  resourceGroupName: string | undefined;
  reference(target: string, apiVersion: string | undefined, full: boolean): Value;
  listKeys(resourceId: string, apiVersion: string): Value;
  /** newGuid() and utcNow() are allowed only in parameter default values. */
  nonDeterministicAllowed: boolean;
}

type Fn = (args: Value[], env: FunctionEnv, name: string) => Value;

const err = (message: string) => new ExpressionError(message);

function arity(name: string, args: Value[], min: number, max = min) {
  if (args.length < min || args.length > max) {
    const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw err(`Unable to evaluate template language function '${name}': function requires ${expected} argument(s) while ${args.length} were provided.`);
  }
}

function str(name: string, v: Value, what = 'parameters'): string {
  if (typeof v !== 'string') throw err(`The template language function '${name}' expects its ${what} to be of type 'String'. The provided value is of type '${typeName(v)}'.`);
  return v;
}
function int(name: string, v: Value): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw err(`The template language function '${name}' expects its parameters to be integers. The provided value is of type '${typeName(v)}'.`);
  return v;
}
function arr(name: string, v: Value): Value[] {
  if (!Array.isArray(v)) throw err(`The template language function '${name}' expects its parameter to be an array. The provided value is of type '${typeName(v)}'.`);
  return v;
}
const isObject = (v: Value): v is { [k: string]: Value } => v !== null && typeof v === 'object' && !Array.isArray(v);

/** How ARM turns a value into text (concat, format, string): .NET's spelling of booleans, compact JSON. */
export function toText(v: Value): string {
  if (v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

export function deepEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]!));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k]!, b[k]!));
  }
  return false;
}

function deepMerge(a: { [k: string]: Value }, b: { [k: string]: Value }): { [k: string]: Value } {
  const out: { [k: string]: Value } = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = prev !== undefined && isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

/** .NET composite formatting: `{index[,alignment][:format]}`, `{{` and `}}` for braces. */
export function dotnetFormat(format: string, args: Value[]): string {
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c === '{') {
      if (format[i + 1] === '{') {
        out += '{';
        i++;
        continue;
      }
      const end = format.indexOf('}', i);
      if (end < 0) throw err(`The format string '${format}' is not valid: a '{' is not closed.`);
      const m = /^\s*(\d+)\s*(?:,\s*(-?\d+))?\s*(?::(.*))?$/s.exec(format.slice(i + 1, end));
      if (!m) throw err(`The format string '${format}' is not valid: '${format.slice(i, end + 1)}' is not a format item.`);
      const index = Number(m[1]);
      if (index >= args.length) throw err(`The format string '${format}' refers to argument '${index}' but only ${args.length} argument(s) were provided.`);
      let text = formatValue(args[index]!, m[3]);
      const align = m[2] ? Number(m[2]) : 0;
      if (align > 0) text = text.padStart(align);
      else if (align < 0) text = text.padEnd(-align);
      out += text;
      i = end;
    } else if (c === '}') {
      if (format[i + 1] === '}') i++;
      out += '}';
    } else {
      out += c;
    }
  }
  return out;
}

function formatValue(v: Value, spec: string | undefined): string {
  if (spec === undefined || spec === '' || typeof v !== 'number') return toText(v);
  const m = /^([NnDdXxFfPp])(\d*)$/.exec(spec);
  if (!m) return toText(v);
  const digits = m[2] ? Number(m[2]) : undefined;
  switch (m[1]) {
    case 'N':
    case 'n':
      return v.toLocaleString('en-US', { minimumFractionDigits: digits ?? 2, maximumFractionDigits: digits ?? 2 });
    case 'F':
    case 'f':
      return v.toFixed(digits ?? 2);
    case 'P':
    case 'p':
      return `${(v * 100).toLocaleString('en-US', { minimumFractionDigits: digits ?? 2, maximumFractionDigits: digits ?? 2 })} %`;
    case 'D':
    case 'd':
      return (v < 0 ? '-' : '') + String(Math.abs(Math.trunc(v))).padStart(digits ?? 0, '0');
    case 'X':
      return (v >>> 0).toString(16).toUpperCase().padStart(digits ?? 0, '0');
    default:
      return (v >>> 0).toString(16).padStart(digits ?? 0, '0');
  }
}

/** Splits `Ns/type1/type2` and names into the id tail `providers/Ns/type1/n1/type2/n2`. */
function providerPath(fn: string, type: string, names: Value[]): string {
  const t = type.replace(/\/+$/, '');
  const typeSegments = t.split('/').filter((s) => s !== '');
  if (typeSegments.length < 2) throw err(`The template language function '${fn}' has an invalid resource type '${type}': a type is '{namespace}/{type}'.`);
  const nameSegments = names.flatMap((n) => str(fn, n).split('/')).filter((s) => s !== '');
  if (nameSegments.length !== typeSegments.length - 1) {
    throw err(`The template language function '${fn}' has invalid parameters: the resource type '${t}' requires '${typeSegments.length - 1}' resource name argument(s), but '${nameSegments.length}' were provided.`);
  }
  let out = `providers/${typeSegments[0]}`;
  for (let i = 1; i < typeSegments.length; i++) out += `/${typeSegments[i]}/${nameSegments[i - 1]}`;
  return out;
}

/** resourceId([subscriptionId], [resourceGroupName], type, name1, name2, …). */
function resourceId(args: Value[], env: FunctionEnv): string {
  arity('resourceId', args, 2, Infinity);
  const all = args.map((a) => str('resourceId', a));
  const typeAt = all.findIndex((a) => a.includes('/'));
  if (typeAt < 0 || typeAt > 2) throw err(`The template language function 'resourceId' has invalid parameters: no resource type of the form '{namespace}/{type}' was found.`);
  let subscriptionId = env.subscriptionId;
  let group = env.resourceGroupName;
  if (typeAt === 2) {
    subscriptionId = all[0]!;
    group = all[1]!;
  } else if (typeAt === 1) {
    group = all[0]!;
  }
  const tail = providerPath('resourceId', all[typeAt]!, all.slice(typeAt + 1));
  return group === undefined ? `/subscriptions/${subscriptionId}/${tail}` : `/subscriptions/${subscriptionId}/resourceGroups/${group}/${tail}`;
}

function subscriptionResourceId(args: Value[], env: FunctionEnv): string {
  arity('subscriptionResourceId', args, 2, Infinity);
  const all = args.map((a) => str('subscriptionResourceId', a));
  const typeAt = all.findIndex((a) => a.includes('/'));
  if (typeAt < 0 || typeAt > 1) throw err(`The template language function 'subscriptionResourceId' has invalid parameters: no resource type of the form '{namespace}/{type}' was found.`);
  const sub = typeAt === 1 ? all[0]! : env.subscriptionId;
  return `/subscriptions/${sub}/${providerPath('subscriptionResourceId', all[typeAt]!, all.slice(typeAt + 1))}`;
}

const functions: Record<string, Fn> = {
  // deployment scope
  parameters: (a, env, n) => (arity(n, a, 1), env.parameter(str(n, a[0]!))),
  variables: (a, env, n) => (arity(n, a, 1), env.variable(str(n, a[0]!))),
  resourcegroup: (a, env, n) => (arity(n, a, 0), env.resourceGroup()),
  subscription: (a, env, n) => (arity(n, a, 0), env.subscription()),
  deployment: (a, env, n) => (arity(n, a, 0), env.deployment()),
  tenant: (a, env, n) => (arity(n, a, 0), { tenantId: env.tenantId, countryCode: '', displayName: '' }),
  copyindex: (a, env, n) => {
    arity(n, a, 0, 2);
    let loop: string | undefined;
    let offset = 0;
    if (typeof a[0] === 'string') {
      loop = a[0];
      if (a.length > 1) offset = int(n, a[1]!);
    } else if (a.length > 0) {
      offset = int(n, a[0]!);
    }
    return env.copyIndex(loop) + offset;
  },
  reference: (a, env, n) => {
    arity(n, a, 1, 3);
    const full = a.length === 3 && typeof a[2] === 'string' && a[2].toLowerCase() === 'full';
    return env.reference(str(n, a[0]!), a.length > 1 ? str(n, a[1]!) : undefined, full);
  },
  listkeys: (a, env, n) => (arity(n, a, 2), env.listKeys(str(n, a[0]!), str(n, a[1]!))),
  resourceid: (a, env) => resourceId(a, env),
  subscriptionresourceid: (a, env) => subscriptionResourceId(a, env),
  tenantresourceid: (a, _env, n) => {
    arity(n, a, 2, Infinity);
    return `/${providerPath(n, str(n, a[0]!), a.slice(1))}`;
  },
  extensionresourceid: (a, _env, n) => {
    arity(n, a, 3, Infinity);
    return `${str(n, a[0]!).replace(/\/+$/, '')}/${providerPath(n, str(n, a[1]!), a.slice(2))}`;
  },

  // logical and comparison
  true: (a, _e, n) => (arity(n, a, 0), true),
  false: (a, _e, n) => (arity(n, a, 0), false),
  null: (a, _e, n) => (arity(n, a, 0), null),
  and: (a, _e, n) => (arity(n, a, 2, Infinity), a.every((v) => bool(n, v))),
  or: (a, _e, n) => (arity(n, a, 2, Infinity), a.some((v) => bool(n, v))),
  not: (a, _e, n) => (arity(n, a, 1), !bool(n, a[0]!)),
  bool: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') return v !== 0;
    if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
    throw err(`The template language function 'bool' cannot convert the value '${toText(v)}' to a boolean.`);
  },
  equals: (a, _e, n) => (arity(n, a, 2), deepEqual(a[0]!, a[1]!)),
  greater: (a, _e, n) => (arity(n, a, 2), compare(n, a[0]!, a[1]!) > 0),
  greaterorequals: (a, _e, n) => (arity(n, a, 2), compare(n, a[0]!, a[1]!) >= 0),
  less: (a, _e, n) => (arity(n, a, 2), compare(n, a[0]!, a[1]!) < 0),
  lessorequals: (a, _e, n) => (arity(n, a, 2), compare(n, a[0]!, a[1]!) <= 0),
  coalesce: (a, _e, n) => (arity(n, a, 1, Infinity), a.find((v) => v !== null) ?? null),

  // numbers
  int: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    if (typeof v === 'number') return Math.trunc(v);
    if (typeof v === 'string' && /^\s*[-+]?\d+\s*$/.test(v)) return Number(v);
    throw err(`The template language function 'int' cannot convert the value '${toText(v)}' to an integer.`);
  },
  float: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    const f = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
    if (Number.isNaN(f)) throw err(`The template language function 'float' cannot convert the value '${toText(v)}' to a number.`);
    return f;
  },
  add: (a, _e, n) => (arity(n, a, 2), int(n, a[0]!) + int(n, a[1]!)),
  sub: (a, _e, n) => (arity(n, a, 2), int(n, a[0]!) - int(n, a[1]!)),
  mul: (a, _e, n) => (arity(n, a, 2), int(n, a[0]!) * int(n, a[1]!)),
  div: (a, _e, n) => {
    arity(n, a, 2);
    if (int(n, a[1]!) === 0) throw err(`The template language function 'div' cannot divide by zero.`);
    return Math.trunc(int(n, a[0]!) / (a[1] as number));
  },
  mod: (a, _e, n) => {
    arity(n, a, 2);
    if (int(n, a[1]!) === 0) throw err(`The template language function 'mod' cannot divide by zero.`);
    return int(n, a[0]!) % (a[1] as number);
  },
  min: (a, _e, n) => minMax(n, a, Math.min),
  max: (a, _e, n) => minMax(n, a, Math.max),
  range: (a, _e, n) => {
    arity(n, a, 2);
    const start = int(n, a[0]!);
    const count = int(n, a[1]!);
    if (count < 0 || count > 10000) throw err(`The template language function 'range' expects a count between 0 and 10000; '${count}' was provided.`);
    return Array.from({ length: count }, (_, i) => start + i);
  },

  // strings
  concat: (a, _e, n) => {
    arity(n, a, 1, Infinity);
    if (a.every((v) => Array.isArray(v) || v === null)) return a.flatMap((v) => (v === null ? [] : (v as Value[])));
    if (a.some((v) => Array.isArray(v))) throw err(`The template language function 'concat' expects its parameters to be all arrays or all primitive values.`);
    return a.map(toText).join('');
  },
  format: (a, _e, n) => (arity(n, a, 1, Infinity), dotnetFormat(str(n, a[0]!), a.slice(1))),
  string: (a, _e, n) => (arity(n, a, 1), toText(a[0]!)),
  tolower: (a, _e, n) => (arity(n, a, 1), str(n, a[0]!).toLowerCase()),
  toupper: (a, _e, n) => (arity(n, a, 1), str(n, a[0]!).toUpperCase()),
  trim: (a, _e, n) => (arity(n, a, 1), str(n, a[0]!).trim()),
  replace: (a, _e, n) => (arity(n, a, 3), str(n, a[0]!).split(str(n, a[1]!)).join(str(n, a[2]!))),
  split: (a, _e, n) => {
    arity(n, a, 2);
    const s = str(n, a[0]!);
    const delims = Array.isArray(a[1]) ? a[1].map((d) => str(n, d)) : [str(n, a[1]!)];
    let parts = [s];
    for (const d of delims) parts = parts.flatMap((p) => p.split(d));
    return parts;
  },
  substring: (a, _e, n) => {
    arity(n, a, 2, 3);
    const s = str(n, a[0]!);
    const start = int(n, a[1]!);
    const length = a.length > 2 ? int(n, a[2]!) : s.length - start;
    if (start < 0 || length < 0 || start + length > s.length) {
      throw err(`The index and length parameters must refer to a location within the string. The index parameter: '${start}', the length parameter: '${length}', the length of the string parameter: '${s.length}'.`);
    }
    return s.substring(start, start + length);
  },
  startswith: (a, _e, n) => (arity(n, a, 2), str(n, a[0]!).toLowerCase().startsWith(str(n, a[1]!).toLowerCase())),
  endswith: (a, _e, n) => (arity(n, a, 2), str(n, a[0]!).toLowerCase().endsWith(str(n, a[1]!).toLowerCase())),
  indexof: (a, _e, n) => indexOf(n, a, false),
  lastindexof: (a, _e, n) => indexOf(n, a, true),
  padleft: (a, _e, n) => {
    arity(n, a, 2, 3);
    const pad = a.length > 2 ? str(n, a[2]!) : ' ';
    return toText(a[0]!).padStart(int(n, a[1]!), pad.slice(0, 1));
  },
  guid: (a, _e, n) => (arity(n, a, 1, Infinity), armGuid(a.map((v) => str(n, v)))),
  uniquestring: (a, _e, n) => (arity(n, a, 1, Infinity), uniqueString(a.map((v) => str(n, v)))),
  newguid: (a, env, n) => (arity(n, a, 0), onlyInDefaults(n, env), randomUUID()),
  utcnow: (a, env, n) => {
    arity(n, a, 0, 1);
    onlyInDefaults(n, env);
    const iso = new Date().toISOString();
    const f = a.length ? str(n, a[0]!) : 'yyyyMMddTHHmmssZ';
    if (f === 'u') return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    if (f === 'o' || f === 'O') return iso.replace('Z', '0000Z');
    return f
      .replace(/yyyy/g, iso.slice(0, 4))
      .replace(/MM/g, iso.slice(5, 7))
      .replace(/dd/g, iso.slice(8, 10))
      .replace(/HH/g, iso.slice(11, 13))
      .replace(/mm/g, iso.slice(14, 16))
      .replace(/ss/g, iso.slice(17, 19));
  },
  base64: (a, _e, n) => (arity(n, a, 1), Buffer.from(str(n, a[0]!), 'utf8').toString('base64')),
  base64tostring: (a, _e, n) => (arity(n, a, 1), Buffer.from(str(n, a[0]!), 'base64').toString('utf8')),
  base64tojson: (a, _e, n) => (arity(n, a, 1), parseJson(Buffer.from(str(n, a[0]!), 'base64').toString('utf8'))),
  uri: (a, _e, n) => {
    arity(n, a, 2);
    try {
      return new URL(str(n, a[1]!), str(n, a[0]!)).toString();
    } catch {
      throw err(`The template language function 'uri' cannot combine '${toText(a[0]!)}' and '${toText(a[1]!)}' into a URI.`);
    }
  },
  uricomponent: (a, _e, n) => (arity(n, a, 1), encodeURIComponent(str(n, a[0]!))),
  uricomponenttostring: (a, _e, n) => (arity(n, a, 1), decodeURIComponent(str(n, a[0]!))),

  // arrays and objects
  array: (a, _e, n) => (arity(n, a, 1), Array.isArray(a[0]) ? a[0] : [a[0]!]),
  createarray: (a) => [...a],
  createobject: (a, _e, n) => {
    if (a.length % 2 !== 0) throw err(`The template language function 'createObject' expects an even number of parameters (property names and values); ${a.length} were provided.`);
    const out: { [k: string]: Value } = {};
    for (let i = 0; i < a.length; i += 2) out[str(n, a[i]!)] = a[i + 1]!;
    return out;
  },
  json: (a, _e, n) => (arity(n, a, 1), parseJson(str(n, a[0]!))),
  empty: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    if (v === null) return true;
    if (typeof v === 'string' || Array.isArray(v)) return v.length === 0;
    if (isObject(v)) return Object.keys(v).length === 0;
    throw err(`The template language function 'empty' expects a string, an array or an object; the value is of type '${typeName(v)}'.`);
  },
  length: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (isObject(v)) return Object.keys(v).length;
    throw err(`The template language function 'length' expects a string, an array or an object; the value is of type '${typeName(v)}'.`);
  },
  contains: (a, _e, n) => {
    arity(n, a, 2);
    const [c, item] = [a[0]!, a[1]!];
    if (typeof c === 'string') return c.includes(toText(item));
    if (Array.isArray(c)) return c.some((x) => deepEqual(x, item));
    if (isObject(c)) {
      const k = str(n, item).toLowerCase();
      return Object.keys(c).some((x) => x.toLowerCase() === k);
    }
    throw err(`The template language function 'contains' expects a string, an array or an object as its first parameter; the value is of type '${typeName(c)}'.`);
  },
  first: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    if (typeof v === 'string' || Array.isArray(v)) return v.length ? v[0]! : null;
    return arr(n, v)[0] ?? null;
  },
  last: (a, _e, n) => {
    arity(n, a, 1);
    const v = a[0]!;
    if (typeof v === 'string' || Array.isArray(v)) return v.length ? v[v.length - 1]! : null;
    return arr(n, v).at(-1) ?? null;
  },
  take: (a, _e, n) => {
    arity(n, a, 2);
    const count = Math.max(0, int(n, a[1]!));
    const v = a[0]!;
    if (typeof v === 'string') return v.slice(0, count);
    return arr(n, v).slice(0, count);
  },
  skip: (a, _e, n) => {
    arity(n, a, 2);
    const count = Math.max(0, int(n, a[1]!));
    const v = a[0]!;
    if (typeof v === 'string') return v.slice(count);
    return arr(n, v).slice(count);
  },
  union: (a, _e, n) => {
    arity(n, a, 2, Infinity);
    if (a.every(isObject)) return a.reduce<{ [k: string]: Value }>((acc, o) => deepMerge(acc, o as { [k: string]: Value }), {});
    if (a.every(Array.isArray)) {
      const out: Value[] = [];
      for (const item of a.flat(1)) if (!out.some((x) => deepEqual(x, item))) out.push(item);
      return out;
    }
    throw err(`The template language function 'union' expects its parameters to be all arrays or all objects.`);
  },
  intersection: (a, _e, n) => {
    arity(n, a, 2, Infinity);
    if (a.every(Array.isArray)) {
      const [firstArr, ...rest] = a as Value[][];
      const out: Value[] = [];
      for (const item of firstArr!) if (rest.every((r) => r.some((x) => deepEqual(x, item))) && !out.some((x) => deepEqual(x, item))) out.push(item);
      return out;
    }
    if (a.every(isObject)) {
      const [firstObj, ...rest] = a as { [k: string]: Value }[];
      const out: { [k: string]: Value } = {};
      for (const [k, v] of Object.entries(firstObj!)) if (rest.every((r) => k in r && deepEqual(r[k]!, v))) out[k] = v;
      return out;
    }
    throw err(`The template language function 'intersection' expects its parameters to be all arrays or all objects.`);
  },
  join: (a, _e, n) => (arity(n, a, 2), arr(n, a[0]!).map(toText).join(str(n, a[1]!))),
  items: (a, _e, n) => {
    arity(n, a, 1);
    const o = a[0]!;
    if (!isObject(o)) throw err(`The template language function 'items' expects an object; the value is of type '${typeName(o)}'.`);
    return Object.keys(o)
      .sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase()))
      .map((key) => ({ key, value: o[key]! }));
  },
};

function bool(name: string, v: Value): boolean {
  if (typeof v !== 'boolean') throw err(`The template language function '${name}' expects its parameters to be of type 'Boolean'. The provided value is of type '${typeName(v)}'.`);
  return v;
}
function compare(name: string, x: Value, y: Value): number {
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  if (typeof x === 'string' && typeof y === 'string') return x < y ? -1 : x > y ? 1 : 0;
  throw err(`The template language function '${name}' expects two integers or two strings; the values are of type '${typeName(x)}' and '${typeName(y)}'.`);
}
function minMax(name: string, a: Value[], pick: (...v: number[]) => number): number {
  arity(name, a, 1, Infinity);
  const values = a.length === 1 && Array.isArray(a[0]) ? a[0] : a;
  if (values.length === 0) throw err(`The template language function '${name}' expects at least one value.`);
  return pick(...values.map((v) => int(name, v)));
}
function indexOf(name: string, a: Value[], last: boolean): number {
  arity(name, a, 2);
  const [c, item] = [a[0]!, a[1]!];
  if (typeof c === 'string') {
    const s = c.toLowerCase();
    const t = str(name, item).toLowerCase();
    return last ? s.lastIndexOf(t) : s.indexOf(t);
  }
  const list = arr(name, c);
  if (last) {
    for (let i = list.length - 1; i >= 0; i--) if (deepEqual(list[i]!, item)) return i;
    return -1;
  }
  return list.findIndex((x) => deepEqual(x, item));
}
function onlyInDefaults(name: string, env: FunctionEnv) {
  if (!env.nonDeterministicAllowed) {
    throw err(`The template function '${name}' is not expected at this location. The function can only be used with parameter default values.`);
  }
}
function parseJson(text: string): Value {
  if (text.trim() === '') return null;
  try {
    return JSON5.parse(text.replace(/''/g, "'")) as Value;
  } catch {
    throw err(`The template language function 'json' has an invalid parameter: the value '${text}' is not valid JSON.`);
  }
}

/** The function table as an Evaluator for expressions.ts, bound to one FunctionEnv. */
export function evaluatorFor(env: FunctionEnv): Evaluator {
  return {
    call(name, args) {
      const fn = Object.hasOwn(functions, name.toLowerCase()) ? functions[name.toLowerCase()] : undefined;
      if (!fn) throw new ExpressionError(`The template function '${name}' is not valid.`);
      return fn(args, env, name);
    },
    lazy(name, args: Ast[], evaluate) {
      const lower = name.toLowerCase();
      if (lower === 'if') {
        if (args.length !== 3) throw err(`Unable to evaluate template language function 'if': function requires 3 argument(s) while ${args.length} were provided.`);
        return bool(name, evaluate(args[0]!)) ? evaluate(args[1]!) : evaluate(args[2]!);
      }
      return undefined;
    },
  };
}

export function isKnownFunction(name: string): boolean {
  return Object.hasOwn(functions, name.toLowerCase()) || name.toLowerCase() === 'if';
}
