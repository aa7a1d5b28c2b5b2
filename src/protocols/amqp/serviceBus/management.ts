import rhea, { type Message } from 'rhea';
import { ServiceBusError } from '../../../namespaces/serviceBus/errors.js';
import type { ServiceBusNamespaces, Settlement } from '../../../namespaces/serviceBus/namespaces.js';
import type { LinkRoute } from '../link.js';
import { requestResponseNode, type Reply } from '../requestResponse.js';
import { deliveryMessage } from './codec.js';
import type { ServiceBusConnections } from './connection.js';
import { entityAddress, serviceBusAmqpError } from './links.js';

const { types } = rhea;

/** A long as the SDK sends it (8-byte big-endian buffer, or a number once decoded). */
function long(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v) && v.length === 8) return Number(v.readBigInt64BE(0));
  if (v && typeof v === 'object' && 'value' in v) return long((v as { value: unknown }).value);
  throw new ServiceBusError('InvalidArgument', `Expected a long, got ${String(v)}.`);
}

function list(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v && typeof v === 'object' && Array.isArray((v as { value?: unknown }).value)) return (v as { value: unknown[] }).value;
  throw new ServiceBusError('InvalidArgument', 'Expected a list.');
}

function uuid(v: unknown): string {
  if (Buffer.isBuffer(v) && v.length === 16) return rhea.uuid_to_string(v);
  if (typeof v === 'string') return v;
  throw new ServiceBusError('InvalidArgument', 'Expected a lock token (uuid).');
}

function ok(body: unknown, statusCode = 200): Reply {
  return { statusCode, statusDescription: statusCode === 204 ? 'No Content' : 'OK', body, applicationProperties: { statusCode, statusDescription: 'OK' } };
}

/**
 * The entity's `$management` node, with the operations @azure/service-bus sends: peek-message,
 * renew-lock, receive-by-sequence-number, update-disposition (deferred messages),
 * schedule-message and cancel-scheduled-message. Answers carry statusCode as Service Bus's do;
 * failures carry its error-condition so the SDK raises the same error codes.
 */
