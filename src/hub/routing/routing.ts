/**
 * Message routing of one hub: the routing table at ingest, the custom endpoints' backlogs and
 * their delivery, the status the operations surfaces report. Settings come from the control
 * plane (`properties.routing` of the hub resource) at start and at every PUT.
 */
import type { Logger } from 'pino';
import type { EventLogs, EventToAppend, PropertyValue, StoredEvent } from '../../store/eventLog.js';
import { BUILT_IN_ENTITY } from '../../store/eventLog.js';
import { backlogEntity, type RoutingCheckpoints } from '../../store/routing.js';
import type { EgressCredential } from '../../identity/types.js';
import type { EventLogWriter } from '../messaging/eventLogWriter.js';
import { partitionFor } from '../messaging/eventLogWriter.js';
import { copyWith } from '../../core/objects.js';
import { EndpointDrainer, HUB_PARTITION_PROPERTY, type DeliveryOptions } from './delivery.js';
import { RoutingTable } from './router.js';
import {
  BUILT_IN_ENDPOINT,
  type CompileRouteCondition,
  type EndpointHealth,
  type EndpointKind,
  type EndpointSettings,
  type EndpointSinkFactory,
  type RoutableMessage,
  type RouteSource,
  type RoutingIngest,
  type RoutingSettings,
  type RoutingStatus,
  type TwinView,
} from './types.js';

export interface RoutingOptions extends DeliveryOptions {
  /** Storage endpoints: the shortest batch frequency allowed (IoT Hub: 60 s). */
  minBatchFrequencySeconds: number;
  /** How often the counters are logged (when they changed); 0 never. */
  statusLogSeconds: number;
}

/** The routing IoT Hub has when none was set: no routes, the fallback route to `events`. */
export function defaultRoutingSettings(): RoutingSettings {
  return {
    endpoints: { eventHubs: [], serviceBusQueues: [], serviceBusTopics: [], storageContainers: [] },
    routes: [],
    fallbackRoute: { name: '$fallback', source: 'DeviceMessages', condition: 'true', endpointNames: [BUILT_IN_ENDPOINT], isEnabled: true },
    enrichments: [],
  };
}

export interface MessageRoutingDeps {
  hubName: string;
  partitions: number;
  writer: EventLogWriter;
  logs: EventLogs;
  checkpoints: RoutingCheckpoints;
  twins: { getTwin(deviceId: string, moduleId?: string): Promise<TwinView> };
  /** The credential an endpoint's authentication resolves to (the egress seam). */
  credential(endpoint: EndpointSettings): Promise<EgressCredential>;
  sinks: EndpointSinkFactory;
  compile: CompileRouteCondition;
  options: RoutingOptions;
  logger: Logger;
  now?: () => number;
}

export class MessageRouting implements RoutingIngest, RoutingStatus {
  private table: RoutingTable;
  private readonly drainers = new Map<string, EndpointDrainer>();
  private readonly endpointSettings = new Map<string, string>();
  private readonly matched = new Map<string, number>();
  private orphaned = 0;
  private builtInCount = 0;
  private builtInLastTime: string | undefined;
  private applying: Promise<void> = Promise.resolve();
  private firstApply = true;
  private sinks: EndpointSinkFactory;
  private closed = false;
  private readonly statusTimer: NodeJS.Timeout | undefined;
  private lastLogged = '';

  constructor(private readonly deps: MessageRoutingDeps) {
    this.table = new RoutingTable(defaultRoutingSettings(), deps.compile, deps.hubName);
    this.sinks = deps.sinks;
    if (deps.options.statusLogSeconds > 0) {
      this.statusTimer = setInterval(() => this.logCounters(), deps.options.statusLogSeconds * 1000);
      this.statusTimer.unref();
    }
  }

  /** Device messages go to the built-in endpoint unchanged (Telemetry then appends as it always did). */
  get builtInOnly(): boolean {
    return this.table.builtInOnly;
  }

  /** Counts a device message Telemetry appended to the built-in endpoint itself. */
  countBuiltIn(): void {
    this.builtInCount++;
    const route = this.table.builtInRoute;
    if (route) this.matched.set(route, (this.matched.get(route) ?? 0) + 1);
  }

