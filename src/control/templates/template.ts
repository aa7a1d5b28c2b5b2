/**
 * ARM deployment templates: validation, planning and a pure executor.
 *
 * `planDeployment` checks a template against its parameters (ARM's InvalidTemplate errors), expands
 * `copy` loops, evaluates `condition`s, names and ids, resolves `dependsOn` (by id, by
 * `type/name`, by name, by copy-loop name; plus the implicit dependency of `reference()` and
 * `listKeys()` on a resource of the same template), and orders the resources topologically
 * (cycles are refused). Nested `Microsoft.Resources/deployments` with an inline template are
 * planned recursively, in the parent's expression scope (`outer`, the default) or their own
 * (`expressionEvaluationOptions.scope: 'inner'`).
 *
 * `deploy` runs a plan in dependency order, one resource at a time, through the `apply` callback
 * (which creates or updates the resource and returns it as GET would), evaluating each resource's
 * body just before it is applied so that `reference()` sees what was deployed before it. It stops at
 * the first failure; what was applied stays applied, as in ARM.
 *
 * No I/O here: everything outside the template comes through DeploymentContext and `apply`.
 */
import { ArmError, type ArmErrorBody, ExpressionError, expressionFailed, invalidTemplate } from './errors.js';
import { type Ast, type Value, evaluateAst, isExpression, parseExpression, typeName, unescapeLiteral } from './expressions.js';
import { type FunctionEnv, evaluatorFor } from './functions.js';

export interface DeploymentContext {
  subscriptionId: string;
  tenantId: string;
  subscriptionDisplayName?: string;
  /** The target resource group; undefined for a subscription-scope deployment. */
  resourceGroup?: { name: string; location: string; id?: string; tags?: Record<string, string> };
  deploymentName: string;
  /** A resource outside this deployment: its properties, or the whole resource with full. Undefined: not found. */
  reference(resourceId: string, apiVersion: string | undefined, full: boolean): unknown;
  listKeys(resourceId: string, apiVersion: string): unknown;
}

export interface ResourceToApply {
  id: string;
  type: string;
  name: string;
  apiVersion: string;
  /** Everything but name/type/apiVersion/dependsOn/condition/copy, evaluated: location, sku, identity, properties, … */
  body: { [key: string]: Value };
  /** The deployment that applies it (nested deployments have their own name). */
  deploymentName: string;
}

/** What `apply` returns: the resource as a GET would show it (its `properties` are what reference() reads). */
export type AppliedResource = { [key: string]: unknown };

export type Apply = (resource: ResourceToApply) => Promise<AppliedResource>;

export interface PlannedResource {
  id: string;
  name: string;
  type: string;
  apiVersion: string;
  /** The template path of the resource definition, e.g. `resources[1]`. */
  path: string;
  condition: boolean;
  copy?: { name: string; index: number };
  /** Ids of the resources (of this template) it waits for. */
  dependsOn: string[];
  /** The evaluated body; undefined when it reads a resource of this deployment not yet deployed. */
  body?: { [key: string]: Value };
  /** For an inline nested deployment: its own plan. */
  nested?: DeploymentPlan;
}

export interface DeploymentPlan {
  deploymentName: string;
  parameters: Record<string, Value>;
  /** In deployment order. */
  resources: PlannedResource[];
}

export interface ResourceResult {
  id: string;
  type: string;
  name: string;
  status: 'Succeeded' | 'Failed' | 'Skipped';
  resource?: AppliedResource;
  error?: ArmErrorBody;
  nested?: DeploymentResult;
}

export type Outputs = Record<string, { type: string; value: Value }>;

export interface DeploymentResult {
  deploymentName: string;
  status: 'Succeeded' | 'Failed';
  resources: ResourceResult[];
  outputs: Outputs;
  error?: ArmErrorBody;
}

type Json = Value;
type Obj = { [k: string]: Json };
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const DEPLOYMENTS = 'microsoft.resources/deployments';
const RESOURCES_HELP = 'Please see https://aka.ms/arm-template/#resources for usage details.';

/** A reference() to a resource of this deployment that is not deployed yet (planning only). */
class NotYetDeployed extends Error {}

