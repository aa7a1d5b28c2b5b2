/**
 * IoT Hub's rules for a Configuration body: id, labels, content paths and sizes, target
 * condition, priority, custom metric queries. Everything refused is 400 ArgumentInvalid.
 */
import { errors } from '../../core/errors.js';
import { parseTargetCondition, type TargetCondition } from '../conditions/targetCondition.js';
import { parseQuery } from '../query/parser.js';
import { sizeOf, TWIN_LIMITS, validateSection } from '../twins/document.js';
import type { JsonObject, JsonValue } from '../twins/types.js';
import type { ConfigurationContent } from './types.js';

export const CONFIGURATION_LIMITS = {
  /** Configurations per hub (standard tier). */
  perHub: 100,
  /** Custom metrics per configuration. */
  metrics: 5,
  idLength: 128,
  labelLength: 128,
  /** Content written into one twin's desired properties cannot exceed what the section holds. */
  contentBytes: TWIN_LIMITS.desiredBytes,
} as const;

/** Lower-case letters, digits and `-+%_*!'`, up to 128 characters. */
const ID = /^[a-z0-9\-+%_*!']{1,128}$/;
const LABEL = /^[A-Za-z0-9\-:.+%_#*?!(),=@;']{1,128}$/;
const DESIRED_PATH = /^properties\.desired(\.[^.]+)*$/;

export function checkConfigurationId(id: string): void {
  if (!ID.test(id)) {
    throw errors.argument(`The configuration id '${id}' is not valid: use up to ${CONFIGURATION_LIMITS.idLength} lower-case letters, digits and -+%_*!'`);
  }
}

export interface ConfigurationInput {
  schemaVersion: string;
  labels: Record<string, string>;
  content: ConfigurationContent;
  targetCondition: string;
  target: TargetCondition;
  priority: number;
  metricQueries: Record<string, string>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseConfigurationBody(id: string, body: unknown): ConfigurationInput {
  checkConfigurationId(id);
  if (!isObject(body)) throw errors.argument('The configuration must be a JSON object');
  if (body.id !== undefined && body.id !== id) throw errors.argument(`The configuration id in the body ('${String(body.id)}') differs from the one in the path ('${id}')`);
  const schemaVersion = body.schemaVersion ?? '1.0';
  if (typeof schemaVersion !== 'string') throw errors.argument('schemaVersion must be a string');

  const labels: Record<string, string> = {};
  if (body.labels !== undefined && body.labels !== null) {
    if (!isObject(body.labels)) throw errors.argument('labels must be an object of string values');
    for (const [k, v] of Object.entries(body.labels)) {
      if (!LABEL.test(k) || typeof v !== 'string' || !LABEL.test(v)) {
        throw errors.argument(`Label '${k}': keys and values are strings of up to ${CONFIGURATION_LIMITS.labelLength} ASCII letters, digits and -:.+%_#*?!(),=@;'`);
      }
      labels[k] = v;
    }
  }

  const targetCondition = body.targetCondition ?? '';
  if (typeof targetCondition !== 'string') throw errors.argument('targetCondition must be a string');
  const target = parseTargetCondition(targetCondition);

  const priority = body.priority ?? 0;
  if (!Number.isInteger(priority) || (priority as number) < 0 || (priority as number) > 2 ** 31 - 1) {
    throw errors.argument('priority must be a non-negative integer');
  }

  const content = parseContent(body.content, target);

  const metricQueries: Record<string, string> = {};
  if (body.metrics !== undefined && body.metrics !== null) {
    if (!isObject(body.metrics)) throw errors.argument('metrics must be an object {"queries": {name: query}}');
    const queries = body.metrics.queries ?? {};
    if (!isObject(queries)) throw errors.argument('metrics.queries must be an object of query strings');
    const entries = Object.entries(queries);
    if (entries.length > CONFIGURATION_LIMITS.metrics) throw errors.argument(`A configuration has at most ${CONFIGURATION_LIMITS.metrics} custom metrics`);
    for (const [name, query] of entries) {
      if (!LABEL.test(name)) throw errors.argument(`Metric name '${name}' is not valid`);
      if (typeof query !== 'string') throw errors.argument(`metrics.queries.${name} must be a query string`);
      try {
        const parsed = parseQuery(query);
        if (parsed.from === 'devices.jobs') throw errors.argument('metric queries run over devices or devices.modules');
      } catch (e) {
        throw errors.argument(`metrics.queries.${name}: ${(e as Error).message}`);
      }
      metricQueries[name] = query;
    }
  }
  return { schemaVersion, labels, content, targetCondition, target, priority: priority as number, metricQueries };
}

function parseContent(value: unknown, target: TargetCondition): ConfigurationContent {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw errors.argument('content must be an object');
  for (const k of Object.keys(value)) {
    if (!['deviceContent', 'moduleContent', 'modulesContent'].includes(k)) throw errors.argument(`content.${k} is not a configuration content (deviceContent, moduleContent or modulesContent)`);
  }
  const out: ConfigurationContent = {};
  const present = (k: string) => isObject(value[k]) && Object.keys(value[k] as object).length > 0;
  const kinds = ['deviceContent', 'moduleContent', 'modulesContent'].filter(present);
  if (kinds.length > 1) throw errors.argument(`A configuration has one kind of content, not ${kinds.join(' and ')}`);
  if (value.deviceContent !== undefined && value.deviceContent !== null) {
    out.deviceContent = parsePaths(value.deviceContent, 'content.deviceContent');
    if (present('deviceContent') && target.collection !== 'devices') throw errors.argument('A device configuration targets device twins: its target condition cannot be FROM devices.modules');
  }
  if (value.moduleContent !== undefined && value.moduleContent !== null) {
    out.moduleContent = parsePaths(value.moduleContent, 'content.moduleContent');
    if (present('moduleContent') && target.collection !== 'devices.modules') {
      throw errors.argument("A module configuration's target condition must start with FROM devices.modules WHERE");
    }
  }
  if (value.modulesContent !== undefined && value.modulesContent !== null) {
    if (!isObject(value.modulesContent)) throw errors.argument('content.modulesContent must be an object of modules');
    const modules: Record<string, JsonObject> = {};
    for (const [name, module] of Object.entries(value.modulesContent)) {
      if (!/^[A-Za-z0-9\-:.+%_#*?!(),=@;$']{1,128}$/.test(name)) throw errors.argument(`content.modulesContent: '${name}' is not a module id`);
      modules[name] = parsePaths(module, `content.modulesContent.${name}`) as JsonObject;
    }
    out.modulesContent = modules;
  }
  return out;
}

/** `{ "properties.desired.a.b": value, … }`: each path under desired properties, each value by the twin rules. */
function parsePaths(value: unknown, where: string): Record<string, JsonValue> {
  if (!isObject(value)) throw errors.argument(`${where} must be an object of twin paths`);
  const out: Record<string, JsonValue> = {};
  let bytes = 0;
  for (const [path, v] of Object.entries(value)) {
    if (!DESIRED_PATH.test(path)) throw errors.argument(`${where}: '${path}' is not a path under properties.desired`);
    const segments = path.split('.').slice(2);
    const wrapped = segments.reduceRight<unknown>((inner, key) => ({ [key]: inner }), v);
    if (segments.length === 0 && !isObject(v)) throw errors.argument(`${where}: the content at properties.desired must be an object`);
    try {
      validateSection(wrapped, 'desired');
    } catch (e) {
      throw errors.argument(`${where}['${path}']: ${(e as Error).message}`);
    }
    bytes += sizeOf(wrapped as JsonObject);
    out[path] = v as JsonValue;
  }
  if (bytes > CONFIGURATION_LIMITS.contentBytes) {
    throw errors.argument(`${where} is ${bytes} bytes; content must fit in a twin's desired properties (${CONFIGURATION_LIMITS.contentBytes} bytes)`);
  }
  return out;
}
