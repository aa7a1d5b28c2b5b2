/**
 * Message routing's contracts (IoT Hub's `properties.routing`): what enters routing from each
 * source, the compiled route conditions, the routing decision taken at ingest, and the sinks that
 * deliver an endpoint's backlog. Four parts implement them, each in its own place:
 *
 * - the query language (`src/hub/routing/query/`): `compileRouteCondition`;
 * - the router and the durable per-endpoint backlogs (`src/hub/routing/`): decide at ingest, in
 *   the same commit as the event log append, which endpoints a message goes to; drain each
 *   endpoint's backlog in order with its own checkpoint, health and retries;
 * - the sources of non-telemetry events (`src/hub/routing/events/`): twin changes, device
 *   lifecycle, connection state and device job lifecycle, handed to `RoutingIngest`;
 * - the sinks (`src/egress/routing/`): Event Hubs, Service Bus queues and topics, storage
 *   containers, through the official `@azure/*` clients, with keys or the hub's identity.
 *
 * Domain code here imports no Azure SDK and no SQL.
 */
import type { PropertyValue } from '../../store/eventLog.js';
import type { EgressCredential } from '../../identity/types.js';

/** The sources a route can take messages from (IoT Hub's names). */
export type RouteSource =
  | 'DeviceMessages'
  | 'TwinChangeEvents'
  | 'DeviceLifecycleEvents'
  | 'DeviceConnectionStateEvents'
  | 'DeviceJobLifecycleEvents';

export const ROUTE_SOURCES: readonly RouteSource[] = [
  'DeviceMessages',
  'TwinChangeEvents',
  'DeviceLifecycleEvents',
  'DeviceConnectionStateEvents',
  'DeviceJobLifecycleEvents',
];

/** The built-in endpoint's name. */
export const BUILT_IN_ENDPOINT = 'events';

/** The kinds of custom endpoint (the ARM list each lives in). */
export type EndpointKind = 'eventHubs' | 'serviceBusQueues' | 'serviceBusTopics' | 'storageContainers';

/** One custom endpoint as the hub resource holds it (`properties.routing.endpoints.{kind}[i]`). */
export interface EndpointSettings {
  kind: EndpointKind;
  name: string;
  /** `keyBased` (default) or `identityBased`. */
  authenticationType?: 'keyBased' | 'identityBased' | string;
  identity?: { userAssignedIdentity?: string | null } | null;
  /** keyBased: the target's connection string (with `EntityPath` for Event Hubs / Service Bus). */
  connectionString?: string;
  /** identityBased: `sb://{namespace}.servicebus.windows.net` or `https://{account}.blob.core.windows.net/`. */
  endpointUri?: string;
  /** identityBased: the event hub, queue or topic name. */
  entityPath?: string;
  /** Storage containers only. */
  containerName?: string;
  /** Storage: default `{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}`. */
  fileNameFormat?: string;
  /** Storage: seconds, 60–720 on IoT Hub (default 300); a lower minimum is a setting for tests. */
  batchFrequencyInSeconds?: number;
  /** Storage: bytes, 10 MB–500 MB on IoT Hub (default 300 MB). */
  maxChunkSizeInBytes?: number;
  /** Storage: `avro` (default), `avroDeflate` or `json`. */
  encoding?: string;
  resourceGroup?: string;
  subscriptionId?: string;
}

export interface RouteSettings {
  name: string;
  source: RouteSource | string;
  /** The routing query; `true` when omitted. */
  condition: string;
  /** Exactly one endpoint name (IoT Hub allows one per route). */
  endpointNames: string[];
  isEnabled: boolean;
}

export interface EnrichmentSettings {
  key: string;
  /** A static value, `$iothubname`, or `$twin.tags.…` / `$twin.properties.…`. */
  value: string;
  endpointNames: string[];
}

/** A hub's routing, as the control plane hands it over (same shape as ARM's `properties.routing`). */
export interface RoutingSettings {
  endpoints: Record<EndpointKind, EndpointSettings[]>;
  routes: RouteSettings[];
  fallbackRoute: RouteSettings;
  enrichments: EnrichmentSettings[];
}

/**
 * A message entering routing, from any source. Telemetry keeps IoT Hub's stamped system
 * properties (`message-id`, `content-type`, `content-encoding`, `iothub-connection-device-id`,
 * `iothub-enqueuedtime`, `iothub-message-source`, …). Non-telemetry events carry IoT Hub's
 * documented application properties (`hubName`, `deviceId`, `moduleId`, `opType`,
 * `iothub-message-schema`, `operationTimestamp`) and system properties (`iothub-message-source`
 * = `twinChangeEvents` | `deviceLifecycleEvents` | `deviceConnectionStateEvents` | `jobLifecycleEvents`,
 * `content-type` `application/json`, `content-encoding` `utf-8`).
 */
export interface RoutableMessage {
  source: RouteSource;
  deviceId: string;
  moduleId?: string;
  body: Buffer;
  systemProperties: Record<string, PropertyValue>;
  properties: Record<string, PropertyValue>;
}