function getCI(o: Obj, key: string): Json | undefined {
  if (Object.hasOwn(o, key)) return o[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

/** Parameter values as ARM's deployment body gives them (`{name: {value}}`) or plain (`{name: value}`). */
export function normalizeParameters(input: Record<string, unknown> | undefined): Record<string, Json> {
  const out: Record<string, Json> = {};
  if (!input) return out;
  const entries = Object.entries(input);
  const armShape = entries.length > 0 && entries.every(([, v]) => isObj(v as Json) && ('value' in (v as Obj) || 'reference' in (v as Obj)));
  for (const [k, v] of entries) {
    if (!armShape) {
      out[k] = v as Json;
      continue;
    }
    const entry = v as Obj;
    if (!('value' in entry)) {
      throw invalidTemplate(`The template parameter '${k}' uses a Key Vault reference, which Fleethub does not support; pass the value instead.`, `parameters.${k}`);
    }
    out[k] = entry.value!;
  }
  return out;
}

const PARAM_TYPES: Record<string, string> = {
  string: 'String',
  securestring: 'String',
  int: 'Integer',
  bool: 'Boolean',
  object: 'Object',
  secureobject: 'Object',
  array: 'Array',
};
const OUTPUT_TYPES: Record<string, string> = {
  string: 'String',
  securestring: 'SecureString',
  int: 'Int',
  bool: 'Bool',
  object: 'Object',
  secureobject: 'SecureObject',
  array: 'Array',
};

type CopyCtx = { loops: Record<string, number>; current?: string };
const NO_COPY: CopyCtx = { loops: {} };

interface ResourceDef {
  raw: Obj;
  path: string;
  /** For a child resource declared inside its parent: the parent's definition. */
  parent?: ResourceDef;
}

interface Instance {
  def: ResourceDef;
  copy: CopyCtx;
  copyName?: string;
  copyIndex?: number;
  id: string;
  name: string;
  type: string;
  apiVersion: string;
  condition: boolean;
  dependsOn: Set<string>;
}

/** One template with its parameters, variables and resources, in one expression scope. */
class TemplateScope {
  private readonly parameterValues = new Map<string, Json>();
  private readonly variableCache = new Map<string, Json>();
  private readonly variablesInProgress = new Set<string>();
  private readonly parametersInProgress = new Set<string>();
  instances: Instance[] = [];
  /** id (lower case) → what was deployed, for reference(). */
  readonly deployed = new Map<string, AppliedResource>();

  constructor(
    readonly template: Obj,
    readonly path: string,
    readonly ctx: DeploymentContext,
    supplied: Record<string, Json>,
    /** Outer-scope nested templates read the parent's parameters, variables and copy indexes. */
    readonly outer?: { scope: TemplateScope; copy: CopyCtx },
  ) {
    if (!outer) this.resolveParameters(supplied);
  }

  at(rel: string): string {
    return this.path ? `${this.path}.${rel}` : rel;
  }

  // ---- parameters ------------------------------------------------------------------------------

  private parameterDefs(): Obj {
    const p = this.template.parameters ?? {};
    if (!isObj(p)) throw invalidTemplate(`The template 'parameters' section must be an object.`, this.at('parameters'));
    return p;
  }

  private resolveParameters(supplied: Record<string, Json>) {
    const defs = this.parameterDefs();
    const unknown = Object.keys(supplied).filter((k) => getCI(defs, k) === undefined);
    if (unknown.length) {
      throw invalidTemplate(
        `The template parameters '${unknown.join(', ')}' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '${Object.keys(defs).join(', ')}'. Please see https://aka.ms/arm-deploy/#parameter-file for usage details.`,
        this.at('parameters'),
      );
    }
    for (const name of Object.keys(defs)) this.parameterValue(name, supplied);
  }

  private parameterValue(name: string, supplied: Record<string, Json>): Json {
    const defs = this.parameterDefs();
    const key = Object.keys(defs).find((k) => k.toLowerCase() === name.toLowerCase());
    if (key === undefined) throw new ExpressionError(`The template parameter '${name}' is not found. Please see https://aka.ms/arm-template/#parameters for usage details.`);
    if (this.parameterValues.has(key)) return this.parameterValues.get(key)!;
    const path = this.at(`parameters.${key}`);
    const def = defs[key];
    if (!isObj(def)) throw invalidTemplate(`The template parameter '${key}' must be an object with a 'type'.`, path);
    const type = typeof def.type === 'string' ? def.type.toLowerCase() : '';
    const expected = PARAM_TYPES[type];
    if (!expected) throw invalidTemplate(`The template parameter '${key}' has an invalid type '${String(def.type)}'. The supported types are 'string, securestring, int, bool, object, secureObject, array'.`, path);
    if (this.parametersInProgress.has(key)) throw invalidTemplate(`The template parameter '${key}' is not valid: its default value refers to itself.`, path);

    let value: Json;
    const suppliedKey = Object.keys(supplied).find((k) => k.toLowerCase() === key.toLowerCase());
    if (suppliedKey !== undefined) {
      value = supplied[suppliedKey]!;
    } else if (Object.hasOwn(def, 'defaultValue')) {
      this.parametersInProgress.add(key);
      try {
        value = this.evalTree(def.defaultValue!, NO_COPY, `parameters.${key}.defaultValue`, `parameter '${key}'`, { nonDeterministic: true, supplied });
      } finally {
        this.parametersInProgress.delete(key);
      }
    } else {
      throw invalidTemplate(`The value for the template parameter '${key}' at '${path}' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details.`, path);
    }

    const actual = typeName(value);
    if (actual !== expected) {
      throw invalidTemplate(`Template parameter JToken type is not valid. Expected '${expected}'. Actual '${actual}'. Please see https://aka.ms/resource-manager-parameter-files for usage details.`, path);
    }
    this.checkConstraints(key, def, value, path);
    this.parameterValues.set(key, value);
    return value;
  }

  private checkConstraints(name: string, def: Obj, value: Json, path: string) {
    const bad = (why: string) =>
      invalidTemplate(`The provided value '${typeof value === 'string' ? value : JSON.stringify(value)}' for the template parameter '${name}' is not valid. ${why} Please see https://aka.ms/arm-deploy/#parameter-file for usage details.`, path);
    const allowed = getCI(def, 'allowedValues');
    if (Array.isArray(allowed)) {
      const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);
      const values = Array.isArray(value) && !allowed.some((a) => Array.isArray(a)) ? value : [value];
      if (!values.every((v) => allowed.some((a) => same(a, v)))) {
        throw bad(`The parameter value is not part of the allowed value(s): '${allowed.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(',')}'.`);
      }
    }
    const minValue = getCI(def, 'minValue');
    const maxValue = getCI(def, 'maxValue');
    if (typeof value === 'number') {
      if (typeof minValue === 'number' && value < minValue) throw bad(`The parameter value is less than the minimum value of '${minValue}'.`);
      if (typeof maxValue === 'number' && value > maxValue) throw bad(`The parameter value is greater than the maximum value of '${maxValue}'.`);
    }
    const minLength = getCI(def, 'minLength');
    const maxLength = getCI(def, 'maxLength');
    if (typeof value === 'string' || Array.isArray(value)) {
      if (typeof minLength === 'number' && value.length < minLength) throw bad(`Length of the value should be greater than or equal to '${minLength}'.`);
      if (typeof maxLength === 'number' && value.length > maxLength) throw bad(`Length of the value should be less than or equal to '${maxLength}'.`);
    }
  }

  parameter(name: string): Json {
    if (this.outer) return this.outer.scope.parameter(name);
    return this.parameterValue(name, {});
  }

  parametersSnapshot(): Record<string, Json> {
    return this.outer ? this.outer.scope.parametersSnapshot() : Object.fromEntries(this.parameterValues);
  }

  // ---- variables -------------------------------------------------------------------------------

  variable(name: string): Json {
    if (this.outer) return this.outer.scope.variable(name);
    const vars = this.template.variables ?? {};
    if (!isObj(vars)) throw invalidTemplate(`The template 'variables' section must be an object.`, this.at('variables'));
    const lower = name.toLowerCase();
    const cached = [...this.variableCache.keys()].find((k) => k.toLowerCase() === lower);
    if (cached !== undefined) return this.variableCache.get(cached)!;
    const key = Object.keys(vars).find((k) => k.toLowerCase() === lower && k.toLowerCase() !== 'copy');
    const copies = Array.isArray(vars.copy) ? vars.copy : [];
    const copyAt = copies.findIndex((c) => isObj(c) && typeof c.name === 'string' && c.name.toLowerCase() === lower);
    if (key === undefined && copyAt < 0) throw new ExpressionError(`The template variable '${name}' is not found. Please see https://aka.ms/arm-template/#variables for usage details.`);
    const realName = key ?? ((copies[copyAt] as Obj).name as string);
    if (this.variablesInProgress.has(realName)) {
      throw invalidTemplate(`The template variable '${realName}' is not valid: it refers to itself through other variables. Please see https://aka.ms/arm-template/#variables for usage details.`, this.at(`variables.${realName}`));
    }
    this.variablesInProgress.add(realName);
    try {
      let value: Json;
      if (key !== undefined) {
        value = this.evalTree(vars[key]!, NO_COPY, `variables.${key}`, `variable '${key}'`);
      } else {
        const loop = copies[copyAt] as Obj;
        const path = `variables.copy[${copyAt}]`;
        const count = this.copyCount(loop.count, NO_COPY, `${path}.count`, `variable '${realName}'`);
        value = [];
        for (let i = 0; i < count; i++) {
          value.push(this.evalTree(loop.input ?? null, { loops: { [realName]: i }, current: realName }, `${path}.input`, `variable '${realName}'`));
        }
      }
      this.variableCache.set(realName, value);
      return value;
    } finally {
      this.variablesInProgress.delete(realName);
    }
  }

  // ---- evaluation ------------------------------------------------------------------------------

  env(copy: CopyCtx, opts: EvalOptions = {}): FunctionEnv {
    const ctx = this.ctx;
    const rg = ctx.resourceGroup;
    const baseCopy = this.outer?.copy;
    return {
      parameter: (name) => (opts.supplied ? this.parameterValue(name, opts.supplied) : this.parameter(name)),
      variable: (name) => this.variable(name),
      copyIndex: (loop) => {
        const loops = { ...(baseCopy?.loops ?? {}), ...copy.loops };
        const name = loop ?? copy.current ?? baseCopy?.current;
        const found = name === undefined ? undefined : Object.keys(loops).find((k) => k.toLowerCase() === name.toLowerCase());
        if (found === undefined) {
          throw new ExpressionError(
            loop === undefined
              ? `The template function 'copyIndex' is not expected at this location. The function can only be used in a resource with copy specified.`
              : `The template function 'copyIndex' has an invalid loop name '${loop}': no copy loop with this name contains this expression.`,
          );
        }
        return loops[found]!;
      },
      resourceGroup: () =>
        rg
          ? {
              id: rg.id ?? `/subscriptions/${ctx.subscriptionId}/resourceGroups/${rg.name}`,
              name: rg.name,
              type: 'Microsoft.Resources/resourceGroups',
              location: rg.location,
              tags: rg.tags ?? {},
              properties: { provisioningState: 'Succeeded' },
            }
          : (() => {
              throw new ExpressionError(`The template function 'resourceGroup' is not expected at this location: this deployment is not at resource group scope.`);
            })(),
      subscription: () => ({
        id: `/subscriptions/${ctx.subscriptionId}`,
        subscriptionId: ctx.subscriptionId,
        tenantId: ctx.tenantId,
        displayName: ctx.subscriptionDisplayName ?? ctx.subscriptionId,
      }),
      deployment: () => ({
        name: ctx.deploymentName,
        properties: {
          template: { contentVersion: (this.template.contentVersion as Json) ?? '1.0.0.0' },
          templateHash: '',
          parameters: Object.fromEntries(Object.entries(this.parametersSnapshot()).map(([k, v]) => [k, { value: v }])),
          mode: 'Incremental',
          provisioningState: 'Accepted',
        },
      }),
      tenantId: ctx.tenantId,
      subscriptionId: ctx.subscriptionId,
      resourceGroupName: rg?.name,
      reference: (target, apiVersion, full) => this.reference(target, apiVersion, full, opts),
      listKeys: (id, apiVersion) => {
        const local = this.localResource(id);
        if (local && !this.findDeployed(local.id)) {
          if (opts.planning) throw new NotYetDeployed(local.id);
        }
        const keys = ctx.listKeys(local?.id ?? id, apiVersion);
        if (keys === undefined) throw new ExpressionError(`The Resource '${id}' was not found.`);
        return keys as Json;
      },
      nonDeterministicAllowed: opts.nonDeterministic ?? false,
    };
  }

  /** The instance a reference() target names: a resource id or a resource name of this template. */
  localResource(target: string): Instance | undefined {
    const lower = target.toLowerCase();
    if (target.startsWith('/')) return this.instances.find((i) => i.id.toLowerCase() === lower);
    return this.instances.find((i) => i.name.toLowerCase() === lower) ?? this.outer?.scope.localResource(target);
  }

  private findDeployed(id: string): AppliedResource | undefined {
    return this.deployed.get(id.toLowerCase()) ?? this.outer?.scope.findDeployed(id);
  }

  private reference(target: string, apiVersion: string | undefined, full: boolean, opts: EvalOptions): Json {
    const local = this.localResource(target);
    if (!target.startsWith('/') && !local) {
      throw new ExpressionError(`The template reference '${target}' is not valid: could not find template resource or resource copy with this name. Please see https://aka.ms/arm-function-reference for usage details.`);
    }
    const id = local?.id ?? target;
    const deployed = this.findDeployed(id);
    let resource: unknown = deployed;
    if (!resource) {
      if (local) {
        if (opts.planning) throw new NotYetDeployed(id);
        throw new ExpressionError(`The resource '${id}' is referenced before it was deployed: it must be listed in 'dependsOn'.`);
      }
      resource = this.ctx.reference(id, apiVersion, true);
      if (resource === undefined || resource === null) throw new ArmError('ResourceNotFound', `The Resource '${id}' was not found.`, 404);
    }
    if (full) return resource as Json;
    const props = (resource as Obj).properties;
    return props === undefined ? {} : props;
  }

  /** Evaluates a JSON tree: expression strings, expression keys, property copy loops. */
  evalTree(node: Json, copy: CopyCtx, rel: string, what: string, opts: EvalOptions = {}): Json {
    const walk = (n: Json, p: string): Json => {
      if (typeof n === 'string') {
        if (!isExpression(n)) return unescapeLiteral(n);
        try {
          return evaluateAst(parseExpression(n), evaluatorFor(this.env(copy, opts)));
        } catch (e) {
          if (e instanceof NotYetDeployed) throw e;
          throw expressionFailed(what, this.at(p), e);
        }
      }
      if (Array.isArray(n)) return n.map((x, i) => walk(x, `${p}[${i}]`));
      if (isObj(n)) {
        const out: Obj = {};
        for (const [k, v] of Object.entries(n)) {
          if (k === 'copy' && opts.propertyCopy && Array.isArray(v)) {
            v.forEach((loop, i) => {
              if (!isObj(loop) || typeof loop.name !== 'string') throw invalidTemplate(`The template ${what} at '${this.at(`${p}.copy[${i}]`)}' is not valid: a property copy needs 'name', 'count' and 'input'.`, this.at(`${p}.copy[${i}]`));
              const count = this.copyCount(loop.count, copy, `${p}.copy[${i}].count`, what);
              const items: Json[] = [];
              for (let j = 0; j < count; j++) {
                items.push(this.evalTree(loop.input ?? null, { loops: { ...copy.loops, [loop.name]: j }, current: loop.name }, `${p}.copy[${i}].input`, what, opts));
              }
              out[loop.name] = items;
            });
            continue;
          }
          let key = k;
          if (isExpression(k)) {
            const evaluated = walk(k, p);
            if (typeof evaluated !== 'string') throw invalidTemplate(`The template ${what} at '${this.at(p)}' is not valid: the property name expression '${k}' must evaluate to a string.`, this.at(p));
            key = evaluated;
          } else {
            key = unescapeLiteral(k);
          }
          out[key] = walk(v, p ? `${p}.${k}` : k);
        }
        return out;
      }
      return n;
    };
    return walk(node, rel);
  }

  copyCount(count: Json | undefined, copy: CopyCtx, rel: string, what: string): number {
    const n = this.evalTree(count ?? null, copy, rel, what);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 800) {
      throw invalidTemplate(`The template ${what} at '${this.at(rel)}' is not valid: the copy count must be an integer from 0 to 800; it is '${JSON.stringify(n)}'.`, this.at(rel));
    }
    return n;
  }

  /** Every string expression in a tree, parsed (for implicit dependencies). */
  static expressionsIn(node: Json, skipTemplate: boolean): Ast[] {
    const out: Ast[] = [];
    const walk = (n: Json, depth: string) => {
      if (typeof n === 'string') {
        if (isExpression(n)) {
          try {
            out.push(parseExpression(n));
          } catch {
            /* reported when the resource is evaluated */
          }
        }
      } else if (Array.isArray(n)) n.forEach((x) => walk(x, depth));
      else if (isObj(n)) {
        for (const [k, v] of Object.entries(n)) {
          if (skipTemplate && depth === 'properties' && k.toLowerCase() === 'template') continue;
          walk(k, depth);
          walk(v, depth === '' ? k.toLowerCase() : `${depth}.${k}`);
        }
      }
    };
    walk(node, '');
    return out;
  }
}

