import { randomUUID } from 'node:crypto';
import { HubError } from '../../core/errors.js';
import type { StoredEvent } from '../../store/index.js';
import type { ConnectedIdentity } from '../connections/deviceConnections.js';
import { partitionFor, type EventLogWriter } from './eventLogWriter.js';
import type { RoutableMessage } from '../routing/types.js';

/** What Telemetry needs of message routing (src/hub/routing/routing.ts). */
export interface TelemetryRouting {
  /** No routes and no enrichment of `events`: append to the built-in endpoint as is. */
  readonly builtInOnly: boolean;
  countBuiltIn(): void;
  /** Appends to every endpoint the routes choose, in one commit; the built-in endpoint's copy, if any. */
  routeTelemetry(message: RoutableMessage, partition: number, enqueuedTime: number): Promise<StoredEvent | undefined>;
}

/** IoT Hub's device-to-cloud message size limit: body plus properties. */
export const MAX_D2C_MESSAGE_BYTES = 256 * 1024;

/** A device-to-cloud message as a device sends it, in IoT Hub's words (protocol-agnostic). */
export interface DeviceToCloudMessage {
  body: Buffer;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  to?: string;
  contentType?: string;
  contentEncoding?: string;
  expiryTimeUtc?: string;
  /** Application properties. */
  properties: Record<string, string>;
}

/** What a device asked for with IoT Hub's fault-injection properties (used to test SDK retry logic). */
export interface FaultRequest {
  operation: string;
  closeReason?: string;
  delaySeconds: number;
  durationSeconds: number;
}

/** What a connection's messages share, computed once rather than per message (this is the hot path). */
interface Stamp {
  partition: number;
  /** `iothub-connection-auth-method`: the JSON IoT Hub puts there. */
  authMethod: string;
  /** The connection's system properties (device and module id, auth method, generation id) as JSON members: `,"iothub-connection-device-id":…`. */
  connectionJson: string;
}

/** Receives device telemetry, stamps IoT Hub's system properties and appends it to the event log. */
export class Telemetry {
  private readonly stamps = new WeakMap<ConnectedIdentity, Stamp>();
  private lastIso = { ms: NaN, iso: '' };

  constructor(
    private readonly writer: EventLogWriter,
    private readonly partitions: number,
    private readonly now: () => number = Date.now,
    private readonly routing?: TelemetryRouting,
  ) {}

