import type { DeviceConnections } from '../../connections/deviceConnections.js';
import type { RoutingEvents } from './emitter.js';
import { nonTelemetryMessage } from './messages.js';

/**
 * IoT Hub's connection-state sequence number: 64 hex digits (a 256-bit number) that only grows,
 * so that string comparison tells the later event. Fleethub's: 16 zeros, the hub's start time as
 * a Windows FILETIME (16 digits), then a counter of the events since that start (32 digits). A
 * later start has a later time, so numbers keep growing across restarts.
 */
export class ConnectionSequence {
  private readonly prefix: string;
  private counter = 0n;

  constructor(startedAt: Date) {
    const fileTime = (BigInt(startedAt.getTime()) + 11_644_473_600_000n) * 10_000n;
    this.prefix = '0'.repeat(16) + fileTime.toString(16).toUpperCase().padStart(16, '0');
  }

  /** Counts a change whose number no one reads. */
  skip(): void {
    this.counter += 1n;
  }

  next(): string {
    this.counter += 1n;
    return this.prefix + this.counter.toString(16).toUpperCase().padStart(32, '0');
  }
}

/**
 * DeviceConnectionStateEvents: a device or module connected (MQTT, AMQP, over TCP or WebSocket;
 * HTTPS has no connection) or its connection ended, per identity in the order it happened.
 */
export function connectionStateEvents(connections: DeviceConnections, events: RoutingEvents, sequence = new ConnectionSequence(events.now())): () => void {
  return connections.onConnectionStateChange((change) => {
    // The number is taken even when no route takes these events, so it keeps counting every change.
    if (!events.wants('DeviceConnectionStateEvents')) return sequence.skip();
    const sequenceNumber = sequence.next();
    const who = change.moduleId ? 'module' : 'device';
    events.emit(
      nonTelemetryMessage({
        source: 'DeviceConnectionStateEvents',
        schema: 'deviceConnectionStateNotification',
        opType: `${who}${change.state === 'Connected' ? 'Connected' : 'Disconnected'}`,
        hubName: events.hubName,
        deviceId: change.deviceId,
        moduleId: change.moduleId,
        body: { sequenceNumber },
        at: change.at,
      }),
    );
  });
}
