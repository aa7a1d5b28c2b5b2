/**
 * The seam between the MQTT session layer (connection, auth, keep-alive, packet I/O) and the
 * topic families IoT Hub defines (telemetry, twin, methods, cloud-to-device, DPS). The session
 * layer routes each PUBLISH and SUBSCRIBE to the first handler whose `owns` matches; a handler is
 * a thin adapter that calls one domain service and publishes the answer. Handlers hold no state
 * beyond what a live connection needs (pending request ids, subscriptions).
 */
import type { ConnectedIdentity } from '../../hub/connections/deviceConnections.js';

export interface DeviceSession {
  readonly deviceId: string;
  readonly moduleId?: string;
  /** How the session authenticated, as IoT Hub stamps it: 'sas' | 'x509' ... */
  readonly authMethod: string;
  readonly generationId: string;
  /** The authenticated identity with IoT Hub's auth-method details (scope, type, issuer). */
  readonly identity?: ConnectedIdentity;
  /** Publishes to the device. QoS 1 resolves on PUBACK. */
  publish(topic: string, payload: Buffer | string, qos?: 0 | 1): Promise<void>;
  /** Closes the network connection (IoT Hub's answer to a protocol violation). */
  close(reason: string): void;
  /** Called with the session when it ends, however it ends. */
  onClose(listener: () => void): void;
}

export interface InboundPublish {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
}

export interface TopicHandler {
  /** True when the topic (or topic filter, for SUBSCRIBE) belongs to this family. */
  owns(topic: string): boolean;
  /**
   * A PUBLISH from the device on an owned topic. Resolving means the message is committed (the
   * session then sends PUBACK for QoS 1); rejecting with a HubError closes the connection as
   * IoT Hub does for a violation.
   */
  publish?(session: DeviceSession, message: InboundPublish): Promise<void>;
  /** A SUBSCRIBE to an owned topic filter; return the granted QoS (0 or 1), or 0x80 to refuse. */
  subscribe?(session: DeviceSession, topicFilter: string, qos: 0 | 1): Promise<0 | 1 | 0x80>;
  unsubscribe?(session: DeviceSession, topicFilter: string): Promise<void>;
}
