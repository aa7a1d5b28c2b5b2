import mqttPacket, { type Packet } from 'mqtt-packet';

/**
 * Decodes one MQTT 3.1.1 packet handed over whole (MqttSession frames what it reads itself, and
 * decodes complete PUBLISHes on its own) with mqtt-packet's parser and its checks, one parser for
 * the process instead of one per connection: a parser is an EventEmitter holding a buffer-list
 * stream, held by every connection for the few packets (CONNECT, SUBSCRIBE, PINGREQ, …) that are
 * not on the hot path; without them, bench:connect's 10,000 connections took ~3 KiB and ~100 µs
 * of CPU less each.
 *
 * The parser emits synchronously inside `parse`; the packet (or error) is taken from it and
 * returned, so that nothing of the connection runs inside the parser. It is only ever given
 * exactly one packet (checked here against the packet's remaining length), and after anything
 * but a clean decode it is replaced: mqtt-packet's own recovery on the next `parse` after an error
 * is not to be relied on (after an 'Invalid protocolId' it lost the next packet), and nothing of
 * one connection's packet may carry over to another's.
 */
let parser = makeParser();
let decoded: Packet | undefined;
let failure: Error | undefined;

function makeParser(): ReturnType<typeof mqttPacket.parser> {
  const p = mqttPacket.parser({ protocolVersion: 4 });
  p.on('packet', (packet: Packet) => (decoded = packet));
  p.on('error', (e: Error) => (failure = e));
  return p;
}

/** The packet in `bytes` (exactly one whole packet: fixed header, remaining length and body), or why it is malformed. */
export function decodeWholePacket(bytes: Buffer): Packet | Error {
  const length = wholeLength(bytes);
  if (length === undefined || length > bytes.length) return new Error('the packet ends early');
  if (length < bytes.length) return new Error('bytes after the end of the packet');
  decoded = undefined;
  failure = undefined;
  const left = parser.parse(bytes);
  const packet = decoded;
  const error = failure;
  decoded = failure = undefined;
  if (packet && !error && left === 0) return packet;
  parser = makeParser();
  return error ?? new Error('the packet ends early');
}

/**
 * The length of the packet `bytes` starts with (fixed header included), from its remaining length
 * (decoded as MqttSession.onData frames packets); undefined if the header is incomplete or malformed.
 */
function wholeLength(bytes: Buffer): number | undefined {
  let length = 0;
  let shift = 1;
  for (let i = 1; i < bytes.length && i < 5; i++) {
    const b = bytes[i]!;
    length += (b & 0x7f) * shift;
    shift *= 128;
    if ((b & 0x80) === 0) return i + 1 + length;
  }
  return undefined;
}
