import rhea, { type Sender } from 'rhea';
import { HubError } from '../../../core/errors.js';
import type { LoggedEvent, LogPosition } from '../../../hub/eventhub/types.js';
import { amqpError, amqpErrors } from '../errors.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { eventMessage } from './eventMessage.js';
import { encodeEvent, type RuntimeInfo } from './eventEncoding.js';
import { parseSelector } from './filter.js';
import { logPump } from './logPump.js';
import type { EventHubAccess } from './access.js';

const SELECTOR = 'apache.org:selector-filter:string';
const EPOCH = 'com.microsoft:epoch';
const RUNTIME_METRIC = 'com.microsoft:enable-receiver-runtime-metric';
/**
 * How many transfers the link may send now: its credit, and no more than its session can hold
 * unsettled. rhea keeps a session's unsettled deliveries in a ring of 2,048 and does not check it
 * on send: the 2,049th threw after taking a delivery id, and the session never sent again. The
 * SDK tops credit up by its prefetch on every receive call without counting what is outstanding,
 * so a link's credit does pass 2,048. rhea says 'sendable' again once settlements free the ring.
 */
function sendRoom(link: Sender): number {
  const l = link as unknown as { credit: number; session: { outgoing: { available(): number } } };
  return Math.min(l.credit, l.session.outgoing.available());
}

/**
 * Receivers on `{hub}/ConsumerGroups/{group}/Partitions/{n}`: events from the position in the
 * link's selector filter, as far as the client's credit goes, and new ones as soon as they are
 * appended (no polling: the append notifier wakes the link).
 */
export function partitionReceiverRoute(access: EventHubAccess): LinkRoute {
  return {
    role: 'send',
    address: /^(?:[a-z]+:\/\/[^/]+)?\/?([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i,
    ...(access.accepts ? { accepts: access.accepts } : {}),
    async open({ connection, link, address }: IncomingLink<Sender>, m) {
      link.set_source(link.source);
      const [, entity, groupName, partitionId] = m as unknown as [string, string, string, string];
      // Authorized before anything about the entity is revealed.
      const holder = { expire: (why: string) => link.close(amqpErrors.unauthorized(why)) };
      try {
        await access.authorize(connection, 'Listen', entity, `/${address.replace(/^[a-z]+:\/\/[^/]+/i, '').replace(/^\//, '')}`, holder);
      } catch (e) {
        link.close(e instanceof HubError ? amqpError(e) : amqpErrors.unauthorized('Unauthorized'));
        return;
      }
      if (!link.is_open()) return;
      const release = () => access.release(connection, holder);
      const endpoint = access.find(connection, entity);
      const group = endpoint ? await endpoint.consumerGroup(groupName) : undefined;
      const partition = endpoint?.partition(partitionId);
      if (!endpoint || !group || partition === undefined) {
        release();
        link.close(amqpErrors.notFound(`The messaging entity '${address}' could not be found.`));
        return;
      }
      const filter = (link.source as { filter?: Record<string, unknown> }).filter?.[SELECTOR];
      const selector = typeof filter === 'string' ? filter : (filter as { value?: unknown } | undefined)?.value;
      const start = parseSelector(typeof selector === 'string' ? selector : undefined);
      if (!start || (filter !== undefined && typeof selector !== 'string')) {
        release();
        link.close(amqpErrors.invalidField(`Invalid selector filter '${String(selector)}'`));
        return;
      }
      const epochValue = link.properties?.[EPOCH];
      const epoch = epochValue === undefined || epochValue === null ? undefined : Number(epochValue);


      let position: LogPosition;
      if (start === 'latest') {
        const info = await endpoint.partitionProperties(partition);
        position = { sequenceNumber: info.lastSequenceNumber };
      } else position = start;

      const reader = {
        epoch,
        disconnect: (reason: string) => link.close({ condition: 'amqp:link:stolen', description: reason }),
      };
      const admission = endpoint.ownership.admit(group, partition, reader);
      if (!admission.ok) {
        release();
        link.close({ condition: admission.quota ? 'amqp:resource-limit-exceeded' : 'amqp:link:stolen', description: admission.reason });
        return;
      }
      const runtimeMetric = ([] as unknown[]).concat(link.desired_capabilities ?? []).includes(RUNTIME_METRIC);
      // Event Hubs sends events settled (its consumers attach with snd-settle-mode settled, the
      // .NET client's SettleOnSend; @azure/event-hubs leaves it mixed): the consumer's position is
      // its own checkpoint, not an acknowledgement. Settled transfers cost the consumer no
      // disposition frames and the hub no bookkeeping of unsettled deliveries. Only a receiver
      // that asked for unsettled transfers (snd-settle-mode 0) gets them.
      const presettled = (link as unknown as { remote: { attach?: { snd_settle_mode?: number } } }).remote.attach?.snd_settle_mode !== 0;

      let ended = false;
      const pump = logPump({
        log: endpoint.log,
        partition,
        from: position,
        room: () => (link.is_open() ? sendRoom(link) : 0),
        ended: () => ended,
        send: (events) => send(events),
        failed: (e) => {
          connection.logger.warn({ err: e }, 'reading the event log for an AMQP receiver failed');
          if (!ended && link.is_open()) link.close({ condition: 'amqp:internal-error', description: 'Reading the partition failed' });
        },
      });
      const send = async (events: LoggedEvent[]): Promise<void> => {
        const info = runtimeMetric ? await endpoint.partitionProperties(partition) : undefined;
        if (ended || !link.is_open()) return;
        // Once per batch, when it was retrieved; field by field (a spread that gains a key made a
        // hidden class per event: src/core/objects.ts).
        const runtime: RuntimeInfo | undefined = info && {
          lastSequenceNumber: info.lastSequenceNumber,
          lastOffset: info.lastOffset,
          lastEnqueuedTime: info.lastEnqueuedTime,
          retrievedAt: Date.now(),
        };
        for (const event of events) {
          // The common shape is written directly (the same bytes); the rest by rhea.
          const encoded = encodeEvent(event, runtime);
          let delivery;
          if (encoded) delivery = link.send(encoded, undefined, 0);
          else {
            const message = eventMessage(event);
            if (runtime) {
              message.delivery_annotations = {
                last_enqueued_sequence_number: rhea.types.wrap_long(runtime.lastSequenceNumber),
                last_enqueued_offset: runtime.lastOffset,
                last_enqueued_time_utc: rhea.types.wrap_timestamp(runtime.lastEnqueuedTime),
                runtime_info_retrieval_time_utc: rhea.types.wrap_timestamp(runtime.retrievedAt),
              };
            }
            delivery = link.send(message);
          }
          // rhea writes the transfer later in this turn; settled now, it goes out settled.
          if (presettled) (delivery as { settled: boolean }).settled = true;
        }
      };
      const unsubscribe = endpoint.appends.subscribe(partition, pump);
      const end = () => {
        if (ended) return;
        ended = true;
        unsubscribe();
        endpoint.ownership.release(group, partition, reader);
        release();
      };
      link.on('sendable', pump);
      link.on('sender_close', end);
      link.on('sender_error', end);
      connection.onClose(end);
      pump();
    },
  };
}
