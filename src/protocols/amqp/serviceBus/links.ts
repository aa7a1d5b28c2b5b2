import rhea, { type Delivery, type Receiver, type Sender } from 'rhea';
import { ServiceBusError, type ServiceBusErrorCode } from '../../../namespaces/serviceBus/errors.js';
import { MAX_MESSAGE_BYTES, type ReceivableEntity, type ServiceBusNamespaces, type Settlement } from '../../../namespaces/serviceBus/namespaces.js';
import type { AmqpError } from '../errors.js';
import type { ClientConnection, IncomingLink, LinkRoute } from '../link.js';


/** rhea's outcome constructors (untyped in its typings). */
interface Outcomes {
  accepted(): { described(): unknown };
  rejected(fields: { error: AmqpError }): { described(): unknown };
}
import { deliveryMessage, incomingPayloads, lockTokenFromTag, lockTokenTag } from './codec.js';
import type { ServiceBusConnections } from './connection.js';

const conditions: Record<ServiceBusErrorCode, [condition: string, status: number]> = {
  MessagingEntityNotFound: ['amqp:not-found', 404],
  MessagingEntityAlreadyExists: ['com.microsoft:entity-already-exists', 409],
  Unauthorized: ['amqp:unauthorized-access', 401],
  MessageLockLost: ['com.microsoft:message-lock-lost', 410],
  MessageNotFound: ['com.microsoft:message-not-found', 404],
  InvalidArgument: ['com.microsoft:argument-error', 400],
  MessageSizeExceeded: ['amqp:link:message-size-exceeded', 413],
  QuotaExceeded: ['amqp:resource-limit-exceeded', 403],
  NotImplemented: ['amqp:not-implemented', 501],
  SessionsNotSupported: ['amqp:not-implemented', 501],
};

/** Service Bus's AMQP error for a failure (its condition), and the $management status code. */
export function serviceBusAmqpError(e: unknown): AmqpError & { status: number } {
  if (e instanceof ServiceBusError) {
    const [condition, status] = conditions[e.code];
    return { condition, description: e.message, status };
  }
  return { condition: 'amqp:internal-error', description: 'Internal error', status: 500 };
}

/** An entity address as the SDK writes it (`queue`, `topic/Subscriptions/sub/$DeadLetterQueue`, maybe as a full amqps:// URL). */
export function entityAddress(address: string): string {
  return address.replace(/^[a-z]+:\/\/[^/]+/i, '').replace(/^\/+|\/+$/g, '');
}

/** Closes the link with the error; returns undefined so callers can `return refuse(...)`. */
function refuse(link: Sender | Receiver, e: unknown): undefined {
  const { condition, description } = serviceBusAmqpError(e);
  if (!link.is_closed()) link.close({ condition, description });
  return undefined;
}

/** Links on which clients send to a queue or topic (the hub receives): each delivery accepted once committed. */
export function serviceBusSendRoute(namespaces: ServiceBusNamespaces, connections: ServiceBusConnections): LinkRoute {
  return {
    role: 'receive',
    address: /^(?!.*\$(?:cbs|management)$).+$/i,
    accepts: (c) => connections.namespaceOf(c) !== undefined,
    async open({ connection, link, address }: IncomingLink<Receiver>) {
      link.set_source(link.source);
      link.set_target(link.target);
      (link as unknown as { local: { attach: Record<string, unknown> } }).local.attach.max_message_size = MAX_MESSAGE_BYTES;
      const namespace = connections.namespaceOf(connection)!;
      const path = entityAddress(address);
      let target: { kind: 'queue' | 'topic'; path: string };
      const holder = { expire: (why: string) => refuse(link, new ServiceBusError('Unauthorized', why)) };
      try {
        await connections.authorizeNow(connection, 'Send', path, holder);
        target = namespaces.sendTarget(namespace, path);
      } catch (e) {
        connections.release(connection, holder);
        return refuse(link, e);
      }
      if (!link.is_open()) return connections.release(connection, holder);
      const release = () => connections.release(connection, holder);
      link.on('receiver_close', release);
      link.on('receiver_error', release);
      connection.onClose(release);
      link.on('message', (context) => {
        const delivery = context.delivery as Delivery & { format?: number };
        const fail = (e: unknown) => {
          const { condition, description } = serviceBusAmqpError(e);
          if (condition === 'amqp:internal-error') connection.logger.warn({ err: e }, 'Service Bus send failed');
          delivery.reject({ condition, description });
        };
        try {
          const payloads = incomingPayloads(context.message!, delivery.format);
          // Accepted once committed (group commit with the other sends and settlements of this turn).
          namespaces.sendSoon(namespace, target, payloads).then(() => delivery.accept(), fail);
        } catch (e) {
          fail(e);
        }
      });
      return undefined;
    },
  };
}


