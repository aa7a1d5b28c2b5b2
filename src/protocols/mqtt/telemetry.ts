import { errors } from '../../core/errors.js';
import type { ConnectedIdentity } from '../../hub/connections/deviceConnections.js';
import type { DeviceToCloudMessage, Telemetry } from '../../hub/messaging/telemetry.js';
import type { DeviceSession, TopicHandler } from './handler.js';

/** `devices/{id}/messages/events/{property_bag}` and the module form. */
const eventsTopic = /^devices\/[^/]+\/(?:modules\/[^/]+\/)?messages\/events(?:\/(.*))?$/s;

/** The property-bag keys IoT Hub reads as system properties. */
const systemKeys: Record<string, keyof DeviceToCloudMessage> = {
  '$.mid': 'messageId',
  '$.cid': 'correlationId',
  '$.uid': 'userId',
  '$.to': 'to',
  '$.ct': 'contentType',
  '$.ce': 'contentEncoding',
  '$.exp': 'expiryTimeUtc',
};

/** Fault-injection operations that drop the connection (IoT Hub's names; the AMQP ones drop MQTT too). */
const connectionFaults = /^(KillTcp|KillAmqp.*|ShutDownAmqp|ShutDownMqtt|GracefulShutdownAmqp|GracefulShutdownMqtt)$/;

/** Device-to-cloud telemetry over MQTT: decode the topic's property bag, hand the message to the telemetry service. */
export function telemetryTopics(telemetry: Telemetry): TopicHandler {
  return {
    owns: (topic) => eventsTopic.test(topic),
    async publish(session, { topic, payload }) {
      const bag = eventsTopic.exec(topic)?.[1] ?? '';
      const message = decodePropertyBag(bag, payload);
      const { fault } = await telemetry.send(identityOf(session), message);
      if (fault && connectionFaults.test(fault.operation)) {
        setTimeout(() => session.close(`fault injection: ${fault.operation} ${fault.closeReason ?? ''}`.trim()), fault.delaySeconds * 1000).unref();
      }
    },
  };
}

/** `k=v&k2=v2`, URL-encoded; `$.`-prefixed keys are system properties, the rest application properties. */
export function decodePropertyBag(bag: string, body: Buffer): DeviceToCloudMessage {
  const message: DeviceToCloudMessage = { body, properties: {} };
  if (bag === '') return message;
  for (const pair of bag.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw errors.argument(`The property bag is not URL-encoded: '${pair}'`);
    }
    const system = systemKeys[key];
    if (system) (message as unknown as Record<string, string>)[system] = value;
    else if (!key.startsWith('$.')) message.properties[key] = value;
  }
  return message;
}

function identityOf(session: DeviceSession): ConnectedIdentity {
  if (session.identity) return session.identity;
  return {
    deviceId: session.deviceId,
    moduleId: session.moduleId,
    generationId: session.generationId,
    authMethod: { scope: session.moduleId ? 'module' : 'device', type: session.authMethod === 'sas' ? 'sas' : 'x509Certificate', issuer: 'iothub' },
  };
}