export function serviceBusManagementRoutes(namespaces: ServiceBusNamespaces, connections: ServiceBusConnections): LinkRoute[] {
  const routes = requestResponseNode(/^(.+)\/\$management$/i, async (connection, request: Message): Promise<Reply> => {
    const namespace = connections.namespaceOf(connection)!;
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    const body = (request.body ?? {}) as Record<string, unknown>;
    try {
      const path = managementEntity.get(request) ?? '';
      switch (props.operation) {
        case 'com.microsoft:peek-message': {
          await connections.authorizeNow(connection, 'Listen', path);
          const entity = namespaces.receivable(namespace, path);
          const from = long(body['from-sequence-number']);
          const count = Number(body['message-count'] ?? 1);
          const found = namespaces.peek(entity, from, Math.max(1, Math.min(count, 1000)));
          if (!found.length) return { statusCode: 204, statusDescription: 'No messages', applicationProperties: { statusCode: 204, 'error-condition': 'com.microsoft:message-not-found' } };
          const omitBody = body['omit-message-body'] === true;
          return ok({ messages: found.map((m) => ({ message: rhea.message.encode(deliveryMessage({ ...m, lockToken: undefined, lockedUntil: undefined } as never, { omitBody })) })) });
        }
        case 'com.microsoft:renew-lock': {
          await connections.authorizeNow(connection, 'Listen', path);
          namespaces.receivable(namespace, path);
          const expirations = list(body['lock-tokens']).map((t) => namespaces.renewLock(namespace, uuid(t)));
          return ok({ expirations: types.wrap_array(expirations, 0x83, undefined) });
        }
        case 'com.microsoft:receive-by-sequence-number': {
          await connections.authorizeNow(connection, 'Listen', path);
          const entity = namespaces.receivable(namespace, path);
          const mode = Number(body['receiver-settle-mode'] ?? 1) === 0 ? 'receiveAndDelete' : 'peekLock';
          const found = namespaces.receiveDeferred(entity, list(body['sequence-numbers']).map(long), mode);
          return ok({
            messages: found.map((m) => ({
              message: rhea.message.encode(deliveryMessage(m)),
              ...(m.lockToken ? { 'lock-token': types.wrap_uuid(Buffer.from(rhea.string_to_uuid(m.lockToken))) } : {}),
            })),
          });
        }
        case 'com.microsoft:update-disposition': {
          await connections.authorizeNow(connection, 'Listen', path);
          namespaces.receivable(namespace, path);
          const status = String(body['disposition-status']);
          const properties = body['properties-to-modify'] as Record<string, unknown> | undefined;
          const settlement: Settlement | undefined =
            status === 'completed'
              ? { outcome: 'complete' }
              : status === 'abandoned'
                ? { outcome: 'abandon', ...(properties ? { properties } : {}) }
                : status === 'defered'
                  ? { outcome: 'defer', ...(properties ? { properties } : {}) }
                  : status === 'suspended'
                    ? {
                        outcome: 'deadLetter',
                        ...(body['deadletter-reason'] !== undefined ? { reason: String(body['deadletter-reason']) } : {}),
                        ...(body['deadletter-description'] !== undefined ? { description: String(body['deadletter-description']) } : {}),
                        ...(properties ? { properties } : {}),
                      }
                    : undefined;
          if (!settlement) throw new ServiceBusError('InvalidArgument', `Unknown disposition-status '${status}'.`);
          for (const t of list(body['lock-tokens'])) namespaces.settle(namespace, uuid(t), settlement);
          return ok(undefined);
        }
        case 'com.microsoft:schedule-message': {
          await connections.authorizeNow(connection, 'Send', path);
          const target = namespaces.sendTarget(namespace, path);
          const payloads = list(body.messages).map((entry) => {
            const e = (entry && typeof entry === 'object' && 'value' in (entry as object) && !Buffer.isBuffer(entry) ? mapValue(entry) : entry) as Record<string, unknown>;
            if (!Buffer.isBuffer(e.message)) throw new ServiceBusError('InvalidArgument', "Each scheduled message needs 'message' (an encoded AMQP message).");
            return e.message;
          });
          const sequenceNumbers = namespaces.schedule(namespace, target, payloads);
          return ok({ 'sequence-numbers': types.wrap_array(sequenceNumbers, 0x81, undefined) });
        }
        case 'com.microsoft:cancel-scheduled-message': {
          await connections.authorizeNow(connection, 'Send', path);
          const target = namespaces.sendTarget(namespace, path);
          namespaces.cancelScheduled(namespace, target, list(body['sequence-numbers']).map(long));
          return ok(undefined);
        }
        case 'com.microsoft:renew-session-lock':
        case 'com.microsoft:set-session-state':
        case 'com.microsoft:get-session-state':
        case 'com.microsoft:get-message-sessions':
          throw new ServiceBusError('SessionsNotSupported', 'Sessions are not supported by Fleethub.');
        case 'com.microsoft:add-rule':
        case 'com.microsoft:remove-rule':
        case 'com.microsoft:enumerate-rules':
          throw new ServiceBusError('NotImplemented', `'${String(props.operation)}' is not supported by Fleethub yet; manage rules through the namespace configuration.`);
        default:
          throw new ServiceBusError('NotImplemented', `Unknown operation '${String(props.operation)}'.`);
      }
    } catch (e) {
      const { condition, description, status } = serviceBusAmqpError(e);
      if (status === 500) connection.logger.warn({ err: e }, 'Service Bus $management request failed');
      return { statusCode: status, statusDescription: description, applicationProperties: { statusCode: status, statusDescription: description, 'error-condition': condition } };
    }
  });
  return routes.map((r) => ({
    ...r,
    accepts: (c) => connections.namespaceOf(c) !== undefined,
    open: (link, match) => {
      // The request messages carry no address; the entity is the node's (the link's target).
      const entity = match[1] ? entityAddress(match[1]) : '';
      if (r.role === 'receive') {
        link.link.on('message', (context: { message?: Message }) => {
          if (context.message) managementEntity.set(context.message, entity);
        });
      }
      return r.open(link, match);
    },
  }));
}

/** The entity of each request, by the link it came on (set before the node's handler runs). */
const managementEntity = new WeakMap<Message, string>();

function mapValue(entry: unknown): Record<string, unknown> {
  const v = (entry as { value: unknown[] }).value;
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < v.length; i += 2) out[String((v[i] as { value?: unknown })?.value ?? v[i])] = (v[i + 1] as { value?: unknown })?.value ?? v[i + 1];
  return out;
}