/**
 * Links on which clients receive from a queue, subscription or dead-letter subqueue (the hub
 * sends): peek-lock (the client settles each delivery; the delivery tag is the lock token) or
 * receive-and-delete (pre-settled, removed before sending), as far as the client's credit goes.
 */
export function serviceBusReceiveRoute(namespaces: ServiceBusNamespaces, connections: ServiceBusConnections): LinkRoute {
  return {
    role: 'send',
    address: /^(?!.*\$(?:cbs|management)$).+$/i,
    accepts: (c) => connections.namespaceOf(c) !== undefined,
    async open({ connection, link, address }: IncomingLink<Sender>) {
      const attach = (link as unknown as { local: { attach: Record<string, unknown> }; remote: { attach: Record<string, unknown> } });
      const filter = (link.source as { filter?: Record<string, unknown> } | undefined)?.filter;
      if (filter && Object.keys(filter).some((k) => k.toLowerCase() === 'com.microsoft:session-filter')) {
        // Refused as AMQP refuses a link: an attach without a source, then the detach with the error.
        attach.local.attach.source = null;
        const refusal = new ServiceBusError('SessionsNotSupported', `Session receivers are not supported by Fleethub: '${entityAddress(address)}' has no sessions.`);
        setImmediate(() => refuse(link, refusal));
        return undefined;
      }
      link.set_source(link.source);
      link.set_target(link.target);
      const receiveAndDelete = attach.remote.attach.snd_settle_mode === 1;
      attach.local.attach.snd_settle_mode = receiveAndDelete ? 1 : 0;
      attach.local.attach.rcv_settle_mode = attach.remote.attach.rcv_settle_mode ?? 0;
      const namespace = connections.namespaceOf(connection)!;
      const path = entityAddress(address);
      let entity: ReceivableEntity;
      const holder = { expire: (why: string) => refuse(link, new ServiceBusError('Unauthorized', why)) };
      try {
        await connections.authorizeNow(connection, 'Listen', path, holder);
        entity = namespaces.receivable(namespace, path);
      } catch (e) {
        connections.release(connection, holder);
        return refuse(link, e);
      }
      if (!link.is_open()) return connections.release(connection, holder);
      const lockTokens = new WeakMap<Delivery, string>();
      /** Deliveries sent in peek-lock and not yet settled by us, forgotten when the link ends. */
      const unsettled = new Set<Delivery>();
      let ended = false;
      const session = (link as unknown as { session: { outgoing: { available(): number } } }).session;
      const pump = () => {
        if (ended || !link.is_open()) return;
        const credit = (link as unknown as { credit: number }).credit;
        // The session's buffer of unsettled deliveries is finite (rhea: 2048): sending past it throws.
        const room = Math.min(credit, session.outgoing.available(), 500);
        if (room <= 0) return;
        let messages;
        try {
          messages = namespaces.receive(entity, room, receiveAndDelete ? 'receiveAndDelete' : 'peekLock');
        } catch (e) {
          connection.logger.warn({ err: e }, 'Service Bus receive failed');
          refuse(link, e);
          return;
        }
        for (const m of messages) {
          const tag = m.lockToken ? lockTokenTag(m.lockToken) : Buffer.from(rhea.string_to_uuid(rhea.generate_uuid()));
          const delivery = link.send(deliveryMessage(m), tag);
          if (m.lockToken) {
            lockTokens.set(delivery, m.lockToken);
            unsettled.add(delivery);
          }
        }
        if (messages.length === room) setImmediate(pump);
      };
      /**
       * Settles our side of a delivery with its outcome. The client attached with rcv-settle-mode
       * second: it settles after our disposition without telling us (nothing to tell a sender that
       * already settled), so rhea would keep the delivery in the session's buffer for ever and the
       * session would stall after 2048 deliveries; the delivery is finished on our side here.
       */
      const finish = (delivery: Delivery, state: unknown) => {
        unsettled.delete(delivery);
        delivery.update(true, state);
        (delivery as unknown as { remote_settled: boolean }).remote_settled = true;
      };
      const settle = (delivery: Delivery, settlement: Settlement) => {
        const lockToken = lockTokens.get(delivery) ?? lockTokenFromTag(Buffer.from(delivery.tag as Buffer));
        // The outcome goes back once the settlement committed (group commit).
        namespaces.settleSoon(namespace, lockToken, settlement).then(
          () => finish(delivery, (rhea.message as unknown as Outcomes).accepted().described()),
          (e) => {
            const { condition, description } = serviceBusAmqpError(e);
            finish(delivery, (rhea.message as unknown as Outcomes).rejected({ error: { condition, description } }).described());
          },
        ).finally(() => {
          // Room in the session may let a stalled pump go on.
          if (!ended) pump();
        });
      };
      const outcome = (type: string) => (context: { delivery?: Delivery }) => {
        const delivery = context.delivery!;
        if (receiveAndDelete) return;
        const state = (delivery as unknown as { remote_state?: { constructor: { composite_type?: string } } & Record<string, unknown> }).remote_state;
        const kind = state?.constructor.composite_type ?? type;
        if (kind !== type) return;
        if (kind === 'accepted') settle(delivery, { outcome: 'complete' });
        else if (kind === 'rejected') {
          const error = (state?.error ?? {}) as { condition?: string; info?: Record<string, unknown> };
          const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = error.info ?? {};
          settle(delivery, {
            outcome: 'deadLetter',
            ...(DeadLetterReason !== undefined ? { reason: String(DeadLetterReason) } : {}),
            ...(DeadLetterErrorDescription !== undefined ? { description: String(DeadLetterErrorDescription) } : {}),
            ...(Object.keys(properties).length ? { properties } : {}),
          });
        } else if (kind === 'modified') {
          const properties = state?.message_annotations as Record<string, unknown> | undefined;
          settle(delivery, { outcome: state?.undeliverable_here ? 'defer' : 'abandon', ...(properties ? { properties } : {}) });
        } else if (kind === 'released') settle(delivery, { outcome: 'abandon' });
      };
      link.on('accepted', outcome('accepted'));
      link.on('rejected', outcome('rejected'));
      link.on('modified', outcome('modified'));
      link.on('released', outcome('released'));
      const unsubscribe = namespaces.onAvailable(namespace, entity.path, pump);
      link.on('sendable', pump);
      link.on('sender_draining', () => {
        pump();
        link.set_drained(true);
      });
      const end = () => {
        if (ended) return;
        ended = true;
        unsubscribe();
        connections.release(connection, holder);
        // Unsettled deliveries of a detached link stay locked until their locks expire; rhea
        // forgets them so that they do not hold the session's buffer.
        for (const d of unsettled) Object.assign(d, { settled: true, remote_settled: true });
        unsettled.clear();
      };
      link.on('sender_close', end);
      link.on('sender_error', end);
      connection.onClose(end);
      setImmediate(pump);
      return undefined;
    },
  };
}

export function connectionNamespace(connections: ServiceBusConnections, connection: ClientConnection): string {
  return connections.namespaceOf(connection)!;
}
