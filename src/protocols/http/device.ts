import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors, HubError } from '../../core/errors.js';
import type { DeviceConnections } from '../../hub/connections/deviceConnections.js';
import type { CloudToDevice } from '../../hub/messaging/cloudToDevice.js';
import type { CloudToDeviceMessage } from '../../hub/messaging/cloudToDeviceMessage.js';
import { MAX_D2C_MESSAGE_BYTES, messageSize, type DeviceToCloudMessage, type Telemetry } from '../../hub/messaging/telemetry.js';
import { requireApiVersion } from './common.js';
import { authenticateDeviceRequest } from './deviceAuth.js';

type DeviceParams = { deviceId: string; moduleId?: string };
type LockParams = { deviceId: string; etag: string };

/** A batch (`application/vnd.microsoft.iothub.json`) is base64 JSON of up to 256 KB of messages. */
const BATCH_CONTENT_TYPE = 'application/vnd.microsoft.iothub.json';
/** Room for a full 256 KB batch in base64 plus its JSON; the decoded size is what is limited. */
const DEVICE_BODY_LIMIT = 512 * 1024;
/** IoT Hub's limit on message and correlation ids. */
const MAX_ID_LENGTH = 128;

/** The request headers (and batch property names) IoT Hub reads as system properties. */
const systemHeaders: Record<string, keyof DeviceToCloudMessage> = {
  'iothub-messageid': 'messageId',
  'iothub-correlationid': 'correlationId',
  'iothub-userid': 'userId',
  'iothub-to': 'to',
  'iothub-contenttype': 'contentType',
  'iothub-contentencoding': 'contentEncoding',
  'iothub-expiry': 'expiryTimeUtc',
};
const APP_PREFIX = 'iothub-app-';

/**
 * The device-facing HTTPS API (what azure-iot-device-http calls): telemetry, single and batched,
 * and cloud-to-device messages by polling, each settled by its lock token (the ETag). Every
 * request carries its own credential; the same Telemetry, CloudToDevice and DeviceConnections
 * services serve MQTT and AMQP. Device twins and direct methods are not offered over HTTPS by IoT
 * Hub either.
 */
export function deviceApi(telemetry: Telemetry, cloudToDevice: CloudToDevice, connections: DeviceConnections) {
  return async (app: FastifyInstance) => {
    // Telemetry bodies are any octets, whatever the Content-Type (the SDK sends none); only the
    // batch type is JSON. Encapsulated: the service API keeps its JSON parser.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: DEVICE_BODY_LIMIT }, (_req, body, done) => done(null, body));

    const events = async (req: FastifyRequest<{ Params: DeviceParams }>, reply: FastifyReply) => {
      requireApiVersion(req);
      const { deviceId, moduleId } = req.params;
      const identity = await authenticateDeviceRequest(connections, req, deviceId, moduleId, { modulesByToken: true });
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const messages = isBatch(req) ? parseBatch(body) : [messageOf(body, (name) => headerValue(req, name), headerNames(req))];
      // Everything is checked before anything is committed: a bad batch changes nothing.
      const total = messages.reduce((n, m) => n + messageSize(m), 0);
      if (messages.length > 1 && total > MAX_D2C_MESSAGE_BYTES) {
        throw new HubError('MessageTooLarge', `The batch's messages total ${total} bytes, over the limit of ${MAX_D2C_MESSAGE_BYTES} bytes`);
      }
      await Promise.all(messages.map((m) => telemetry.send(identity, m)));
      return reply.code(204).send();
    };
    app.post<{ Params: DeviceParams }>('/devices/:deviceId/messages/events', events);
    app.post<{ Params: DeviceParams }>('/devices/:deviceId/modules/:moduleId/messages/events', events);

    // The SDKs say `devicebound`, IoT Hub's REST reference `deviceBound`: both are served.
    for (const devicebound of ['devicebound', 'deviceBound']) {
      app.get<{ Params: DeviceParams }>(`/devices/:deviceId/messages/${devicebound}`, async (req, reply) => {
        requireApiVersion(req);
        const { deviceId } = req.params;
        await authenticateDeviceRequest(connections, req, deviceId);
        // Answered at once: the SDK polls on its own interval, there is no long poll.
        const received = await cloudToDevice.receive(deviceId);
        if (!received) return reply.code(204).send();
        writeMessageHeaders(reply, received.message, received.lockToken);
        return reply.code(200).type('application/octet-stream').send(received.message.body);
      });
      app.delete<{ Params: LockParams }>(`/devices/:deviceId/messages/${devicebound}/:etag`, async (req, reply) => {
        requireApiVersion(req);
        const { deviceId, etag } = req.params;
        await authenticateDeviceRequest(connections, req, deviceId);
        const reject = (req.query as Record<string, unknown>)['reject'] !== undefined;
        await cloudToDevice.settle(deviceId, lockTokenOf(etag), reject ? 'reject' : 'complete');
        return reply.code(204).send();
      });
      app.post<{ Params: LockParams }>(`/devices/:deviceId/messages/${devicebound}/:etag/abandon`, async (req, reply) => {
        requireApiVersion(req);
        const { deviceId, etag } = req.params;
        await authenticateDeviceRequest(connections, req, deviceId);
        await cloudToDevice.settle(deviceId, lockTokenOf(etag), 'abandon');
        return reply.code(204).send();
      });
    }
  };
}

