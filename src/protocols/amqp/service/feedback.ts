import { randomUUID } from 'node:crypto';
import rhea, { type Delivery, type Sender } from 'rhea';
import type { CloudToDeviceFeedback, FeedbackBatch } from '../../../hub/messaging/feedback.js';
import type { IncomingLink, LinkRoute } from '../link.js';
import { authorizeLink } from '../linkAuth.js';
import { IotHubDataActions } from '../../../hub/auth/dataActions.js';

/** How long a delivered feedback batch stays locked to its receiver without being settled. */
const FEEDBACK_LOCK_MS = 60_000;

/** IoT Hub's words for each outcome in a feedback record's description. */
const descriptions: Record<string, string> = {
  Success: 'Success',
  Expired: 'Message Expired',
  DeliveryCountExceeded: 'Delivery Count Exceeded',
  Rejected: 'Message Rejected',
  Purged: 'Message Purged',
};

/**
 * The service's feedback receiver (`/messages/serviceBound/feedback`): batches of feedback
 * records as IoT Hub sends them (a JSON array, content type
 * application/vnd.microsoft.iothub.feedback.json). A batch is removed when the service completes
 * it; abandoned, rejected or unsettled batches (after a one-minute lock) are offered again.
 */
export function feedbackRoute(feedback: CloudToDeviceFeedback, hubName: string): LinkRoute {
  return {
    role: 'send',
    address: /^\/messages\/serviceBound\/feedback$/i,
    async open(incoming: IncomingLink<Sender>) {
      const { link, connection } = incoming;
      link.set_source(link.source);
      if (!(await authorizeLink(incoming, 'ServiceConnect', '', [IotHubDataActions.cloudToDeviceFeedback]))) return;
      const outstanding = new Map<Delivery, FeedbackBatch>();
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
              const batch = await feedback.lease();
              if (!batch) break;
              if (!link.is_open()) {
                await batch.settle(false);
                break;
              }
              const delivery = link.send({
                message_id: randomUUID(),
                user_id: Buffer.from(hubName, 'utf8') as never,
                content_type: 'application/vnd.microsoft.iothub.feedback.json',
                content_encoding: 'utf-8',
                body: rhea.message.data_section(Buffer.from(JSON.stringify(batch.records.map(record)), 'utf8')),
              });
              outstanding.set(delivery, batch);
              // A batch the service neither completes nor abandons is offered again after the lock.
              setTimeout(() => settle(delivery, false), FEEDBACK_LOCK_MS).unref();
            }
          } while (again);
        } catch (e) {
          connection.logger.warn({ err: e }, 'feedback delivery failed');
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
      for (const event of ['rejected', 'released', 'modified']) link.on(event, (c) => settle(c.delivery, false));
      link.on('sendable', () => void pump());
      const unsubscribe = feedback.subscribe(() => void pump());
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

function record(r: { originalMessageId: string; outcome: string; deviceId: string; deviceGenerationId: string; enqueuedTime: number }) {
  return {
    originalMessageId: r.originalMessageId,
    enqueuedTimeUtc: new Date(r.enqueuedTime).toISOString(),
    statusCode: r.outcome,
    description: descriptions[r.outcome] ?? r.outcome,
    deviceId: r.deviceId,
    deviceGenerationId: r.deviceGenerationId,
  };
}