interface EvalOptions {
  nonDeterministic?: boolean;
  /** Parameter defaults read the supplied values. */
  supplied?: Record<string, Json>;
  planning?: boolean;
  propertyCopy?: boolean;
}

const RESOURCE_KEYS_NOT_IN_BODY = new Set(['name', 'type', 'apiversion', 'dependson', 'condition', 'copy', 'resources', 'comments']);

/** The planner: instances, ids, dependencies and order of one template. */
function planScope(scope: TemplateScope): Instance[] {
  const template = scope.template;
  const resources = template.resources ?? [];
  if (!Array.isArray(resources)) throw invalidTemplate(`The template 'resources' section must be an array.`, scope.at('resources'));

  const defs: ResourceDef[] = [];
  const collect = (list: Json[], base: string, parent?: ResourceDef) => {
    list.forEach((r, i) => {
      const path = `${base}[${i}]`;
      if (!isObj(r)) throw invalidTemplate(`The template resource at '${scope.at(path)}' is not valid: a resource must be an object. ${RESOURCES_HELP}`, scope.at(path));
      const def: ResourceDef = { raw: r, path, parent };
      defs.push(def);
      if (Array.isArray(r.resources)) collect(r.resources, `${path}.resources`, def);
    });
  };
  collect(resources, 'resources');

  const instances: Instance[] = [];
  const copyNames = new Map<string, Instance[]>();
  for (const def of defs) {
    const r = def.raw;
    const label = typeof r.name === 'string' ? r.name : def.path;
    const what = `resource '${label}'`;
    for (const field of ['type', 'name', 'apiVersion']) {
      if (typeof getCI(r, field) !== 'string' || (getCI(r, field) as string) === '') {
        throw invalidTemplate(`The template resource '${label}' at '${scope.at(def.path)}' is not valid: the '${field}' property is required and must be a string. ${RESOURCES_HELP}`, scope.at(`${def.path}.${field}`));
      }
    }
    const rawType = getCI(r, 'type') as string;
    if (isExpression(rawType)) throw invalidTemplate(`The template resource '${label}' at '${scope.at(def.path)}' is not valid. The type property cannot be an expression. ${RESOURCES_HELP}`, scope.at(`${def.path}.type`));
    let type = rawType.replace(/\/+$/, '');
    if (def.parent && !type.includes('/')) type = `${(getCI(def.parent.raw, 'type') as string).replace(/\/+$/, '')}/${type}`;
    if (getCI(r, 'templateLink') !== undefined || (isObj(r.properties) && getCI(r.properties, 'templateLink') !== undefined)) {
      throw invalidTemplate(`The template resource '${label}' at '${scope.at(def.path)}' is not valid: linked templates ('templateLink') are not supported by Fleethub; put the template inline in 'properties.template'.`, scope.at(`${def.path}.properties.templateLink`));
    }

    const copySpec = getCI(r, 'copy');
    const loops: { copy: CopyCtx; copyName?: string; index?: number }[] = [];
    if (copySpec !== undefined) {
      if (!isObj(copySpec) || typeof copySpec.name !== 'string') {
        throw invalidTemplate(`The template resource '${label}' at '${scope.at(def.path)}' is not valid: 'copy' needs a 'name' and a 'count'. ${RESOURCES_HELP}`, scope.at(`${def.path}.copy`));
      }
      const count = scope.copyCount(copySpec.count, NO_COPY, `${def.path}.copy.count`, what);
      for (let i = 0; i < count; i++) loops.push({ copy: { loops: { [copySpec.name]: i }, current: copySpec.name }, copyName: copySpec.name, index: i });
      if (!copyNames.has(copySpec.name.toLowerCase())) copyNames.set(copySpec.name.toLowerCase(), []);
    } else {
      loops.push({ copy: NO_COPY });
    }

    for (const loop of loops) {
      const ev = (v: Json, rel: string) => scope.evalTree(v, loop.copy, rel, what);
      const nameValue = ev(getCI(r, 'name')!, `${def.path}.name`);
      if (typeof nameValue !== 'string' || nameValue === '') throw invalidTemplate(`The template resource '${label}' at '${scope.at(def.path)}' is not valid: the name must evaluate to a non-empty string. ${RESOURCES_HELP}`, scope.at(`${def.path}.name`));
      let name = nameValue;
      if (def.parent) {
        const parentName = scope.evalTree(getCI(def.parent.raw, 'name')!, loop.copy, `${def.parent.path}.name`, what);
        if (!name.includes('/')) name = `${String(parentName)}/${name}`;
      }
      const typeSegments = type.split('/');
      const nameSegments = name.split('/');
      if (typeSegments.length < 2 || nameSegments.length !== typeSegments.length - 1) {
        throw invalidTemplate(
          `The template resource '${name}' for type '${type}' at '${scope.at(def.path)}' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name. A root resource type must have segment length one greater than its resource name. ${RESOURCES_HELP}`,
          scope.at(`${def.path}.name`),
        );
      }
      const apiVersion = ev(getCI(r, 'apiVersion')!, `${def.path}.apiVersion`);
      const conditionRaw = getCI(r, 'condition');
      const condition = conditionRaw === undefined ? true : ev(conditionRaw, `${def.path}.condition`);
      if (typeof condition !== 'boolean') throw invalidTemplate(`The template resource '${name}' at '${scope.at(def.path)}' is not valid: the condition must evaluate to a boolean; it is of type '${typeName(condition)}'.`, scope.at(`${def.path}.condition`));
      const rg = scope.ctx.resourceGroup;
      let tail = `providers/${typeSegments[0]}`;
      for (let i = 1; i < typeSegments.length; i++) tail += `/${typeSegments[i]}/${nameSegments[i - 1]}`;
      // An extension resource (a role assignment) names the resource it applies to in 'scope'.
      const scopeRaw = getCI(r, 'scope');
      const extensionScope = scopeRaw === undefined ? undefined : ev(scopeRaw, `${def.path}.scope`);
      if (extensionScope !== undefined && (typeof extensionScope !== 'string' || !extensionScope.startsWith('/'))) {
        throw invalidTemplate(`The template resource '${name}' at '${scope.at(def.path)}' is not valid: 'scope' must evaluate to a resource id. ${RESOURCES_HELP}`, scope.at(`${def.path}.scope`));
      }
      const id =
        typeof extensionScope === 'string'
          ? `${extensionScope.replace(/\/+$/, '')}/${tail}`
          : rg
            ? `/subscriptions/${scope.ctx.subscriptionId}/resourceGroups/${rg.name}/${tail}`
            : `/subscriptions/${scope.ctx.subscriptionId}/${tail}`;
      if (instances.some((i) => i.id.toLowerCase() === id.toLowerCase())) {
        throw invalidTemplate(`The resource '${id}' at '${scope.at(def.path)}' is defined multiple times in a template. ${RESOURCES_HELP}`, scope.at(def.path));
      }
      const inst: Instance = { def, copy: loop.copy, copyName: loop.copyName, copyIndex: loop.index, id, name, type, apiVersion: String(apiVersion), condition, dependsOn: new Set() };
      instances.push(inst);
      if (loop.copyName) copyNames.get(loop.copyName.toLowerCase())!.push(inst);
    }
  }
  scope.instances = instances;

  // dependsOn: ids, "type/name", names, copy-loop names
  const normalize = (s: string) => s.toLowerCase().replace(/\/{2,}/g, '/').replace(/\/+$/, '');
  const resolve = (ref: string): Instance[] | undefined => {
    const n = normalize(ref);
    const byId = instances.filter((i) => normalize(i.id) === n);
    if (byId.length) return byId;
    const byTypeName = instances.filter((i) => normalize(i.id).endsWith(`/providers/${n}`) || normalize(`${i.type}/${i.name}`) === n);
    if (byTypeName.length) return byTypeName;
    const copy = copyNames.get(ref.toLowerCase());
    if (copy) return copy;
    const byName = instances.filter((i) => i.name.toLowerCase() === ref.toLowerCase());
    return byName.length ? byName : undefined;
  };
  for (const inst of instances) {
    const r = inst.def.raw;
    const what = `resource '${inst.name}'`;
    const deps = getCI(r, 'dependsOn');
    if (deps !== undefined) {
      if (!Array.isArray(deps)) throw invalidTemplate(`The template resource '${inst.name}' at '${scope.at(inst.def.path)}' is not valid: 'dependsOn' must be an array.`, scope.at(`${inst.def.path}.dependsOn`));
      deps.forEach((d, i) => {
        const rel = `${inst.def.path}.dependsOn[${i}]`;
        const value = scope.evalTree(d, inst.copy, rel, what);
        if (typeof value !== 'string') throw invalidTemplate(`The template resource '${inst.name}' at '${scope.at(rel)}' is not valid: a 'dependsOn' entry must be a string.`, scope.at(rel));
        const targets = resolve(value);
        if (!targets) throw invalidTemplate(`The resource '${value}' is not defined in the template. Please see https://aka.ms/arm-template for usage details.`, scope.at(rel));
        for (const t of targets) if (t !== inst) inst.dependsOn.add(t.id);
      });
    }
    // serial copy loops: each batch waits for the one before it
    const copySpec = getCI(r, 'copy');
    if (isObj(copySpec) && typeof copySpec.mode === 'string' && copySpec.mode.toLowerCase() === 'serial' && inst.copyIndex !== undefined) {
      const batch = typeof copySpec.batchSize === 'number' && copySpec.batchSize > 0 ? copySpec.batchSize : 1;
      const mine = Math.floor(inst.copyIndex / batch);
      if (mine > 0) {
        for (const other of copyNames.get(inst.copyName!.toLowerCase()) ?? []) {
          if (Math.floor(other.copyIndex! / batch) === mine - 1) inst.dependsOn.add(other.id);
        }
      }
    }
    // implicit: reference()/listKeys() of a resource of this template
    const isDeployment = inst.type.toLowerCase() === DEPLOYMENTS;
    const scopeInner = isDeployment && innerScope(r);
    for (const ast of TemplateScope.expressionsIn(stripForImplicit(r, isDeployment && scopeInner), false)) {
      forEachCall(ast, (name, args) => {
        const lower = name.toLowerCase();
        if ((lower !== 'reference' && !lower.startsWith('list')) || args.length === 0) return;
        try {
          const target = evaluateAst(args[0]!, evaluatorFor(scope.env(inst.copy, { planning: true })));
          if (typeof target !== 'string') return;
          const found = scope.localResource(target);
          if (found && found !== inst) inst.dependsOn.add(found.id);
        } catch {
          /* not resolvable statically: no implicit dependency */
        }
      });
    }
  }

  return order(scope, instances);
}

