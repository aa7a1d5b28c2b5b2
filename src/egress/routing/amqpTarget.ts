/**
 * Where an Event Hubs or Service Bus endpoint sends, and the AMQP message IoT Hub sends there.
 */
import WebSocket from 'ws';
// The rhea the SDKs encode with (not the hub's own, older one): typed values must be its Typed.
import { types, string_to_uuid } from 'rhea-promise';
import type { AmqpAnnotatedMessage } from '@azure/core-amqp';
import type { TokenCredential } from '@azure/core-auth';
import type { EndpointSettings, RoutedMessage, SinkContext } from '../../hub/routing/types.js';
import { SinkError } from '../../hub/routing/types.js';
import { propertyText, type PropertyValue } from '../../store/eventLog.js';
import { egressTrustedCas } from '../tls.js';

export type AmqpTarget =
  | { kind: 'key'; connectionString: string; host: string; entityPath: string }
  | { kind: 'identity'; host: string; entityPath: string; credential: TokenCredential };

/** Azure's Service Bus / Event Hubs domains: their certificates chain to the system's CAs. */
const AZURE_NAMESPACE = /\.servicebus\.(windows\.net|chinacloudapi\.cn|usgovcloudapi\.net|cloudapi\.de)$/i;

function connectionStringPart(connectionString: string, name: string): string | undefined {
  for (const part of connectionString.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim().toLowerCase() === name.toLowerCase()) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The event hub, queue or topic the endpoint names (for messages), or its own name. */
export function entityNameOf(endpoint: EndpointSettings, context: SinkContext): string {
  const cs = context.credential.kind === 'key' ? context.credential.connectionString || endpoint.connectionString || '' : '';
  return (cs && connectionStringPart(cs, 'EntityPath')) || endpoint.entityPath || endpoint.name;
}

/** The endpoint's target: its connection string (with EntityPath), or endpointUri + entityPath + the hub's identity. */
export function amqpTarget(endpoint: EndpointSettings, context: SinkContext): AmqpTarget {
  const c = context.credential;
  if (c.kind === 'key') {
    const cs = c.connectionString || endpoint.connectionString || '';
    const entityPath = connectionStringPart(cs, 'EntityPath') ?? endpoint.entityPath;
    const host = /^[a-z]+:\/\/([^/:;]+)/i.exec(connectionStringPart(cs, 'Endpoint') ?? '')?.[1];
    if (!host) throw new SinkError('invalid', `Endpoint '${endpoint.name}': the connection string names no Endpoint`);
    if (!entityPath) throw new SinkError('invalid', `Endpoint '${endpoint.name}': the connection string names no EntityPath`);
    return { kind: 'key', connectionString: cs, host, entityPath };
  }
  const host = /^(?:[a-z]+:\/\/)?([^/:]+)/i.exec(endpoint.endpointUri ?? '')?.[1];
  if (!host) throw new SinkError('invalid', `Endpoint '${endpoint.name}': identityBased needs an endpointUri (sb://{namespace}.servicebus.windows.net)`);
  if (!endpoint.entityPath) throw new SinkError('invalid', `Endpoint '${endpoint.name}': identityBased needs an entityPath`);
  return { kind: 'identity', host, entityPath: endpoint.entityPath, credential: c.credential as TokenCredential };
}

/**
 * Client options for the target. Azure's namespaces: AMQP over TLS on 5671, trusting the
 * system's CAs (the SDK's default). Anything else (another Fleethub's namespaces): AMQP over
 * WebSocket on 443, whose TLS can be told to trust Fleethub's CA as well (the SDKs' AMQP/TLS
 * transport takes no CA option). The emulator's plain connection strings stay as they are.
 */
export function amqpClientOptions(
  target: AmqpTarget,
  caPem: string,
  webSocketPort = 443,
): { retryOptions: { maxRetries: number; timeoutInMs: number }; webSocketOptions?: { webSocket: unknown; webSocketConstructorOptions: unknown }; customEndpointAddress?: string } {
  // The router retries a failed delivery (with its own backoff and health): none here.
  const retryOptions = { maxRetries: 0, timeoutInMs: 30_000 };
  const emulator = target.kind === 'key' && /usedevelopmentemulator\s*=\s*true/i.test(target.connectionString);
  if (emulator || AZURE_NAMESPACE.test(target.host)) return { retryOptions };
  // The SDKs open the WebSocket on the connection string's port (Fleethub's AMQP port when it is not
  // 5671), or 443: the custom endpoint address points it at the HTTPS listener instead, while the AMQP
  // open frame keeps naming the namespace's host (which selects the namespace).
  return {
    retryOptions,
    webSocketOptions: { webSocket: WebSocket, webSocketConstructorOptions: { ca: egressTrustedCas(caPem) } },
    customEndpointAddress: `https://${target.host}:${webSocketPort}`,
  };
}

/** The AMQP properties section's fields the SDKs send, by the names routed messages keep them under. */
const PROPERTY_FIELDS: Record<string, 'messageId' | 'correlationId' | 'contentType' | 'contentEncoding' | 'to' | 'subject' | 'replyTo' | 'groupId' | 'replyToGroupId'> = {
  'message-id': 'messageId',
  'correlation-id': 'correlationId',
  'content-type': 'contentType',
  'content-encoding': 'contentEncoding',
  to: 'to',
  subject: 'subject',
  'reply-to': 'replyTo',
  'group-id': 'groupId',
  'reply-to-group-id': 'replyToGroupId',
};

/** System properties IoT Hub sends as AMQP timestamps. */
const TIMESTAMPS = new Set(['iothub-enqueuedtime']);

/** A property value as the SDKs' rhea encodes it, with the AMQP type it was received with. */
function toAmqp(v: PropertyValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') return v;
  if (v instanceof Date) return types.wrap_timestamp(v.getTime());
  if (Buffer.isBuffer(v)) return types.wrap_binary(v);
  const n = Number(v.value);
  // 64-bit values beyond 2^53 are kept as decimal text: 8 big-endian bytes, as rhea takes them.
  const big = (signed: boolean) => {
    if (typeof v.value === 'number') return v.value;
    const b = Buffer.alloc(8);
    if (signed) b.writeBigInt64BE(BigInt(v.value));
    else b.writeBigUInt64BE(BigInt(v.value));
    return b as unknown as number;
  };
  switch (v.type) {
    case 'byte':
      return types.wrap_byte(n);
    case 'short':
      return types.wrap_short(n);
    case 'int':
      return types.wrap_int(n);
    case 'long':
      return types.wrap_long(big(true));
    case 'ubyte':
      return types.wrap_ubyte(n);
    case 'ushort':
      return types.wrap_ushort(n);
    case 'uint':
      return types.wrap_uint(n);
    case 'ulong':
      return types.wrap_ulong(big(false));
    case 'float':
      return types.wrap_float(n);
    case 'double':
      return types.wrap_double(n);
    case 'uuid':
      return types.wrap_uuid(Buffer.from(string_to_uuid(String(v.value))));
    case 'symbol':
      return types.wrap_symbol(String(v.value));
    default:
      return String(v.value);
  }
}

function systemValue(key: string, v: PropertyValue): unknown {
  if (TIMESTAMPS.has(key) && typeof v === 'string') {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return types.wrap_timestamp(t);
  }
  return toAmqp(v);
}

/**
 * A routed message as IoT Hub sends it to an Event Hub or a Service Bus entity: the body as one
 * data section, application properties with their types, message id, correlation id, content
 * type and encoding in the properties section, and IoT Hub's other system properties
 * (`iothub-connection-device-id`, `iothub-enqueuedtime`, `iothub-message-source`, …) as message
 * annotations (Event Hubs) or application properties (Service Bus).
 */
export function amqpMessage(m: RoutedMessage, systemAs: 'annotations' | 'applicationProperties'): AmqpAnnotatedMessage {
  const applicationProperties: Record<string, unknown> = {};
  const messageAnnotations: Record<string, unknown> = {};
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.properties)) applicationProperties[k] = toAmqp(v);
  for (const [k, v] of Object.entries(m.systemProperties)) {
    // `$…`: the log's own markers, not properties. `user-id`: the SDKs do not send it.
    if (k.startsWith('$') || k === 'user-id' || v === null) continue;
    const field = PROPERTY_FIELDS[k];
    if (field) {
      const text = propertyText(v);
      if (text !== undefined) properties[field] = text;
      continue;
    }
    if (k === 'absolute-expiry-time') continue;
    if (systemAs === 'annotations') messageAnnotations[k] = systemValue(k, v);
    else if (applicationProperties[k] === undefined) applicationProperties[k] = systemValue(k, v);
  }
  return { body: m.body, bodyType: 'data', applicationProperties: applicationProperties as never, messageAnnotations: messageAnnotations as never, properties: properties as never };
}

/** The device a routed message is about (Event Hubs' partition key, as IoT Hub sends it). */
export function deviceIdOf(m: RoutedMessage): string | undefined {
  return propertyText(m.systemProperties['iothub-connection-device-id'] ?? m.properties['deviceId'] ?? undefined);
}
