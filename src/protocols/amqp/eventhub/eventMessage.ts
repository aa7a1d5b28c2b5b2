import rhea, { type Message } from 'rhea';
import type { LoggedEvent } from '../../../hub/eventhub/types.js';
import type { PropertyValue } from '../../../store/eventLog.js';
import { propertyText, toAmqp } from './typedValues.js';

const { types } = rhea;

/** The log's names of AMQP properties-section fields, and rhea's. */
const propertiesSection: Record<string, keyof Message> = {
  'message-id': 'message_id',
  'correlation-id': 'correlation_id',
  'user-id': 'user_id',
  to: 'to',
  subject: 'subject',
  'reply-to': 'reply_to',
  'content-type': 'content_type',
  'content-encoding': 'content_encoding',
  'absolute-expiry-time': 'absolute_expiry_time',
  'creation-time': 'creation_time',
  'group-id': 'group_id',
  'group-sequence': 'group_sequence',
  'reply-to-group-id': 'reply_to_group_id',
};

/** Fields rhea encodes with a fixed type: given as plain values, not typed ones. */
function propertyField(key: string, v: PropertyValue): unknown {
  if (key === 'user-id') return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  if (key === 'absolute-expiry-time' || key === 'creation-time') {
    // IoT Hub's system properties are ISO strings; a namespace's are timestamps.
    const t = v instanceof Date ? v.getTime() : Date.parse(String(v));
    return Number.isFinite(t) ? t : undefined;
  }
  if (key === 'group-sequence') return typeof v === 'object' && v !== null && 'value' in v ? Number(v.value) : v;
  if (key === 'message-id' || key === 'correlation-id') {
    // rhea wraps message ids itself, by JavaScript type: a Buffer as uuid, a number as ulong.
    if (typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !(v instanceof Date)) {
      if (v.type === 'uuid') return Buffer.from(rhea.string_to_uuid(String(v.value)));
      if (v.type === 'ulong') return Number(v.value);
    }
    return propertyText(v);
  }
  return propertyText(v);
}

/** Annotations IoT Hub sends as timestamps rather than strings. */
const timestampAnnotations = new Set(['iothub-enqueuedtime']);

/** A key of `systemProperties` that says `body` holds encoded body sections (amqp-value, sequence), not one data section's bytes. */
export const BODY_SECTIONS = '$body-sections';

/**
 * An event as an Event Hub delivers it: the body as sent (one data section for the built-in
 * endpoint), application properties with their types, the system properties as AMQP properties
 * and message annotations (IoT Hub's for the built-in endpoint), and Event Hubs' position
 * annotations (x-opt-*), so that the SDK's EventData.systemProperties, sequenceNumber, offset
 * and enqueuedTimeUtc look as on Azure.
 */
export function eventMessage(event: LoggedEvent): Message {
  const annotations: Record<string, unknown> = {};
  const application: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event.properties)) application[k] = toAmqp(v);
  const sections = event.systemProperties[BODY_SECTIONS] === true;
  const message: Message = {
    body: sections ? (rhea.message.decode(event.body) as unknown as Message).body : rhea.message.data_section(event.body),
    application_properties: application,
  };
  for (const [k, v] of Object.entries(event.systemProperties)) {
    if (k === BODY_SECTIONS) continue;
    const field = propertiesSection[k];
    if (field) {
      const value = propertyField(k, v);
      if (value !== undefined) (message as unknown as Record<string, unknown>)[field] = value;
    } else if (timestampAnnotations.has(k) && typeof v === 'string') {
      const t = Date.parse(v);
      annotations[k] = Number.isFinite(t) ? types.wrap_timestamp(t) : v;
    } else annotations[k] = toAmqp(v);
  }
  annotations['x-opt-sequence-number'] = types.wrap_long(event.sequenceNumber);
  annotations['x-opt-offset'] = event.offset;
  annotations['x-opt-enqueued-time'] = types.wrap_timestamp(event.enqueuedTime);
  const deviceId = event.systemProperties['iothub-connection-device-id'];
  if (annotations['x-opt-partition-key'] === undefined && deviceId !== undefined) annotations['x-opt-partition-key'] = propertyText(deviceId);
  message.message_annotations = annotations;
  return message;
}