function innerScope(r: Obj): boolean {
  const props = isObj(r.properties) ? r.properties : {};
  const options = getCI(props, 'expressionEvaluationOptions');
  const s = isObj(options) ? getCI(options, 'scope') : undefined;
  return typeof s === 'string' && s.toLowerCase() === 'inner';
}

/** In inner scope, the nested template's own expressions are not the parent's business. */
function stripForImplicit(r: Obj, inner: boolean): Obj {
  if (!inner || !isObj(r.properties)) return r;
  const { template: _t, ...rest } = r.properties;
  return { ...r, properties: rest };
}

function forEachCall(ast: Ast, visit: (name: string, args: Ast[]) => void) {
  switch (ast.kind) {
    case 'call':
      visit(ast.name, ast.args);
      ast.args.forEach((a) => forEachCall(a, visit));
      break;
    case 'member':
      forEachCall(ast.target, visit);
      break;
    case 'index':
      forEachCall(ast.target, visit);
      forEachCall(ast.index, visit);
      break;
    default:
  }
}

/** Topological order, stable in template order; a cycle is ARM's InvalidTemplate. */
function order(scope: TemplateScope, instances: Instance[]): Instance[] {
  const byId = new Map(instances.map((i) => [i.id, i]));
  const state = new Map<string, 'visiting' | 'done'>();
  const out: Instance[] = [];
  const visit = (inst: Instance) => {
    const s = state.get(inst.id);
    if (s === 'done') return;
    if (s === 'visiting') {
      throw invalidTemplate(`Circular dependency detected on resource: '${inst.id}'. ${RESOURCES_HELP}`, scope.at(`${inst.def.path}.dependsOn`));
    }
    state.set(inst.id, 'visiting');
    for (const d of inst.dependsOn) visit(byId.get(d)!);
    state.set(inst.id, 'done');
    out.push(inst);
  };
  for (const inst of instances) visit(inst);
  return out;
}

