import rhea, { type Message } from 'rhea';

/** The body of an AMQP message as bytes, whichever section it came in. */
export function messageBody(message: Message): Buffer {
  const body = message.body as unknown;
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  const section = body as { typecode?: number; content?: unknown };
  if (section.typecode === 0x75 && Buffer.isBuffer(section.content)) return section.content;
  if (section.typecode === 0x75 && Array.isArray(section.content)) return Buffer.concat(section.content as Buffer[]);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/** A message or correlation id as text (the SDKs send UUIDs as AMQP uuid). */
export function messageId(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id) && id.length === 16) return rhea.uuid_to_string(id);
  return String(id);
}

/** Application properties as strings, as IoT Hub keeps them. */
export function stringProperties(props: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null) continue;
    out[k] = v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}
