import type { LoggedEvent } from '../../../hub/eventhub/types.js';
import { BODY_SECTIONS } from './eventMessage.js';

/**
 * The AMQP encoding of an event as Event Hubs delivers it, written directly: the same bytes rhea
 * writes for `eventMessage(event)` (test/eventhub.encoding.test.ts compares them), without rhea's
 * typed wrappers, a Buffer per string and a 1 KiB writer per message. That was most of what
 * delivering an event cost the hub (bench:eventhub, replay).
 *
 * Only the common shape is written here: every system and application property a string (what
 * MQTT, HTTP and IoT Hub's own stamps give), the body one data section. Anything else (typed
 * values from AMQP senders, amqp-value bodies, group-sequence, x-opt-* keys of the sender's own)
 * returns undefined, and the caller encodes `eventMessage(event)` with rhea as before. `runtime`
 * adds the delivery annotations of a receiver that tracks the last enqueued event.
 */
export function encodeEvent(event: LoggedEvent, runtime?: RuntimeInfo): Buffer | undefined {
  if (!plain(event)) return undefined;
  const w = scratch;
  w.at = 0;
  // header: rhea always writes it, empty.
  w.bytes(0x00, 0x53, 0x70, 0x45);

  // delivery-annotations: the partition's last enqueued event, for receivers that track it.
  if (runtime) {
    w.bytes(0x00, 0x53, 0x71);
    const map = w.open(0xd1);
    w.symbol('last_enqueued_sequence_number');
    w.long(runtime.lastSequenceNumber);
    w.symbol('last_enqueued_offset');
    w.string(runtime.lastOffset);
    w.symbol('last_enqueued_time_utc');
    w.timestamp(runtime.lastEnqueuedTime);
    w.symbol('runtime_info_retrieval_time_utc');
    w.timestamp(runtime.retrievedAt);
    w.close(map, 8);
  }

  // message-annotations: IoT Hub's system properties that are not AMQP properties, then Event Hubs' positions.
  w.bytes(0x00, 0x53, 0x72);
  const annotations = w.open(0xd1);
  let count = 0;
  const system = event.systemProperties as Record<string, string>;
  for (const k in system) {
    if (propertyIndex[k] !== undefined) continue;
    const v = system[k]!;
    w.symbol(k);
    if (k === 'iothub-enqueuedtime') {
      const t = Date.parse(v);
      if (Number.isFinite(t)) w.timestamp(t);
      else w.string(v);
    } else w.string(v);
    count += 2;
  }
  w.symbol('x-opt-sequence-number');
  w.long(event.sequenceNumber);
  w.symbol('x-opt-offset');
  w.string(event.offset);
  w.symbol('x-opt-enqueued-time');
  w.timestamp(event.enqueuedTime);
  count += 6;
  const deviceId = system['iothub-connection-device-id'];
  if (deviceId !== undefined) {
    w.symbol('x-opt-partition-key');
    w.string(deviceId);
    count += 2;
  }
  w.close(annotations, count);

  // properties: the fields present, in the list's order, nulls between, none after the last.
  const fields: (string | number | undefined)[] = [];
  let last = -1;
  for (const k in system) {
    const i = propertyIndex[k];
    if (i === undefined) continue;
    let v: string | number | undefined = system[k]!;
    if (i === EXPIRY || i === CREATION) {
      v = Date.parse(v);
      if (!Number.isFinite(v)) continue;
    }
    fields[i] = v;
    if (i > last) last = i;
  }
  w.bytes(0x00, 0x53, 0x73);
  if (last < 0) w.bytes(0x45);
  else {
    const list = w.open(0xd0);
    for (let i = 0; i <= last; i++) {
      const v = fields[i];
      if (v === undefined) w.bytes(0x40);
      else if (i === USER_ID) w.binary(Buffer.from(v as string, 'utf8'));
      else if (i === CONTENT_TYPE || i === CONTENT_ENCODING) w.symbol(v as string);
      else if (i === EXPIRY || i === CREATION) w.timestamp(v as number);
      else w.string(v as string);
    }
    w.close(list, last + 1);
  }

  // application-properties, string keys and values.
  w.bytes(0x00, 0x53, 0x74);
  const application = w.open(0xd1);
  count = 0;
  const props = event.properties as Record<string, string>;
  for (const k in props) {
    w.string(k);
    w.string(props[k]!);
    count += 2;
  }
  w.close(application, count);

  // body: one data section.
  w.bytes(0x00, 0x53, 0x75);
  w.binary(event.body);
  return w.take();
}

/** Event Hubs' runtime metric of a partition (com.microsoft:enable-receiver-runtime-metric), sent with each event. */
export interface RuntimeInfo {
  lastSequenceNumber: number;
  lastOffset: string;
  lastEnqueuedTime: number;
  retrievedAt: number;
}

/** The AMQP properties-section fields by the log's names, as their index in the list. */
const propertyIndex: Record<string, number | undefined> = Object.assign(Object.create(null) as Record<string, number>, {
  'message-id': 0,
  'user-id': 1,
  to: 2,
  subject: 3,
  'reply-to': 4,
  'correlation-id': 5,
  'content-type': 6,
  'content-encoding': 7,
  'absolute-expiry-time': 8,
  'creation-time': 9,
  'group-id': 10,
  'reply-to-group-id': 12,
});
const USER_ID = 1;
const CONTENT_TYPE = 6;
const CONTENT_ENCODING = 7;
const EXPIRY = 8;
const CREATION = 9;

