import rhea, { type Message } from 'rhea';

const RAW = Symbol('fleethub.rawMessage');

/**
 * rhea decodes every incoming message (format 0) and drops its bytes, and its decoding loses
 * property types (timestamps become numbers, every integer type `number`). Event Hubs keeps the
 * types, so the bytes are kept beside each decoded message (a non-enumerable symbol property)
 * by wrapping rhea's decoder once.
 */
const messageModule = (rhea as unknown as { message: { decode(b: Buffer): Message; [RAW]?: true } }).message;
if (!messageModule[RAW]) {
  const decode = messageModule.decode.bind(messageModule);
  messageModule.decode = (buffer: Buffer) => {
    const m = decode(buffer);
    Object.defineProperty(m, RAW, { value: buffer, enumerable: false });
    return m;
  };
  messageModule[RAW] = true;
}

/** The bytes a received message was decoded from, when rhea decoded it. */
export function rawMessageBytes(message: Message | undefined): Buffer | undefined {
  return (message as unknown as { [RAW]?: Buffer } | undefined)?.[RAW];
}
