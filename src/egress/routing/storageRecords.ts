/**
 * What a storage endpoint writes: IoT Hub's record per message (EnqueuedTimeUtc, Properties,
 * SystemProperties, Body), as an Avro object container file (codec null or deflate) or as JSON,
 * one object per line. Pure: no storage calls.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import avro from 'avsc';
import { propertiesText, propertyText, type PropertyValue } from '../../store/eventLog.js';
import type { RoutedMessage } from '../../hub/routing/types.js';
import type { StorageEncoding } from '../../hub/routing/storageEndpoint.js';


/** IoT Hub's Avro schema for routed messages. */
export const MESSAGE_SCHEMA = {
  type: 'record',
  name: 'Message',
  namespace: 'Microsoft.Azure.Devices',
  fields: [
    { name: 'EnqueuedTimeUtc', type: 'string' },
    { name: 'Properties', type: { type: 'map', values: 'string' } },
    { name: 'SystemProperties', type: { type: 'map', values: 'string' } },
    { name: 'Body', type: ['null', 'bytes'] },
  ],
} as const;

const messageType = avro.Type.forSchema(MESSAGE_SCHEMA as unknown as avro.Schema);

/** IoT Hub's names for system properties in stored records (the rest keep their own). */
const SYSTEM_NAMES: Record<string, string> = {
  'message-id': 'messageId',
  'correlation-id': 'correlationId',
  'user-id': 'userId',
  'content-type': 'contentType',
  'content-encoding': 'contentEncoding',
  'absolute-expiry-time': 'expiryTimeUtc',
  'iothub-connection-device-id': 'connectionDeviceId',
  'iothub-connection-module-id': 'connectionModuleId',
  'iothub-connection-auth-method': 'connectionAuthMethod',
  'iothub-connection-auth-generation-id': 'connectionDeviceGenerationId',
  'iothub-enqueuedtime': 'enqueuedTime',
  'iothub-message-source': 'messageSource',
};

/** .NET's round-trip format, as IoT Hub writes times: seven fraction digits. */
function utcText(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

function systemProperties(props: Record<string, PropertyValue>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith('$')) continue;
    const text = k === 'iothub-enqueuedtime' && typeof v === 'string' && Number.isFinite(Date.parse(v)) ? utcText(Date.parse(v)) : propertyText(v);
    if (text !== undefined) out[SYSTEM_NAMES[k] ?? k] = text;
  }
  return out;
}

interface MessageRecord {
  EnqueuedTimeUtc: string;
  Properties: Record<string, string>;
  SystemProperties: Record<string, string>;
  Body: Buffer | null;
}

function record(m: RoutedMessage): MessageRecord {
  return { EnqueuedTimeUtc: utcText(m.enqueuedTime), Properties: propertiesText(m.properties), SystemProperties: systemProperties(m.systemProperties), Body: m.body };
}

/**
 * Records encoded per turn of the event loop. A batch holds up to 100,000 messages, 0.8-1 s of
 * encoding (Avro or JSON), and the hub's devices would wait for their PUBACKs meanwhile.
 */
export const ENCODE_SLICE = 1000;

/** An Avro object container file holding `messages` (readable by any Avro reader). */
async function avroFile(messages: RoutedMessage[], deflate: boolean): Promise<Buffer[]> {
  const encoder = new avro.streams.BlockEncoder(messageType as unknown as avro.Schema, { codec: deflate ? 'deflate' : 'null' });
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    encoder.on('data', (c: Buffer) => chunks.push(c));
    encoder.on('end', resolve);
    encoder.on('error', reject);
  });
  for (let i = 0; i < messages.length; i++) {
    encoder.write(record(messages[i]!));
    if ((i + 1) % ENCODE_SLICE === 0) await nextTurn();
  }
  encoder.end();
  await done;
  return chunks;
}

/**
 * One JSON object per line. As on IoT Hub, the body is JSON when the message says it is
 * (`content-type` application/json and `content-encoding` UTF-8, and it parses), base64 otherwise.
 */
async function jsonLines(messages: RoutedMessage[]): Promise<Buffer[]> {
  const slices: Buffer[] = [];
  for (let i = 0; i < messages.length; i += ENCODE_SLICE) {
    if (i > 0) await nextTurn();
    slices.push(Buffer.from(messages.slice(i, i + ENCODE_SLICE).map((m) => `${jsonLine(m)}\n`).join(''), 'utf8'));
  }
  return slices;
}

function jsonLine(m: RoutedMessage): string {
  const r = record(m);
  const type = propertyText(m.systemProperties['content-type'])?.toLowerCase() ?? '';
  const encoding = propertyText(m.systemProperties['content-encoding'])?.toLowerCase().replace('-', '') ?? '';
  let body: unknown = m.body.toString('base64');
  if (type.startsWith('application/json') && encoding === 'utf8') {
    try {
      body = JSON.parse(m.body.toString('utf8'));
    } catch {
      // not JSON after all: base64, as for any other body
    }
  }
  return JSON.stringify({ ...r, Body: body });
}

/**
 * The blob's content in the order written, in pieces: joining a batch's tens of megabytes into one
 * buffer held the event loop 40-200 ms, and the upload can read the pieces as they are.
 */
export async function encodeRecords(messages: RoutedMessage[], encoding: StorageEncoding): Promise<{ chunks: Buffer[]; contentType: string }> {
  if (encoding === 'json') return { chunks: await jsonLines(messages), contentType: 'application/json' };
  return { chunks: await avroFile(messages, encoding === 'avroDeflate'), contentType: 'application/octet-stream' };
}