/** The body of a resource (everything ARM sends to the resource provider), evaluated. */
function evaluateBody(scope: TemplateScope, inst: Instance, planning: boolean): Obj {
  const raw: Obj = {};
  const isDeployment = inst.type.toLowerCase() === DEPLOYMENTS;
  let template: Json | undefined;
  for (const [k, v] of Object.entries(inst.def.raw)) {
    if (RESOURCE_KEYS_NOT_IN_BODY.has(k.toLowerCase())) continue;
    if (isDeployment && k.toLowerCase() === 'properties' && isObj(v)) {
      const { template: t, ...rest } = v;
      template = t;
      raw[k] = rest;
      continue;
    }
    raw[k] = v;
  }
  const body = scope.evalTree(raw, inst.copy, inst.def.path, `resource '${inst.name}'`, { planning, propertyCopy: true }) as Obj;
  if (isDeployment && template !== undefined && isObj(body.properties)) body.properties = { ...body.properties, template };
  return body;
}

interface NestedSetup {
  scope: TemplateScope;
  mode: string;
}

function nestedScope(parent: TemplateScope, inst: Instance, body: Obj): NestedSetup {
  const props = isObj(body.properties) ? body.properties : {};
  const path = parent.at(`${inst.def.path}.properties`);
  const template = getCI(props, 'template');
  if (!isObj(template)) {
    throw invalidTemplate(`The template resource '${inst.name}' at '${path}' is not valid: a nested deployment needs an inline 'template' object.`, `${path}.template`);
  }
  const mode = String(getCI(props, 'mode') ?? 'Incremental');
  if (mode.toLowerCase() !== 'incremental') {
    throw invalidTemplate(`The template resource '${inst.name}' at '${path}' is not valid: deployment mode '${mode}' is not supported by Fleethub; use 'Incremental'.`, `${path}.mode`);
  }
  for (const key of ['resourceGroup', 'subscriptionId']) {
    const v = getCI(inst.def.raw, key);
    if (v !== undefined) {
      const evaluated = parent.evalTree(v, inst.copy, `${inst.def.path}.${key}`, `resource '${inst.name}'`);
      const current = key === 'resourceGroup' ? parent.ctx.resourceGroup?.name : parent.ctx.subscriptionId;
      if (typeof evaluated !== 'string' || evaluated.toLowerCase() !== String(current).toLowerCase()) {
        throw invalidTemplate(`The template resource '${inst.name}' at '${parent.at(inst.def.path)}' is not valid: nested deployments to another ${key === 'resourceGroup' ? 'resource group' : 'subscription'} are not supported by Fleethub.`, parent.at(`${inst.def.path}.${key}`));
      }
    }
  }
  const ctx: DeploymentContext = { ...parent.ctx, deploymentName: inst.name, reference: parent.ctx.reference, listKeys: parent.ctx.listKeys };
  if (innerScope(inst.def.raw)) {
    const supplied = normalizeParameters((getCI(props, 'parameters') as Record<string, unknown> | undefined) ?? {});
    return { scope: new TemplateScope(template, `${path}.template`, ctx, supplied), mode };
  }
  return { scope: new TemplateScope(template, `${path}.template`, ctx, {}, { scope: parent, copy: inst.copy }), mode };
}

