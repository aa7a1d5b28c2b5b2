import { randomUUID } from 'node:crypto';
import type { PropertyValue } from '../../../store/eventLog.js';
import type { RoutableMessage, RouteSource } from '../types.js';

/** IoT Hub's `iothub-message-source` per route source (non-telemetry events). */
export const MESSAGE_SOURCES = {
  TwinChangeEvents: 'twinChangeEvents',
  DeviceLifecycleEvents: 'deviceLifecycleEvents',
  DeviceConnectionStateEvents: 'deviceConnectionStateEvents',
  DeviceJobLifecycleEvents: 'jobLifecycleEvents',
} as const satisfies Partial<Record<RouteSource, string>>;

export type NonTelemetrySource = keyof typeof MESSAGE_SOURCES;

export interface NonTelemetryEvent {
  source: NonTelemetrySource;
  /** `iothub-message-schema`, e.g. `twinChangeNotification`. */
  schema: string;
  /** e.g. `updateTwin`, `createDeviceIdentity`, `deviceConnected`. */
  opType: string;
  hubName: string;
  deviceId: string;
  moduleId?: string;
  /** Serialized as JSON, UTF-8. */
  body: unknown;
  /** When the operation happened (`operationTimestamp`, `iothub-enqueuedtime`). */
  at: Date;
}

/**
 * A non-telemetry event as IoT Hub emits it: application properties `hubName`, `deviceId`,
 * (`moduleId`), `operationTimestamp`, `iothub-message-schema`, `opType`; system properties
 * `content-type` application/json, `content-encoding` utf-8, a unique `message-id` and
 * `correlation-id`, `user-id` (the hub's name), the connection device/module ids, the enqueued
 * time and `iothub-message-source`.
 */
export function nonTelemetryMessage(event: NonTelemetryEvent): RoutableMessage {
  const id = randomUUID();
  const at = event.at.toISOString();
  const systemProperties: Record<string, PropertyValue> = {
    'message-id': id,
    'correlation-id': id,
    'user-id': event.hubName,
    'content-type': 'application/json',
    'content-encoding': 'utf-8',
    'iothub-connection-device-id': event.deviceId,
    ...(event.moduleId ? { 'iothub-connection-module-id': event.moduleId } : {}),
    'iothub-enqueuedtime': at,
    'iothub-message-source': MESSAGE_SOURCES[event.source],
  };
  const properties: Record<string, PropertyValue> = {
    hubName: event.hubName,
    deviceId: event.deviceId,
    ...(event.moduleId ? { moduleId: event.moduleId } : {}),
    operationTimestamp: at,
    'iothub-message-schema': event.schema,
    opType: event.opType,
  };
  return {
    source: event.source,
    deviceId: event.deviceId,
    ...(event.moduleId ? { moduleId: event.moduleId } : {}),
    body: Buffer.from(JSON.stringify(event.body), 'utf8'),
    systemProperties,
    properties,
  };
}