function headerValue(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) throw errors.argument(`The header ${name} appears more than once`);
  return v;
}

function headerNames(req: FastifyRequest): string[] {
  return Object.keys(req.headers);
}

function isBatch(req: FastifyRequest): boolean {
  const type = req.headers['content-type'];
  return typeof type === 'string' && type.split(';')[0]!.trim().toLowerCase() === BATCH_CONTENT_TYPE;
}

/** One message from its body and its `iothub-*` properties (request headers, or a batch entry's properties). */
function messageOf(body: Buffer, get: (name: string) => string | undefined, names: string[]): DeviceToCloudMessage {
  const message: DeviceToCloudMessage = { body, properties: {} };
  for (const name of names) {
    const lower = name.toLowerCase();
    const value = get(name);
    if (value === undefined) continue;
    const system = systemHeaders[lower];
    if (system) {
      if ((system === 'messageId' || system === 'correlationId') && (value.length === 0 || value.length > MAX_ID_LENGTH)) {
        throw errors.argument(`${name} must be 1 to ${MAX_ID_LENGTH} characters`);
      }
      if (system === 'expiryTimeUtc' && Number.isNaN(Date.parse(value))) throw errors.argument(`${name} must be a date and time (ISO 8601)`);
      (message as unknown as Record<string, string>)[system] = system === 'expiryTimeUtc' ? new Date(value).toISOString() : value;
    } else if (lower.startsWith(APP_PREFIX)) {
      const key = name.slice(APP_PREFIX.length);
      if (key === '') throw errors.argument(`${name} names no application property`);
      message.properties[key] = value;
    }
  }
  return message;
}

/** `[{"body": base64, "base64Encoded"?: bool, "properties"?: {"iothub-app-k": "v", "iothub-messageid": …}}, …]` */
function parseBatch(raw: Buffer): DeviceToCloudMessage[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new HubError('IotHubFormatError', `The batch is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw errors.argument('A batch must be a non-empty JSON array of messages');
  return parsed.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw errors.argument(`Batch message ${i} must be an object`);
    const e = entry as { body?: unknown; base64Encoded?: unknown; properties?: unknown };
    if (typeof e.body !== 'string') throw errors.argument(`Batch message ${i} has no body string`);
    if (e.base64Encoded !== undefined && typeof e.base64Encoded !== 'boolean') throw errors.argument(`Batch message ${i}: base64Encoded must be true or false`);
    let body: Buffer;
    if (e.base64Encoded === false) body = Buffer.from(e.body, 'utf8');
    else {
      const text = e.body.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) throw errors.argument(`Batch message ${i}: the body is not base64`);
      body = Buffer.from(text, 'base64');
    }
    const props = e.properties ?? {};
    if (typeof props !== 'object' || props === null || Array.isArray(props)) throw errors.argument(`Batch message ${i}: properties must be an object`);
    for (const [k, v] of Object.entries(props)) {
      if (typeof v !== 'string') throw errors.argument(`Batch message ${i}: property ${k} must have a string value`);
    }
    const p = props as Record<string, string>;
    return messageOf(body, (name) => p[name], Object.keys(p));
  });
}

/** The ETag of a received message, with or without its quotes. */
function lockTokenOf(etag: string): string {
  return etag.replace(/^"(.*)"$/, '$1');
}

/** A cloud-to-device message's properties as IoT Hub's HTTPS endpoint returns them: `iothub-*` headers. */
function writeMessageHeaders(reply: FastifyReply, m: CloudToDeviceMessage, lockToken: string): void {
  const headers: [string, string | undefined][] = [
    ['etag', `"${lockToken}"`],
    ['iothub-messageid', m.messageId],
    ['iothub-sequencenumber', String(m.sequenceNumber)],
    ['iothub-to', `/devices/${m.deviceId}/messages/deviceBound`],
    ['iothub-expiry', new Date(m.expiryTime).toISOString()],
    ['iothub-enqueuedtime', new Date(m.enqueuedTime).toISOString()],
    // Earlier deliveries, as AMQP's delivery-count (0 on the first).
    ['iothub-deliverycount', String(m.deliveryCount - 1)],
    ['iothub-correlationid', m.correlationId],
    ['iothub-userid', m.userId],
    ['iothub-contenttype', m.contentType],
    ['iothub-contentencoding', m.contentEncoding],
    ['iothub-ack', m.ack === 'none' ? undefined : m.ack],
    ...Object.entries(m.properties).map(([k, v]): [string, string] => [APP_PREFIX + headerName(k), v]),
  ];
  for (const [name, value] of headers) if (value !== undefined) reply.header(name, headerSafe(value));
}

/** HTTP header names are tokens: other characters of a property name are percent-encoded. */
function headerName(name: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) ? name : encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Header values are visible ASCII: anything else (line breaks, non-ASCII) is percent-encoded. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}
