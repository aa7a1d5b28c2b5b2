/**
 * The routing operations of `Microsoft.Devices/IotHubs`, as @azure/arm-iothub calls them:
 * `routing/routes/$testnew`, `routing/routes/$testall`, `routingEndpointsHealth`, `quotaMetrics`,
 * and Fleethub's own `routing/stats` (counters per route and endpoint, for `fleethub routing stats`).
 * Reads only: every change to routing is a PUT of the hub resource.
 */
import type { RunningHub } from '../../main.js';
import { compileRouteCondition } from '../../hub/routing/query/index.js';
import { routeSource, sampleMessage, sampleTwin, testAllRoutes, testRoute } from '../../hub/routing/testRoutes.js';
import {
  BUILT_IN_ENDPOINT,
  type EndpointHealth,
  type EndpointKind,
  type RouteSettings,
  type RoutingSettings,
  type RoutingStatus,
} from '../../hub/routing/types.js';
import { errors } from '../../core/errors.js';
import type { HubSettings } from './settings.js';

type Answer = { status: number; body?: unknown } | undefined;
const KINDS: EndpointKind[] = ['eventHubs', 'serviceBusQueues', 'serviceBusTopics', 'storageContainers'];

/** The hub resource's routing in the contract's shape. */
export function routingSettingsOf(settings: HubSettings): RoutingSettings {
  const r = settings.properties.routing;
  const endpoints = Object.fromEntries(KINDS.map((k) => [k, (r.endpoints[k] ?? []).map((e) => ({ ...e, kind: k }))])) as unknown as RoutingSettings['endpoints'];
  const route = (x: (typeof r.routes)[number]): RouteSettings => ({ ...x, condition: x.condition ?? 'true' });
  return { endpoints, routes: r.routes.map(route), fallbackRoute: route(r.fallbackRoute), enrichments: r.enrichments };
}

/**
 * What the running router reports about itself. Until a hub has a router (`hub.routing.status`),
 * every configured endpoint is `unknown` and every counter 0, so that the ARM surface is whole.
 */
export function routingStatusOf(hub: RunningHub, routing: RoutingSettings): RoutingStatus {
  const live = (hub as unknown as { routing?: { status?: RoutingStatus } }).routing?.status;
  if (live) return live;
  const names = [...KINDS.flatMap((k) => routing.endpoints[k].map((e) => e.name)), BUILT_IN_ENDPOINT];
  return {
    health: () => names.map((endpointId) => ({ endpointId, healthStatus: 'unknown' })),
    counters: () => ({
      routes: [...routing.routes, routing.fallbackRoute].map((r) => ({ route: r.name, matched: 0 })),
      endpoints: names.map((endpoint) => ({ endpoint, delivered: 0, dropped: 0, backlog: 0 })),
      orphaned: 0,
    }),
  };
}

/** ARM writes EndpointHealthData's times as RFC 1123 dates. */
export function healthToArm(h: EndpointHealth) {
  const time = (v: string | undefined) => (v && !Number.isNaN(Date.parse(v)) ? new Date(v).toUTCString() : undefined);
  return {
    endpointId: h.endpointId,
    healthStatus: h.healthStatus,
    ...(h.lastKnownError ? { lastKnownError: h.lastKnownError } : {}),
    ...(time(h.lastKnownErrorTime) ? { lastKnownErrorTime: time(h.lastKnownErrorTime) } : {}),
    ...(time(h.lastSuccessfulSendAttemptTime) ? { lastSuccessfulSendAttemptTime: time(h.lastSuccessfulSendAttemptTime) } : {}),
    ...(time(h.lastSendAttemptTime) ? { lastSendAttemptTime: time(h.lastSendAttemptTime) } : {}),
  };
}

/** Messages per unit per day, by SKU (IoT Hub's quotas). */
const DAILY_MESSAGES: Record<string, number> = { F1: 8000, S1: 400_000, S2: 6_000_000, S3: 300_000_000, B1: 400_000, B2: 6_000_000, B3: 300_000_000 };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The routing operations under a hub; undefined when the path is not one of them. */
export async function routingOperation(method: string, children: string[], hub: RunningHub, settings: HubSettings, body: unknown): Promise<Answer> {
  const c = children.map((x) => x.toLowerCase());
  const routing = () => routingSettingsOf(settings);
  if (c.length === 3 && c[0] === 'routing' && c[1] === 'routes' && (c[2] === '$testnew' || c[2] === '$testall')) {
    if (method !== 'POST') return undefined;
    if (!isObject(body)) throw errors.argument('The request content must be a JSON object.');
    if (c[2] === '$testnew') {
      const route = body.route;
      if (!isObject(route)) throw errors.argument("Invalid value for 'route': the route to test is required.");
      const source = routeSource(route.source, 'route.source');
      const condition = route.condition === undefined || route.condition === null ? 'true' : route.condition;
      if (typeof condition !== 'string') throw errors.argument("Invalid value for 'route.condition': expected a string.");
      const { result, compilationErrors } = testRoute(compileRouteCondition, condition, sampleMessage(source, body.message), sampleTwin(body.twin));
      return { status: 200, body: { result, details: { compilationErrors } } };
    }
    const source = routeSource(body.routingSource, 'routingSource');
    const matched = testAllRoutes(compileRouteCondition, routing().routes, source, sampleMessage(source, body.message), sampleTwin(body.twin));
    return { status: 200, body: { routes: matched.map((r) => ({ properties: { name: r.name, source: r.source, condition: r.condition, endpointNames: r.endpointNames, isEnabled: r.isEnabled } })) } };
  }
  if (c.length === 1 && c[0] === 'routingendpointshealth') {
    if (method !== 'GET') return undefined;
    return { status: 200, body: { value: routingStatusOf(hub, routing()).health().map(healthToArm) } };
  }
  if (c.length === 2 && c[0] === 'routing' && c[1] === 'stats') {
    if (method !== 'GET') return undefined;
    return { status: 200, body: routingStatusOf(hub, routing()).counters() };
  }
  if (c.length === 1 && c[0] === 'quotametrics') {
    if (method !== 'GET') return undefined;
    const devices = (await hub.queries.run('SELECT COUNT() AS numberOfDevices FROM devices')).items[0] as { numberOfDevices?: number } | undefined;
    return {
      status: 200,
      body: {
        value: [
          { name: 'TotalMessages', currentValue: 0, maxValue: (DAILY_MESSAGES[settings.sku.name] ?? 400_000) * settings.sku.capacity },
          { name: 'TotalDeviceCount', currentValue: devices?.numberOfDevices ?? 0, maxValue: 1_000_000 },
        ],
      },
    };
  }
  return undefined;
}