  /** Replaces the sink factory (the egress sinks; tests' own). Endpoints make their sinks again. */
  async useSinks(factory: EndpointSinkFactory): Promise<void> {
    this.sinks = factory;
    const current = this.table.settings;
    this.endpointSettings.clear();
    await this.apply(current);
  }

  /** Routes as the settings last applied said (before the control plane hands them over again). */
  async start(): Promise<void> {
    const saved = await this.deps.checkpoints.lastSettings();
    if (!saved) return;
    try {
      await this.apply(JSON.parse(saved) as RoutingSettings);
    } catch (e) {
      this.deps.logger.error({ err: e }, 'the saved routing settings could not be applied');
    }
  }

  /** Applies the hub's routing settings (serialised: the last one given wins). */
  apply(settings: RoutingSettings): Promise<void> {
    const next = this.applying.then(() => this.applyNow(settings));
    this.applying = next.catch((e) => this.deps.logger.error({ err: e }, 'applying routing settings failed'));
    return next;
  }

  private async applyNow(settings: RoutingSettings): Promise<void> {
    if (this.closed) return;
    const table = new RoutingTable(settings, this.deps.compile, this.deps.hubName);
    for (const p of table.problems) this.deps.logger.warn(`routing: ${p}; the route matches nothing`);
    const wanted = new Map<string, EndpointSettings>();
    for (const [kind, list] of Object.entries(settings.endpoints ?? {})) {
      for (const e of (list as EndpointSettings[] | undefined) ?? []) wanted.set(e.name.toLowerCase(), { ...e, kind: kind as EndpointKind });
    }
    // New endpoints get their backlog before any message can be routed to them.
    for (const [key, endpoint] of wanted) {
      const text = JSON.stringify(endpoint);
      const drainer = this.drainers.get(key);
      if (!drainer) {
        const d = this.drainer(endpoint);
        await d.start();
        this.drainers.set(key, d);
      } else if (this.endpointSettings.get(key) !== text) {
        await drainer.update(endpoint);
      }
      this.endpointSettings.set(key, text);
    }
    this.table = table;
    // Messages routed by the old table are committed before a removed endpoint's backlog goes.
    await this.deps.writer.settled();
    for (const [key, drainer] of [...this.drainers]) {
      if (wanted.has(key)) continue;
      this.drainers.delete(key);
      this.endpointSettings.delete(key);
      await drainer.close();
      await this.deps.checkpoints.remove(key);
    }
    await this.deps.checkpoints.saveSettings(JSON.stringify(settings));
    if (this.firstApply) {
      // Backlogs of endpoints removed while the hub was stopped.
      this.firstApply = false;
      for (const key of await this.deps.checkpoints.list()) if (!wanted.has(key)) await this.deps.checkpoints.remove(key);
    }
  }

  private drainer(endpoint: EndpointSettings): EndpointDrainer {
    return new EndpointDrainer(endpoint.name, endpoint, {
      backlog: this.deps.logs.entity(backlogEntity(endpoint.name)),
      checkpoints: this.deps.checkpoints,
      createSink: async (settings) => {
        const credential = await this.deps.credential(settings);
        return this.sinks.create(settings, { hubName: this.deps.hubName, credential, minBatchFrequencySeconds: this.deps.options.minBatchFrequencySeconds });
      },
      options: this.deps.options,
      logger: this.deps.logger,
      ...(this.deps.now ? { now: this.deps.now } : {}),
    });
  }

  /** Routes a device message; resolves after the commit with its built-in endpoint copy, if it has one. */
  async routeTelemetry(message: RoutableMessage, partition: number, enqueuedTime: number): Promise<StoredEvent | undefined> {
    const stored = await this.route(message, partition, enqueuedTime);
    return stored;
  }

  /** RoutingIngest: whether any route takes `source` now. */
  takes(source: RouteSource): boolean {
    return this.table.takes(source);
  }