function toPlanned(scope: TemplateScope, ordered: Instance[]): PlannedResource[] {
  return ordered.map((inst) => {
    const planned: PlannedResource = {
      id: inst.id,
      name: inst.name,
      type: inst.type,
      apiVersion: inst.apiVersion,
      path: scope.at(inst.def.path),
      condition: inst.condition,
      dependsOn: [...inst.dependsOn],
    };
    if (inst.copyName !== undefined) planned.copy = { name: inst.copyName, index: inst.copyIndex! };
    if (!inst.condition) return planned;
    try {
      planned.body = evaluateBody(scope, inst, true);
    } catch (e) {
      if (!(e instanceof NotYetDeployed)) throw e;
    }
    if (inst.type.toLowerCase() === DEPLOYMENTS && planned.body) {
      const nested = nestedScope(scope, inst, planned.body);
      const inner = planScope(nested.scope);
      planned.nested = { deploymentName: inst.name, parameters: nested.scope.parametersSnapshot(), resources: toPlanned(nested.scope, inner) };
    }
    return planned;
  });
}

function rootScope(template: unknown, parameters: Record<string, unknown> | undefined, ctx: DeploymentContext): TemplateScope {
  if (!isObj(template as Json)) throw invalidTemplate(`The template must be a JSON object.`, '');
  const t = template as Obj;
  if (t.resources === undefined) throw invalidTemplate(`The template must have a 'resources' section. ${RESOURCES_HELP}`, 'resources');
  return new TemplateScope(t, '', ctx, normalizeParameters(parameters));
}