/** What a condition may read of the device's twin (`$twin.tags…`, `$twin.properties…`). */
export interface TwinView {
  tags?: Record<string, unknown>;
  properties?: { desired?: Record<string, unknown>; reported?: Record<string, unknown> };
}

/** A route condition that did not compile: the message says what and where (1-based). */
export class RouteConditionError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
    this.name = 'RouteConditionError';
  }
}

/** A compiled routing query (compile once per settings change; evaluate per message, in memory). */
export interface RouteCondition {
  readonly text: string;
  /** Whether evaluation reads `$twin…` (the router fetches the twin only then). */
  readonly needsTwin: boolean;
  /** Whether evaluation reads `$body…`. */
  readonly needsBody: boolean;
  /** True only when the query evaluates to boolean true (undefined and false do not match). */
  matches(message: RoutableMessage, twin?: TwinView): boolean;
}

/** `compileRouteCondition(text)` throws `RouteConditionError`. */
export type CompileRouteCondition = (text: string) => RouteCondition;

/**
 * Hands a non-telemetry event (or telemetry from a path other than Telemetry.send) to routing.
 * Resolves once committed to every backlog the routes chose (or at once when nothing matched).
 */
export interface RoutingIngest {
  submit(message: RoutableMessage): Promise<void>;
  /** False when no route takes messages of `source` now (their events need not be built). */
  takes?(source: RouteSource): boolean;
}

/** A message as an endpoint's backlog holds it: enrichments already applied. */
export interface RoutedMessage {
  /** The position in the endpoint's backlog (increasing, never reused). */
  sequenceNumber: number;
  /** The hub partition of the device (storage endpoints name blobs by it). */
  partition: number;
  enqueuedTime: number;
  body: Buffer;
  systemProperties: Record<string, PropertyValue>;
  properties: Record<string, PropertyValue>;
}

/** Why a delivery failed, as health and retries need it. */
export type SinkFailureKind = 'unauthorized' | 'notFound' | 'throttled' | 'transient' | 'invalid';

/** Thrown by a sink: `kind` decides the health state; `message` is the endpoint's last known error. */
export class SinkError extends Error {
  constructor(
    readonly kind: SinkFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'SinkError';
  }
}

/**
 * Delivers to one custom endpoint. `deliver` resolves once the target accepted every message of
 * the batch (then the router advances the endpoint's checkpoint); it throws `SinkError` otherwise,
 * and the whole batch is tried again later (at least once). Storage sinks batch: they say so with
 * `batching`, and the router then hands over one batch per window (when the oldest undelivered
 * message has waited `frequencyMs`, or `maxBytes` of bodies are waiting), which the sink writes as
 * one blob per hub partition; the backlog, not the sink, holds messages until then.
 */
export interface EndpointSink {
  readonly batching?: { frequencyMs: number; maxBytes: number };
  /**
   * Connects ahead of the first delivery (connection, authorization, links), so that it is not paid
   * while messages wait, nor under load. Optional; its failure is not the endpoint's health (the
   * next delivery reports it).
   */
  open?(): Promise<void>;
  deliver(messages: RoutedMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** What a sink needs besides the endpoint's settings. */
export interface SinkContext {
  hubName: string;
  /** The credential the endpoint's authentication type resolves to (egress seam). */
  credential: EgressCredential;
  /** Storage: the shortest batch frequency allowed (IoT Hub: 60 s; tests set less). */
  minBatchFrequencySeconds: number;
}

export interface EndpointSinkFactory {
  create(endpoint: EndpointSettings, context: SinkContext): EndpointSink;
}

/** Endpoint health as IoT Hub reports it (`routingEndpointsHealth`). */
export type EndpointHealthStatus = 'unknown' | 'healthy' | 'degraded' | 'unhealthy' | 'dead';

export interface EndpointHealth {
  endpointId: string;
  healthStatus: EndpointHealthStatus;
  lastKnownError?: string;
  lastKnownErrorTime?: string;
  lastSuccessfulSendAttemptTime?: string;
  lastSendAttemptTime?: string;
}

/** Counters per route and per endpoint since the hub started (logs and `fleethub routing`). */
export interface RouteCounters {
  route: string;
  /** Messages the route's condition matched (and so were added to its endpoint's backlog). */
  matched: number;
}

export interface EndpointCounters {
  endpoint: string;
  delivered: number;
  /** Dropped: the endpoint was dead, or a message could never be delivered (`invalid`). */
  dropped: number;
  /** Messages waiting in the endpoint's backlog now. */
  backlog: number;
}

/** What the running router tells about itself: health (`routingEndpointsHealth`) and counters. */
export interface RoutingStatus {
  /** Every custom endpoint and `events`, in IoT Hub's shape. */
  health(): EndpointHealth[];
  counters(): { routes: RouteCounters[]; endpoints: EndpointCounters[]; orphaned: number };
}