  /** RoutingIngest: a non-telemetry event (or telemetry from another path). */
  async submit(message: RoutableMessage): Promise<void> {
    const enqueuedTime = (this.deps.now ?? Date.now)();
    const systemProperties =
      message.systemProperties['iothub-enqueuedtime'] === undefined
        ? copyWith<PropertyValue>(message.systemProperties, 'iothub-enqueuedtime', new Date(enqueuedTime).toISOString())
        : message.systemProperties;
    await this.route({ ...message, systemProperties }, partitionFor(message.deviceId, this.deps.partitions), enqueuedTime);
  }

  private async route(message: RoutableMessage, partition: number, enqueuedTime: number): Promise<StoredEvent | undefined> {
    let table = this.table;
    let twin: TwinView | undefined;
    if (table.needsTwin(message.source)) {
      twin = await this.twinOf(message);
      table = this.table;
    }
    const decision = table.decide(message, twin);
    for (const r of decision.matchedRoutes) this.matched.set(r, (this.matched.get(r) ?? 0) + 1);
    const entries: { entity: string; event: EventToAppend }[] = [];
    let builtIn = -1;
    for (const t of decision.targets) {
      if (t.endpoint === BUILT_IN_ENDPOINT) {
        builtIn = entries.length;
        entries.push({ entity: BUILT_IN_ENTITY, event: { partition, enqueuedTime, body: message.body, systemProperties: message.systemProperties, properties: t.properties } });
        continue;
      }
      if (!this.drainers.has(t.endpoint.toLowerCase())) continue;
      const systemProperties = copyWith<PropertyValue>(message.systemProperties, HUB_PARTITION_PROPERTY, partition);
      entries.push({ entity: backlogEntity(t.endpoint), event: { partition: 0, enqueuedTime, body: message.body, systemProperties, properties: t.properties } });
    }
    if (entries.length === 0) {
      if (message.source === 'DeviceMessages') this.orphaned++;
      return undefined;
    }
    const stored = await this.deps.writer.appendAcross(entries);
    if (builtIn >= 0) {
      this.builtInCount++;
      return stored[builtIn];
    }
    return undefined;
  }

  private async twinOf(message: RoutableMessage): Promise<TwinView | undefined> {
    try {
      return await this.deps.twins.getTwin(message.deviceId, message.moduleId);
    } catch {
      return undefined;
    }
  }

  /** The writer committed these (wakes the endpoints whose backlog grew). */
  committed(stored: { entity: string; event: StoredEvent }[]): void {
    for (const s of stored) {
      if (s.entity === BUILT_IN_ENTITY) continue;
      this.drainers.get(s.entity.slice('$endpoint/'.length))?.appended(s.event.sequenceNumber, s.event.body.length);
    }
    this.builtInLastTime = new Date().toISOString();
  }

  health(): EndpointHealth[] {
    const events: EndpointHealth = { endpointId: BUILT_IN_ENDPOINT, healthStatus: 'healthy', ...(this.builtInLastTime ? { lastSuccessfulSendAttemptTime: this.builtInLastTime, lastSendAttemptTime: this.builtInLastTime } : {}) };
    return [events, ...[...this.drainers.values()].map((d) => d.health())];
  }

  counters(): ReturnType<RoutingStatus['counters']> {
    const routes = [...this.table.settings.routes.map((r) => r.name), ...(this.table.settings.fallbackRoute ? [this.table.settings.fallbackRoute.name || '$fallback'] : [])];
    return {
      routes: routes.map((route) => ({ route, matched: this.matched.get(route) ?? 0 })),
      endpoints: [{ endpoint: BUILT_IN_ENDPOINT, delivered: this.builtInCount, dropped: 0, backlog: 0 }, ...[...this.drainers.values()].map((d) => d.counters())],
      orphaned: this.orphaned,
    };
  }

  private logCounters(): void {
    const c = this.counters();
    const text = JSON.stringify(c);
    if (text === this.lastLogged) return;
    this.lastLogged = text;
    const health = this.health().map((h) => ({ endpoint: h.endpointId, health: h.healthStatus }));
    this.deps.logger.info({ routing: { ...c, health } }, 'routing counters');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.applying;
    await Promise.all([...this.drainers.values()].map((d) => d.close()));
    this.drainers.clear();
  }
}