  /**
   * Resolves once the message is committed to the event log (to every endpoint routing chose;
   * `event` is its built-in endpoint copy, absent when the routes sent it elsewhere only).
   */
  async send(source: ConnectedIdentity, message: DeviceToCloudMessage): Promise<{ event?: StoredEvent; fault?: FaultRequest }> {
    const size = messageSize(message);
    if (size > MAX_D2C_MESSAGE_BYTES) {
      throw new HubError('MessageTooLarge', `Message size ${size} bytes exceeds the limit of ${MAX_D2C_MESSAGE_BYTES} bytes`);
    }
    const enqueuedTime = this.now();
    const stamp = this.stampsOf(source);
    const messageId = message.messageId ?? randomUUID();
    // The map and its JSON, which the event log stores (its encoding of a map of strings is the
    // map's JSON), built side by side in one key order. JSON.stringify of the whole map cost
    // ~1.5 µs a message (bench:ingest), mostly re-escaping the connection's auth method: the
    // connection's part is encoded once, in its stamp.
    const system: Record<string, string> = { 'message-id': messageId };
    let json = '{"message-id":' + JSON.stringify(messageId);
    // Written out rather than looped over: this runs once per message.
    if (message.correlationId !== undefined) {
      system['correlation-id'] = message.correlationId;
      json += ',"correlation-id":' + JSON.stringify(message.correlationId);
    }
    if (message.userId !== undefined) {
      system['user-id'] = message.userId;
      json += ',"user-id":' + JSON.stringify(message.userId);
    }
    if (message.to !== undefined) {
      system['to'] = message.to;
      json += ',"to":' + JSON.stringify(message.to);
    }
    if (message.contentType !== undefined) {
      system['content-type'] = message.contentType;
      json += ',"content-type":' + JSON.stringify(message.contentType);
    }
    if (message.contentEncoding !== undefined) {
      system['content-encoding'] = message.contentEncoding;
      json += ',"content-encoding":' + JSON.stringify(message.contentEncoding);
    }
    if (message.expiryTimeUtc !== undefined) {
      system['absolute-expiry-time'] = message.expiryTimeUtc;
      json += ',"absolute-expiry-time":' + JSON.stringify(message.expiryTimeUtc);
    }
    system['iothub-connection-device-id'] = source.deviceId;
    if (source.moduleId) system['iothub-connection-module-id'] = source.moduleId;
    system['iothub-connection-auth-method'] = stamp.authMethod;
    system['iothub-connection-auth-generation-id'] = source.generationId;
    const iso = this.isoTime(enqueuedTime);
    system['iothub-enqueuedtime'] = iso;
    system['iothub-message-source'] = 'Telemetry';
    // An ISO time is digits, '-', ':', '.', 'T', 'Z' (and '+' past the year 9999): nothing to escape.
    json += stamp.connectionJson + ',"iothub-enqueuedtime":"' + iso + '","iothub-message-source":"Telemetry"}';

    const routing = this.routing;
    if (routing && !routing.builtInOnly) {
      const routable: RoutableMessage = { source: 'DeviceMessages', deviceId: source.deviceId, body: message.body, systemProperties: system, properties: message.properties };
      if (source.moduleId) routable.moduleId = source.moduleId;
      const event = await routing.routeTelemetry(routable, stamp.partition, enqueuedTime);
      return { ...(event ? { event } : {}), fault: faultRequest(message.properties) };
    }
    const event = await this.writer.append({
      partition: stamp.partition,
      enqueuedTime,
      body: message.body,
      systemProperties: system,
      systemPropertiesJson: json,
      properties: message.properties,
    });
    routing?.countBuiltIn();
    return { event, fault: faultRequest(message.properties) };
  }

  /** Messages of the same millisecond share one ISO string. */
  private isoTime(ms: number): string {
    if (ms !== this.lastIso.ms) this.lastIso = { ms, iso: new Date(ms).toISOString() };
    return this.lastIso.iso;
  }

  private stampsOf(source: ConnectedIdentity): Stamp {
    let stamp = this.stamps.get(source);
    if (!stamp) {
      const authMethod = JSON.stringify({ ...source.authMethod, acceptingIpFilterRule: null });
      const connection: Record<string, string> = { 'iothub-connection-device-id': source.deviceId };
      if (source.moduleId) connection['iothub-connection-module-id'] = source.moduleId;
      connection['iothub-connection-auth-method'] = authMethod;
      connection['iothub-connection-auth-generation-id'] = source.generationId;
      stamp = {
        partition: partitionFor(source.deviceId, this.partitions),
        authMethod,
        connectionJson: ',' + JSON.stringify(connection).slice(1, -1),
      };
      this.stamps.set(source, stamp);
    }
    return stamp;
  }
}

/** What counts toward the size limit: the body and every property's name and value. */
export function messageSize(m: DeviceToCloudMessage): number {
  let size = m.body.length;
  for (const k in m.properties) size += byteLength(k, m.properties[k]);
  return (
    size +
    byteLength('message-id', m.messageId) +
    byteLength('correlation-id', m.correlationId) +
    byteLength('user-id', m.userId) +
    byteLength('to', m.to) +
    byteLength('content-type', m.contentType) +
    byteLength('content-encoding', m.contentEncoding)
  );
}

function byteLength(k: string, v: string | undefined): number {
  return v === undefined ? 0 : Buffer.byteLength(k) + Buffer.byteLength(v);
}

function faultRequest(p: Record<string, string>): FaultRequest | undefined {
  const operation = p['AzIoTHub_FaultOperationType'];
  if (!operation) return undefined;
  const seconds = (v: string | undefined) => {
    const n = Number(v);
    return Number.isFinite(n) && n >= 0 ? n : 0;
  };
  return {
    operation,
    closeReason: p['AzIoTHub_FaultOperationCloseReason'],
    delaySeconds: seconds(p['AzIoTHub_FaultOperationDelayInSecs']),
    durationSeconds: seconds(p['AzIoTHub_FaultOperationDurationInSecs']),
  };
}
