import { randomUUID } from 'node:crypto';
import rhea, { type Message } from 'rhea';
import type { MessageReader } from '../../../namespaces/serviceBus/namespaces.js';
import type { IncomingMessage, StoredMessage } from '../../../namespaces/serviceBus/types.js';
import { messageId } from '../messages.js';

const { types } = rhea;

/** The message format of a batch: its body is data sections, each an encoded message. */
export const BATCH_FORMAT = 0x80013700;

/** AMQP uuid bytes of a lock token as Service Bus puts it in a delivery tag (.NET's GUID byte order). */
export function lockTokenTag(lockToken: string): Buffer {
  return reorder(Buffer.from(rhea.string_to_uuid(lockToken)));
}

export function lockTokenFromTag(tag: Buffer): string {
  return rhea.uuid_to_string(reorder(tag));
}

function reorder(b: Buffer): Buffer {
  if (b.length !== 16) return b;
  return Buffer.from([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8)]);
}

function timeOf(v: unknown): number | undefined {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  return undefined;
}

/** Reads what filters and expiry need of an encoded message (the domain's MessageReader). */
export const amqpMessageReader: MessageReader = {
  describe(payload: Buffer): IncomingMessage {
    const m = rhea.message.decode(payload) as unknown as Message & Record<string, unknown>;
    const annotations = (m.message_annotations ?? {}) as Record<string, unknown>;
    const scheduled = timeOf(annotations['x-opt-scheduled-enqueue-time']);
    const ttl = typeof m.ttl === 'number' && m.ttl > 0 ? m.ttl : undefined;
    const str = (v: unknown) => (v === undefined || v === null ? undefined : messageId(v));
    return {
      payload,
      ...(ttl !== undefined ? { timeToLive: ttl } : {}),
      ...(scheduled !== undefined ? { scheduledEnqueueTime: scheduled } : {}),
      system: {
        MessageId: str(m.message_id),
        CorrelationId: str(m.correlation_id),
        To: str(m.to),
        ReplyTo: str(m.reply_to),
        Label: str(m.subject),
        SessionId: str(m.group_id),
        ReplyToSessionId: str(m.reply_to_group_id),
        ContentType: str(m.content_type),
        Size: payload.length,
        ...(ttl !== undefined ? { TimeToLive: ttl } : {}),
        ...(scheduled !== undefined ? { ScheduledEnqueueTimeUtc: new Date(scheduled) } : {}),
      },
      properties: (m.application_properties ?? {}) as Record<string, unknown>,
    };
  },
};

/** The sections of a received message re-encoded as one payload (a batch: each message of it). */
export function incomingPayloads(message: Message, format: number | undefined): Buffer[] {
  if (format !== BATCH_FORMAT) return [Buffer.from(rhea.message.encode(withMessageId(message)))];
  // rhea leaves a transfer of another message format undecoded.
  const outer = Buffer.isBuffer(message) ? (rhea.message.decode(message) as unknown as Message) : message;
  const body = outer.body as unknown;
  const sections = Array.isArray(body) ? body : [body];
  const out: Buffer[] = [];
  for (const section of sections) {
    const s = section as { typecode?: number; content?: unknown; multiple?: boolean };
    if (s?.typecode === 0x75 && Array.isArray(s.content)) for (const c of s.content) out.push(Buffer.from(c as Buffer));
    else if (s?.typecode === 0x75 && Buffer.isBuffer(s.content)) out.push(s.content);
    else if (Buffer.isBuffer(section)) out.push(section);
  }
  return out.map((p) => {
    const m = rhea.message.decode(p) as unknown as Message;
    return m.message_id === undefined || m.message_id === null ? Buffer.from(rhea.message.encode(withMessageId(m))) : p;
  });
}

/** Service Bus gives a message without an id one (32 hex digits), as the SDKs' lock renewal expects. */
function withMessageId(message: Message): Message {
  if (message.message_id !== undefined && message.message_id !== null) return message;
  return { ...message, message_id: randomUUID().replace(/-/g, '') };
}

/**
 * A stored message as Service Bus delivers it: the sent sections, application properties with
 * the overrides (propertiesToModify, DeadLetterReason/ErrorDescription), header delivery count,
 * and the broker annotations the SDK reads (x-opt-sequence-number, x-opt-enqueued-time,
 * x-opt-locked-until, x-opt-lock-token, x-opt-message-state, x-opt-deadletter-source).
 */
export function deliveryMessage(stored: StoredMessage, options: { omitBody?: boolean } = {}): Message {
  const m = rhea.message.decode(stored.payload) as unknown as Message;
  const annotations: Record<string, unknown> = { ...(m.message_annotations as Record<string, unknown> | undefined) };
  annotations['x-opt-sequence-number'] = types.wrap_long(stored.sequenceNumber);
  annotations['x-opt-enqueued-time'] = types.wrap_timestamp(stored.enqueuedTime);
  if (stored.lockedUntil !== undefined) annotations['x-opt-locked-until'] = types.wrap_timestamp(stored.lockedUntil);
  if (stored.lockToken !== undefined) annotations['x-opt-lock-token'] = types.wrap_uuid(Buffer.from(rhea.string_to_uuid(stored.lockToken)));
  if (stored.state !== 'active') annotations['x-opt-message-state'] = types.wrap_int(stored.state === 'deferred' ? 1 : 2);
  if (stored.deadLetterSource) annotations['x-opt-deadletter-source'] = stored.deadLetterSource;
  if (stored.scheduledEnqueueTime !== undefined) annotations['x-opt-scheduled-enqueue-time'] = types.wrap_timestamp(stored.scheduledEnqueueTime);
  m.message_annotations = annotations;
  if (Object.keys(stored.overrides).length) m.application_properties = { ...(m.application_properties as Record<string, unknown>), ...stored.overrides };
  m.delivery_count = stored.deliveryCount;
  if (options.omitBody) delete (m as { body?: unknown }).body;
  return m;
}
