import rhea, { type Message } from 'rhea';
import type { LoggedEvent } from '../../../hub/eventhub/types.js';

const { types } = rhea;

/** System properties that travel in the AMQP properties section, by their IoT Hub names. */
const propertiesSection: Record<string, (m: Message, v: string) => void> = {
  'message-id': (m, v) => (m.message_id = v),
  'correlation-id': (m, v) => (m.correlation_id = v),
  'user-id': (m, v) => (m.user_id = Buffer.from(v, 'utf8') as never),
  to: (m, v) => (m.to = v),
  'content-type': (m, v) => (m.content_type = v),
  'content-encoding': (m, v) => (m.content_encoding = v),
  'absolute-expiry-time': (m, v) => {
    const t = Date.parse(v);
    if (Number.isFinite(t)) m.absolute_expiry_time = t as never;
  },
};

/** Annotations IoT Hub sends as timestamps rather than strings. */
const timestampAnnotations = new Set(['iothub-enqueuedtime']);

/**
 * An event as the built-in endpoint delivers it: the body as one data section, application
 * properties as sent, IoT Hub's system properties as AMQP properties and message annotations,
 * and Event Hubs' position annotations (x-opt-*), so that the SDK's EventData.systemProperties,
 * sequenceNumber, offset and enqueuedTimeUtc look as on Azure.
 */
export function eventMessage(event: LoggedEvent): Message {
  const annotations: Record<string, unknown> = {};
  const message: Message = {
    body: rhea.message.data_section(event.body),
    application_properties: { ...event.properties },
  };
  for (const [k, v] of Object.entries(event.systemProperties)) {
    const set = propertiesSection[k];
    if (set) set(message, v);
    else if (timestampAnnotations.has(k)) {
      const t = Date.parse(v);
      annotations[k] = Number.isFinite(t) ? types.wrap_timestamp(t) : v;
    } else annotations[k] = v;
  }
  annotations['x-opt-sequence-number'] = types.wrap_long(event.sequenceNumber);
  annotations['x-opt-offset'] = event.offset;
  annotations['x-opt-enqueued-time'] = types.wrap_timestamp(event.enqueuedTime);
  const partitionKey = event.systemProperties['iothub-connection-device-id'];
  if (partitionKey !== undefined) annotations['x-opt-partition-key'] = partitionKey;
  message.message_annotations = annotations;
  return message;
}
