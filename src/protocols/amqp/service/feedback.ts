import { randomUUID } from 'node:crypto';
import rhea from 'rhea';
import type { CloudToDeviceFeedback } from '../../../hub/messaging/feedback.js';
import type { LinkRoute } from '../link.js';
import { IotHubDataActions } from '../../../hub/auth/dataActions.js';
import { serviceBoundRoute } from './serviceBound.js';

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
 * it; abandoned, rejected or unsettled batches (after the hub's feedback lock duration) are offered
 * again, until the feedback's maximum delivery count.
 */
export function feedbackRoute(feedback: CloudToDeviceFeedback, hubName: string): LinkRoute {
  return serviceBoundRoute({
    address: /^\/messages\/serviceBound\/feedback$/i,
    dataAction: IotHubDataActions.cloudToDeviceFeedback,
    queue: feedback,
    lockMs: () => feedback.lockMs(),
    encode: (records) => ({
      message_id: randomUUID(),
      user_id: Buffer.from(hubName, 'utf8') as never,
      content_type: 'application/vnd.microsoft.iothub.feedback.json',
      content_encoding: 'utf-8',
      body: rhea.message.data_section(Buffer.from(JSON.stringify(records.map(record)), 'utf8')),
    }),
  });
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
