/**
 * IoT Hub's rules for `properties.routing` beyond its shape, checked when the hub resource is
 * written so that a bad route is refused with the position of its error and nothing changes:
 * at most 100 routes and 10 custom endpoints, and every route condition compiles.
 */
import { armErrors } from '../errors.js';
import { compileRouteCondition } from '../../hub/routing/query/index.js';
import { RouteConditionError } from '../../hub/routing/types.js';

export const MAX_ROUTES = 100;
export const MAX_CUSTOM_ENDPOINTS = 10;

interface RoutingShape {
  endpoints: Record<string, { name: string }[]>;
  routes: { name: string; condition?: string }[];
  fallbackRoute: { name: string; condition?: string };
}

export function checkRoutingRules(routing: RoutingShape): void {
  if (routing.routes.length > MAX_ROUTES) {
    throw armErrors.badRequest('RouteLimitExceeded', `A hub has at most ${MAX_ROUTES} routes (properties.routing.routes has ${routing.routes.length}).`);
  }
  const custom = Object.entries(routing.endpoints).filter(([kind]) => kind !== 'cosmosDBSqlContainers').reduce((n, [, list]) => n + list.length, 0);
  if (custom > MAX_CUSTOM_ENDPOINTS) {
    throw armErrors.badRequest('EndpointLimitExceeded', `A hub has at most ${MAX_CUSTOM_ENDPOINTS} custom endpoints (properties.routing.endpoints has ${custom}).`);
  }
  for (const r of [...routing.routes, routing.fallbackRoute]) {
    const condition = r.condition ?? 'true';
    try {
      compileRouteCondition(condition);
    } catch (e) {
      if (!(e instanceof RouteConditionError)) throw e;
      // IoT Hub's own wording (IH400104), with the error's position.
      throw armErrors.badRequest(
        'InvalidRoutingCondition',
        `Invalid Routing Condition, RouteName:${r.name}, ErrorMessage:Message:${e.message}, Location <start>:${e.line}:${e.column}, Severity:Error`,
      );
    }
  }
}