function plain(event: LoggedEvent): boolean {
  const system = event.systemProperties;
  for (const k in system) {
    if (typeof system[k] !== 'string') return false;
    // group-sequence is a uint, BODY_SECTIONS a flag, and a sender's own x-opt-* keys would take
    // the place of the positions: rhea's path handles those as eventMessage says.
    if (k === 'group-sequence' || k === BODY_SECTIONS || k.startsWith('x-opt-')) return false;
  }
  const props = event.properties;
  for (const k in props) if (typeof props[k] !== 'string') return false;
  return true;
}

/** A growing buffer written front to back, compound sizes filled in when they close. */
class Writer {
  buffer = Buffer.allocUnsafe(64 * 1024);
  at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + n));
    this.buffer.copy(bigger, 0, 0, this.at);
    this.buffer = bigger;
  }

  bytes(...b: number[]): void {
    this.room(b.length);
    for (const x of b) this.buffer[this.at++] = x;
  }

  /** Opens a map32 or list32: returns where its size goes. */
  open(code: 0xd0 | 0xd1): number {
    this.room(9);
    this.buffer[this.at++] = code;
    const sizeAt = this.at;
    this.at += 8;
    return sizeAt;
  }

  close(sizeAt: number, count: number): void {
    this.buffer.writeUInt32BE(this.at - sizeAt - 4, sizeAt);
    this.buffer.writeUInt32BE(count, sizeAt + 4);
  }

  /**
   * str8 / str32, or sym8 / sym32, as rhea writes them: strings in UTF-8; symbols (ASCII in AMQP)
   * as each char's low byte ('latin1', what Node's 'ascii' writes). rhea picks the 8- or 32-bit
   * form by the UTF-8 length, for symbols too: a symbol of 160 chars that are not ASCII is a sym32
   * of 160 bytes.
   */
  private text(s: string, small: number, big: number, encoding: 'utf8' | 'latin1'): void {
    const n = s.length;
    if (n <= 255) {
      // Short ASCII (names, ids, times: nearly every string of an event) is copied char by char,
      // half the cost of Buffer.byteLength and buffer.write, each a call into C++ (bench:soak's
      // hub spent ~5% of its CPU here). At the first other char, the general case below.
      this.room(n + 2);
      const buffer = this.buffer;
      const start = this.at + 2;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buffer[start + i] = c;
      }
      if (i === n) {
        buffer[this.at] = small;
        buffer[this.at + 1] = n;
        this.at = start + n;
        return;
      }
    }
    const utf8 = Buffer.byteLength(s, 'utf8');
    const length = encoding === 'utf8' ? utf8 : n;
    this.room(length + 5);
    if (utf8 > 255) {
      this.buffer[this.at] = big;
      this.buffer.writeUInt32BE(length, this.at + 1);
      this.at += 5;
    } else {
      this.buffer[this.at] = small;
      this.buffer[this.at + 1] = length;
      this.at += 2;
    }
    this.at += this.buffer.write(s, this.at, length, encoding);
  }

  string(s: string): void {
    this.text(s, 0xa1, 0xb1, 'utf8');
  }

  symbol(s: string): void {
    this.text(s, 0xa3, 0xb3, 'latin1');
  }

  binary(b: Buffer): void {
    this.room(b.length + 5);
    if (b.length > 255) {
      this.buffer[this.at] = 0xb0;
      this.buffer.writeUInt32BE(b.length, this.at + 1);
      this.at += 5;
    } else {
      this.buffer[this.at] = 0xa0;
      this.buffer[this.at + 1] = b.length;
      this.at += 2;
    }
    this.at += b.copy(this.buffer, this.at);
  }

  timestamp(ms: number): void {
    this.room(9);
    this.buffer[this.at] = 0x83;
    this.int64(ms, this.at + 1);
    this.at += 9;
  }

  private int64(n: number, at: number): void {
    if (n >= 0 && Number.isSafeInteger(n)) {
      const high = Math.floor(n / 0x1_0000_0000);
      this.buffer.writeUInt32BE(high, at);
      this.buffer.writeUInt32BE(n - high * 0x1_0000_0000, at + 4);
    } else this.buffer.writeBigInt64BE(BigInt(n), at);
  }

  /** smalllong when it fits a byte, as rhea's wrap_long does. */
  long(n: number): void {
    this.room(9);
    if (n >= -128 && n <= 127) {
      this.buffer[this.at] = 0x55;
      this.buffer.writeInt8(n, this.at + 1);
      this.at += 2;
    } else {
      this.buffer[this.at] = 0x81;
      this.int64(n, this.at + 1);
      this.at += 9;
    }
  }

  /** The bytes written, as a buffer of their own (the scratch is reused). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.at);
    this.buffer.copy(out, 0, 0, this.at);
    return out;
  }
}

const scratch = new Writer();
