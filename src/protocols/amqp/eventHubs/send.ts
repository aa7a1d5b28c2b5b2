import rhea, { type Delivery, type Receiver } from 'rhea';
import { HubError } from '../../../core/errors.js';
import { MAX_EVENT_BYTES, type EventHubsNamespaces, type EventToSend } from '../../../namespaces/eventHubs/namespaces.js';
import type { PropertyValue } from '../../../store/eventLog.js';
import { amqpError } from '../errors.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { BODY_SECTIONS } from '../eventhub/eventMessage.js';
import { decodeEvent, fromTyped } from '../eventhub/typedValues.js';
import type { EventHubsConnections } from './connection.js';
import { rawMessageBytes } from '../rawMessage.js';

/** The message format of a batch (EventHubProducerClient.sendBatch): its body is data sections, each an encoded event. */
export const BATCH_FORMAT = 0x80013700;

/** Annotations the broker sets; a sender's are dropped. */
const BROKER_ANNOTATIONS = new Set(['x-opt-sequence-number', 'x-opt-offset', 'x-opt-enqueued-time']);

interface Typed {
  type: { name: string };
  value: unknown;
  descriptor?: { value: unknown };
}

/** A batch envelope: the partition key annotation it carries, and each event's encoded bytes. */
function decodeBatch(bytes: Buffer): { partitionKey?: string; events: Buffer[] } {
  const reader = new (rhea.types as unknown as { Reader: new (b: Buffer) => { remaining(): number; read(): Typed } }).Reader(bytes);
  const events: Buffer[] = [];
  let partitionKey: string | undefined;
  while (reader.remaining() > 0) {
    const section = reader.read();
    const code = section.descriptor?.value;
    if (code === 0x75 || code === 'amqp:data:binary') events.push(Buffer.from(section.value as Buffer));
    else if (code === 0x72 || code === 'amqp:message-annotations:map') {
      const items = section.value as Typed[];
      for (let i = 0; i + 1 < items.length; i += 2) {
        if (String(items[i]!.value) === 'x-opt-partition-key') {
          const v = fromTyped(items[i + 1] as never);
          if (v !== null) partitionKey = String(v);
        }
      }
    }
  }
  return { ...(partitionKey !== undefined ? { partitionKey } : {}), events };
}

function toEvent(bytes: Buffer): { event: EventToSend; partitionKey?: string } {
  const decoded = decodeEvent(bytes);
  const systemProperties: Record<string, PropertyValue> = {};
  for (const [k, v] of Object.entries(decoded.systemProperties)) if (!BROKER_ANNOTATIONS.has(k)) systemProperties[k] = v;
  if (decoded.bodySections) systemProperties[BODY_SECTIONS] = true;
  const key = systemProperties['x-opt-partition-key'];
  return {
    event: { body: decoded.body, systemProperties, properties: decoded.properties },
    ...(key !== undefined && key !== null ? { partitionKey: String(key) } : {}),
  };
}

/**
 * Links on which producers send to `{eventhub}` or `{eventhub}/Partitions/{n}` of the
 * connection's namespace: single events and batches (one transaction each), accepted once
 * committed; over 1 MB rejected with amqp:link:message-size-exceeded.
 */
export function eventHubsSendRoute(namespaces: EventHubsNamespaces, connections: EventHubsConnections): LinkRoute {
  return {
    role: 'receive',
    address: /^(?:[a-z]+:\/\/[^/]+)?\/?([^/$][^/]*)(?:\/Partitions\/([^/]+))?$/i,
    accepts: (c) => connections.namespaceOf(c) !== undefined,
    async open({ connection, link }: IncomingLink<Receiver>, m) {
      link.set_source(link.source);
      link.set_target(link.target);
      (link as unknown as { local: { attach: Record<string, unknown> } }).local.attach.max_message_size = MAX_EVENT_BYTES;
      const namespace = connections.namespaceOf(connection)!;
      const [, name, partitionId] = m as unknown as [string, string, string | undefined];
      try {
        // Azure AD tokens' roles are looked up now; each message then goes by that decision.
        await connections.authorizeNow(connection, 'Send', name);
      } catch (e) {
        link.close(amqpError(e));
        return;
      }
      if (!link.is_open()) return;
      const hub = namespaces.served(namespace, name);
      if (!hub) {
        link.close({ condition: 'amqp:not-found', description: `The messaging entity '${namespace}/${name}' could not be found.` });
        return;
      }
      if (partitionId !== undefined && hub.partition(partitionId) === undefined) {
        link.close({ condition: 'amqp:not-found', description: `The messaging entity '${hub.name}/Partitions/${partitionId}' could not be found.` });
        return;
      }
      link.on('message', (context) => {
        const delivery = context.delivery as Delivery & { format?: number };
        const reject = (e: unknown) => {
          if (!(e instanceof HubError)) connection.logger.warn({ err: e }, 'Event Hubs send failed');
          delivery.reject(e instanceof HubError ? amqpError(e) : { condition: 'amqp:internal-error', description: 'Internal error' });
        };
        try {
          // Each send is authorized against the tokens as they are now (renewed or expired).
          connections.authorize(connection, 'Send', name);
          // rhea hands a batch (a message format of its own) over undecoded; a plain message is re-encoded from its raw bytes when rhea kept them.
          const raw = context.message as unknown;
          const format = (context as { format?: number }).format ?? delivery.format;
          const bytes = Buffer.isBuffer(raw) ? raw : rawMessageBytes(context.message) ?? Buffer.from(rhea.message.encode(context.message as never));
          if (bytes.length > MAX_EVENT_BYTES) {
            throw new HubError('MessageTooLarge', `The received message (delivery-id:${String((delivery as unknown as { id?: number }).id)}, size:${bytes.length} bytes) exceeds the limit (${MAX_EVENT_BYTES} bytes) currently allowed on the link.`);
          }
          let events: EventToSend[];
          let partitionKey: string | undefined;
          if (format === BATCH_FORMAT) {
            const batch = decodeBatch(bytes);
            events = batch.events.map((b) => toEvent(b).event);
            partitionKey = batch.partitionKey;
          } else {
            const one = toEvent(bytes);
            events = [one.event];
            partitionKey = one.partitionKey;
          }
          if (partitionId !== undefined && partitionKey !== undefined) {
            throw new HubError('ArgumentInvalid', 'A partition key cannot be given when sending to a partition.');
          }
          const target = partitionId !== undefined ? { partitionId } : partitionKey !== undefined ? { partitionKey } : {};
          void namespaces.send(namespace, name, events, target).then(() => delivery.accept(), reject);
        } catch (e) {
          reject(e instanceof Error && !(e instanceof HubError) && /section|Unrecognised|out of range|offset/i.test(e.message) ? new HubError('ArgumentInvalid', `Malformed message: ${e.message}`) : e);
        }
      });
    },
  };
}
