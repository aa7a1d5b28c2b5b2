/**
 * IoT Hub's route tests (`routing/routes/$testnew` and `$testall`): a sample message, and
 * optionally a twin, evaluated against one route or against every route of a source, with the same
 * compiled conditions the router uses. Pure domain: the ARM adapter hands in the request's parts.
 */
import { errors } from '../../core/errors.js';
import {
  ROUTE_SOURCES,
  RouteConditionError,
  type CompileRouteCondition,
  type RoutableMessage,
  type RouteSettings,
  type RouteSource,
  type TwinView,
} from './types.js';

/** `RoutingMessage` of the test APIs: the body as text, properties as strings. */
export interface SampleMessage {
  body?: string;
  appProperties?: Record<string, string>;
  systemProperties?: Record<string, string>;
}

export interface RouteCompilationError {
  message: string;
  severity: 'error' | 'warning';
  location: { start: { line: number; column: number }; end: { line: number; column: number } };
}

export type TestResult = 'true' | 'false' | 'undefined';

/**
 * The test API's system property names (the query's, without `$`) and the names the hub stamps on
 * messages; either spelling is taken.
 */
const SYSTEM_NAMES: Record<string, string> = {
  contenttype: 'content-type',
  contentencoding: 'content-encoding',
  messageid: 'message-id',
  correlationid: 'correlation-id',
  userid: 'user-id',
  to: 'to',
  absoluteexpirytime: 'absolute-expiry-time',
  connectiondeviceid: 'iothub-connection-device-id',
  connectionmoduleid: 'iothub-connection-module-id',
  connectiondevicegenerationid: 'iothub-connection-auth-generation-id',
  connectionauthmethod: 'iothub-connection-auth-method',
  enqueuedtime: 'iothub-enqueuedtime',
  iothubenqueuedtime: 'iothub-enqueuedtime',
  iothubmessagesource: 'iothub-message-source',
  iothubcreationtimeutc: 'iothub-creation-time-utc',
  dtdataschema: 'dt-dataschema',
  dtsubject: 'dt-subject',
};

const MESSAGE_SOURCE: Record<RouteSource, string> = {
  DeviceMessages: 'Telemetry',
  TwinChangeEvents: 'twinChangeEvents',
  DeviceLifecycleEvents: 'deviceLifecycleEvents',
  DeviceConnectionStateEvents: 'deviceConnectionStateEvents',
  DeviceJobLifecycleEvents: 'jobLifecycleEvents',
};

export function routeSource(v: unknown, path: string): RouteSource {
  if (v === undefined || v === null) return 'DeviceMessages';
  const found = ROUTE_SOURCES.find((s) => typeof v === 'string' && s.toLowerCase() === v.toLowerCase());
  if (!found) throw errors.argument(`Invalid value for '${path}': '${String(v)}' is not one of ${ROUTE_SOURCES.join(', ')}.`);
  return found;
}

/** The body's bytes as the message would carry them: the text in the stated content encoding. */
function encodeBody(text: string, encoding: string | undefined): Buffer {
  const e = (encoding ?? 'utf-8').toLowerCase().replace(/_/g, '-');
  if (e === 'utf-16' || e === 'utf-16le' || e === 'utf16') return Buffer.from(text, 'utf16le');
  if (e === 'utf-32' || e === 'utf-32le' || e === 'utf32') {
    const points = [...text].map((c) => c.codePointAt(0)!);
    const b = Buffer.alloc(points.length * 4);
    points.forEach((p, i) => b.writeUInt32LE(p, i * 4));
    return b;
  }
  return Buffer.from(text, 'utf8');
}

function stringMap(v: unknown, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw errors.argument(`Invalid value for '${path}': expected an object of strings.`);
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') throw errors.argument(`Invalid value for '${path}.${k}': expected a string.`);
  return v as Record<string, string>;
}

/** The sample message as routing sees it. */
export function sampleMessage(source: RouteSource, input: unknown): RoutableMessage {
  const m = (input ?? {}) as SampleMessage;
  if (typeof m !== 'object' || Array.isArray(m)) throw errors.argument("Invalid value for 'message': expected an object.");
  if (m.body !== undefined && m.body !== null && typeof m.body !== 'string') throw errors.argument("Invalid value for 'message.body': expected a string.");
  const system: Record<string, string> = { 'iothub-message-source': MESSAGE_SOURCE[source] };
  for (const [k, v] of Object.entries(stringMap(m.systemProperties, 'message.systemProperties'))) {
    system[SYSTEM_NAMES[k.replace(/^\$/, '').replace(/-/g, '').toLowerCase()] ?? k] = v;
  }
  const deviceId = system['iothub-connection-device-id'] ?? '';
  return {
    source,
    deviceId,
    ...(system['iothub-connection-module-id'] ? { moduleId: system['iothub-connection-module-id'] } : {}),
    body: encodeBody(m.body ?? '', system['content-encoding']),
    systemProperties: system,
    properties: { ...stringMap(m.appProperties, 'message.appProperties') },
  };
}

export function sampleTwin(input: unknown): TwinView | undefined {
  if (input === undefined || input === null) return undefined;
  if (typeof input !== 'object' || Array.isArray(input)) throw errors.argument("Invalid value for 'twin': expected an object.");
  return input as TwinView;
}

/** The end of the token that starts at `column` of `line` (for an error's range). */
function tokenEnd(text: string, line: number, column: number): number {
  const l = text.split(/\r?\n/)[line - 1] ?? '';
  const rest = l.slice(column - 1);
  const m = /^(?:'(?:[^']|'')*'?|"[^"]*"?|[\w$.]+|\S)/.exec(rest);
  return column + (m ? m[0].length : 1);
}

/**
 * One route's result: `true` when the condition holds, `false` when it does not, `undefined` when
 * it reads something the message does not have (IoT Hub's three-valued logic); compilation errors
 * with their position, and then `false`.
 */
export function testRoute(compile: CompileRouteCondition, condition: string, message: RoutableMessage, twin?: TwinView): { result: TestResult; compilationErrors: RouteCompilationError[] } {
  try {
    const c = compile(condition);
    if (c.matches(message, twin)) return { result: 'true', compilationErrors: [] };
    // Neither the condition nor its negation holding is three-valued logic's undefined.
    const negated = compile(`NOT (${condition})`);
    return { result: negated.matches(message, twin) ? 'false' : 'undefined', compilationErrors: [] };
  } catch (e) {
    if (!(e instanceof RouteConditionError)) throw e;
    return {
      result: 'false',
      compilationErrors: [
        { message: e.message, severity: 'error', location: { start: { line: e.line, column: e.column }, end: { line: e.line, column: tokenEnd(condition, e.line, e.column) } } },
      ],
    };
  }
}

/** The enabled routes of `source` whose condition holds for the message. */
export function testAllRoutes(compile: CompileRouteCondition, routes: RouteSettings[], source: RouteSource, message: RoutableMessage, twin?: TwinView): RouteSettings[] {
  return routes.filter((r) => {
    if (!r.isEnabled || r.source !== source) return false;
    try {
      return compile(r.condition || 'true').matches(message, twin);
    } catch (e) {
      if (e instanceof RouteConditionError) return false;
      throw e;
    }
  });
}