/** Validates a template with its parameters and returns the resources in deployment order. */
export function planDeployment(template: unknown, parameters: Record<string, unknown> | undefined, ctx: DeploymentContext): DeploymentPlan {
  const scope = rootScope(template, parameters, ctx);
  const ordered = planScope(scope);
  const plan = { deploymentName: ctx.deploymentName, parameters: scope.parametersSnapshot(), resources: toPlanned(scope, ordered) };
  // outputs must at least parse and name their types; their values may need deployed resources
  checkOutputsShape(scope);
  return plan;
}

function checkOutputsShape(scope: TemplateScope) {
  const outputs = scope.template.outputs ?? {};
  if (!isObj(outputs)) throw invalidTemplate(`The template 'outputs' section must be an object.`, scope.at('outputs'));
  for (const [name, o] of Object.entries(outputs)) {
    if (!isObj(o) || typeof o.type !== 'string' || !OUTPUT_TYPES[o.type.toLowerCase()]) {
      throw invalidTemplate(`The template output '${name}' is not valid: it needs a 'type' of 'string, securestring, int, bool, object, secureObject, array'.`, scope.at(`outputs.${name}`));
    }
  }
}

function evaluateOutputs(scope: TemplateScope): Outputs {
  checkOutputsShape(scope);
  const out: Outputs = {};
  for (const [name, o] of Object.entries((scope.template.outputs ?? {}) as Obj)) {
    const def = o as Obj;
    const what = `output '${name}'`;
    const rel = `outputs.${name}`;
    if (def.condition !== undefined && scope.evalTree(def.condition, NO_COPY, `${rel}.condition`, what) !== true) continue;
    const type = (def.type as string).toLowerCase();
    let value: Json;
    if (isObj(def.copy)) {
      const count = scope.copyCount(def.copy.count, NO_COPY, `${rel}.copy.count`, what);
      value = [];
      for (let i = 0; i < count; i++) value.push(scope.evalTree(def.copy.input ?? null, { loops: { [name]: i }, current: name }, `${rel}.copy.input`, what));
    } else {
      value = scope.evalTree(def.value ?? null, NO_COPY, `${rel}.value`, what);
    }
    const expected = PARAM_TYPES[type]!;
    if (typeName(value) !== expected) {
      throw invalidTemplate(`The template output '${name}' is not valid: Template output JToken type is not valid. Expected '${expected}'. Actual '${typeName(value)}'.`, scope.at(rel));
    }
    out[name] = { type: OUTPUT_TYPES[type]!, value };
  }
  return out;
}

