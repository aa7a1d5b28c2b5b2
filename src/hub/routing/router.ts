/**
 * The routing decision at ingest: which endpoints a message goes to (routes of its source whose
 * condition matches, else the fallback route for device messages), and the application properties
 * each endpoint's copy carries (enrichments). Pure and in memory: compiled once per settings change.
 */
import type { PropertyValue } from '../../store/eventLog.js';
import {
  BUILT_IN_ENDPOINT,
  type CompileRouteCondition,
  type EnrichmentSettings,
  type RoutableMessage,
  type RouteCondition,
  type RouteSource,
  type RoutingSettings,
  type TwinView,
} from './types.js';

interface CompiledRoute {
  name: string;
  source: string;
  /** The endpoint's name as configured (endpoint names are case-insensitive). */
  endpoint: string;
  condition: RouteCondition;
}

/** Where one message goes: the endpoint, and its copy's application properties. */
export interface RoutingTarget {
  endpoint: string;
  properties: Record<string, PropertyValue>;
}

export interface RoutingDecision {
  targets: RoutingTarget[];
  /** Routes whose condition matched (the fallback is `$fallback`). */
  matchedRoutes: string[];
}

/** A route whose condition does not compile matches nothing (the control plane should have refused it). */
const NEVER: RouteCondition = { text: 'false', needsTwin: false, needsBody: false, matches: () => false };

export class RoutingTable {
  /** No routes and no enrichment for `events`: device messages go to the built-in endpoint unchanged. */
  readonly builtInOnly: boolean;
  private readonly routes: CompiledRoute[];
  private readonly fallback: { name: string; endpoint: string } | undefined;
  private readonly enrichments: EnrichmentSettings[];
  private readonly twinNeeded = new Map<string, boolean>();
  readonly problems: string[] = [];

  constructor(
    readonly settings: RoutingSettings,
    compile: CompileRouteCondition,
    private readonly hubName: string,
  ) {
    this.routes = [];
    for (const r of settings.routes) {
      if (!r.isEnabled || !r.endpointNames[0]) continue;
      let condition: RouteCondition;
      try {
        condition = compile(r.condition || 'true');
      } catch (e) {
        this.problems.push(`route '${r.name}': ${(e as Error).message}`);
        condition = NEVER;
      }
      this.routes.push({ name: r.name, source: r.source, endpoint: r.endpointNames[0], condition });
    }
    const fb = settings.fallbackRoute;
    this.fallback = fb && fb.isEnabled && fb.endpointNames[0] ? { name: fb.name || '$fallback', endpoint: fb.endpointNames[0] } : undefined;
    this.enrichments = settings.enrichments ?? [];
    // Device messages all end in `events` unchanged when no enabled route takes device messages and
    // the fallback (or the absence of any route) sends them there: Telemetry then appends as always.
    const enrichesEvents = this.enrichments.some((e) => e.endpointNames.some((n) => n.toLowerCase() === BUILT_IN_ENDPOINT));
    const deviceRoutes = this.routes.some((r) => r.source === 'DeviceMessages');
    const fallbackToEvents = this.fallback?.endpoint.toLowerCase() === BUILT_IN_ENDPOINT;
    this.builtInOnly = !enrichesEvents && (settings.routes.length === 0 || (!deviceRoutes && fallbackToEvents));
    for (const e of this.enrichments) {
      if (e.value.startsWith('$twin.')) this.twinNeeded.set('$enrichment', true);
    }
  }

  /** Whether routing a message of `source` may read the twin (conditions or enrichments that use it). */
  needsTwin(source: RouteSource): boolean {
    let v = this.twinNeeded.get(source);
    if (v === undefined) {
      v = this.twinNeeded.get('$enrichment') === true || this.routes.some((r) => r.source === source && r.condition.needsTwin);
      this.twinNeeded.set(source, v);
    }
    return v;
  }

  /** The route a device message the fast path appended went by (the fallback when routes exist). */
  get builtInRoute(): string | undefined {
    return this.settings.routes.length === 0 ? undefined : this.fallback?.name;
  }

  /** Whether a message of `source` would go anywhere: sources no enabled route takes need not be built at all. */
  takes(source: RouteSource): boolean {
    if (source === 'DeviceMessages') return this.settings.routes.length === 0 || this.fallback !== undefined || this.routes.some((r) => r.source === source);
    return this.routes.some((r) => r.source === source);
  }

  decide(message: RoutableMessage, twin?: TwinView): RoutingDecision {
    const matchedRoutes: string[] = [];
    const endpoints = new Map<string, string>();
    if (this.settings.routes.length === 0) {
      // No routes at all: device messages go to the built-in endpoint, other sources nowhere.
      if (message.source === 'DeviceMessages') endpoints.set(BUILT_IN_ENDPOINT, BUILT_IN_ENDPOINT);
    } else {
      for (const r of this.routes) {
        if (r.source !== message.source) continue;
        let matched = false;
        try {
          matched = r.condition.matches(message, twin);
        } catch {
          matched = false;
        }
        if (!matched) continue;
        matchedRoutes.push(r.name);
        const key = r.endpoint.toLowerCase();
        if (!endpoints.has(key)) endpoints.set(key, r.endpoint);
      }
      if (endpoints.size === 0 && message.source === 'DeviceMessages' && this.fallback) {
        matchedRoutes.push(this.fallback.name);
        endpoints.set(this.fallback.endpoint.toLowerCase(), this.fallback.endpoint);
      }
    }
    const targets: RoutingTarget[] = [];
    for (const [key, endpoint] of endpoints) targets.push({ endpoint: key === BUILT_IN_ENDPOINT ? BUILT_IN_ENDPOINT : endpoint, properties: this.enrich(key, message, twin) });
    return { targets, matchedRoutes };
  }

  /** The message's application properties plus the enrichments that name the endpoint. */
  private enrich(endpointKey: string, message: RoutableMessage, twin?: TwinView): Record<string, PropertyValue> {
    let out: Record<string, PropertyValue> | undefined;
    for (const e of this.enrichments) {
      if (!e.endpointNames.some((n) => n.toLowerCase() === endpointKey)) continue;
      // Not a spread: keys added to a spread's copy give it a hidden class of its own (src/core/objects.ts).
      out ??= Object.assign({}, message.properties);
      out[e.key] = this.enrichmentValue(e.value, twin);
    }
    return out ?? message.properties;
  }

  private enrichmentValue(value: string, twin?: TwinView): string {
    if (value === '$iothubname') return this.hubName;
    if (!value.startsWith('$twin.')) return value;
    let v: unknown = twin;
    for (const p of value.slice('$twin.'.length).split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
    // A path the twin does not have stamps the enrichment's own text (IoT Hub does the same).
    if (v === undefined) return value;
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
}
