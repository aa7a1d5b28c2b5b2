import type { Delivery, Message, Sender } from 'rhea';
import type { ServiceBoundBatch, ServiceBoundQueue } from '../../../hub/messaging/serviceBoundQueue.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { authorizeLink } from '../linkAuth.js';

export interface ServiceBoundLink<R extends { id: number }> {
  address: RegExp;
  /** The data action (for bearer tokens) the link needs besides ServiceConnect. */
  dataAction: string;
  queue: ServiceBoundQueue<R>;
  /** One AMQP message for a leased batch. */
  encode(records: R[]): Message;
  /** How long a delivered batch stays locked to its receiver without being settled. */
  lockMs(): number;
  /** Whether a rejected delivery removes the batch (dead-letters it) rather than offering it again. */
  rejectRemoves?: boolean;
}

/**
 * A service-bound receiver link (feedback, file notifications): leases batches from the queue
 * while the link has credit, removes them when the service completes (accepts) them, offers them
 * again when it abandons them, or when they stay unsettled past the lock.
 */
export function serviceBoundRoute<R extends { id: number }>(spec: ServiceBoundLink<R>): LinkRoute {
  return {
    role: 'send',
    address: spec.address,
    async open(incoming: IncomingLink<Sender>) {
      const { link, connection } = incoming;
      link.set_source(link.source);
      if (!(await authorizeLink(incoming, 'ServiceConnect', '', [spec.dataAction]))) return;
      const outstanding = new Map<Delivery, ServiceBoundBatch<R>>();
      let pumping = false;
      let again = false;
      const pump = async () => {
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        try {
          do {
            again = false;
            while (link.is_open() && link.sendable()) {
              const batch = await spec.queue.lease();
              if (!batch) break;
              if (!link.is_open()) {
                await batch.settle(false);
                break;
              }
              const delivery = link.send(spec.encode(batch.records));
              outstanding.set(delivery, batch);
              setTimeout(() => settle(delivery, false), spec.lockMs()).unref();
            }
          } while (again);
        } catch (e) {
          connection.logger.warn({ err: e }, 'service-bound delivery failed');
        } finally {
          pumping = false;
        }
      };
      const settle = (delivery: Delivery | undefined, completed: boolean) => {
        const batch = delivery && outstanding.get(delivery);
        if (!batch) return;
        outstanding.delete(delivery);
        void batch.settle(completed);
      };
      link.on('accepted', (c) => settle(c.delivery, true));
      link.on('rejected', (c) => settle(c.delivery, spec.rejectRemoves ?? false));
      for (const event of ['released', 'modified']) link.on(event, (c) => settle(c.delivery, false));
      link.on('sendable', () => void pump());
      const unsubscribe = spec.queue.subscribe(() => void pump());
      const end = () => {
        unsubscribe();
        for (const d of [...outstanding.keys()]) settle(d, false);
      };
      link.on('sender_close', end);
      connection.onClose(end);
      void pump();
    },
  };
}