function errorBody(e: unknown): ArmErrorBody {
  if (e instanceof ArmError) return e.toBody();
  if (e instanceof ExpressionError) return { code: 'InvalidTemplate', message: e.message };
  return { code: 'InternalServerError', message: e instanceof Error ? e.message : String(e) };
}

const deploymentFailed = (details: ArmErrorBody[]): ArmErrorBody => ({
  code: 'DeploymentFailed',
  message: 'At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.',
  details,
});

/**
 * Validates, then deploys in dependency order through `apply`. Template errors (everything
 * planDeployment refuses) are thrown as ArmError before anything is applied; a failure while
 * applying ends the deployment with status 'Failed' and leaves what was applied before it.
 */
export async function deploy(
  template: unknown,
  parameters: Record<string, unknown> | undefined,
  ctx: DeploymentContext,
  apply: Apply,
): Promise<DeploymentResult> {
  planDeployment(template, parameters, ctx); // validate everything first: nothing applied on a template error
  const scope = rootScope(template, parameters, ctx);
  return run(scope, planScope(scope), apply);
}

async function run(scope: TemplateScope, ordered: Instance[], apply: Apply): Promise<DeploymentResult> {
  const results: ResourceResult[] = [];
  const deploymentName = scope.ctx.deploymentName;
  for (const inst of ordered) {
    const base = { id: inst.id, type: inst.type, name: inst.name };
    if (!inst.condition) {
      results.push({ ...base, status: 'Skipped' });
      continue;
    }
    try {
      const body = evaluateBody(scope, inst, false);
      if (inst.type.toLowerCase() === DEPLOYMENTS) {
        const nested = nestedScope(scope, inst, body);
        const inner = await run(nested.scope, planScope(nested.scope), apply);
        const resource: AppliedResource = {
          id: inst.id,
          name: inst.name,
          type: 'Microsoft.Resources/deployments',
          properties: { provisioningState: inner.status, mode: nested.mode, outputs: inner.outputs },
        };
        scope.deployed.set(inst.id.toLowerCase(), resource);
        results.push({ ...base, status: inner.status, resource, nested: inner, ...(inner.error ? { error: inner.error } : {}) });
        if (inner.status === 'Failed') return { deploymentName, status: 'Failed', resources: results, outputs: {}, error: deploymentFailed([inner.error!]) };
        continue;
      }
      const { name: _n, type: _t, apiVersion: _a, ...rest } = body;
      const resource = await apply({ id: inst.id, type: inst.type, name: inst.name, apiVersion: inst.apiVersion, body: rest, deploymentName });
      scope.deployed.set(inst.id.toLowerCase(), resource);
      results.push({ ...base, status: 'Succeeded', resource });
    } catch (e) {
      const error = { ...errorBody(e), target: inst.id };
      results.push({ ...base, status: 'Failed', error });
      return { deploymentName, status: 'Failed', resources: results, outputs: {}, error: deploymentFailed([error]) };
    }
  }
  try {
    return { deploymentName, status: 'Succeeded', resources: results, outputs: evaluateOutputs(scope) };
  } catch (e) {
    const error = errorBody(e);
    return { deploymentName, status: 'Failed', resources: results, outputs: {}, error };
  }
}
