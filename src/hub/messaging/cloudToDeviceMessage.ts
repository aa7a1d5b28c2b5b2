/** Cloud-to-device messages as the hub queues them for a device. */

/** The feedback a sender asked for (`iothub-ack`). */
export type AckMode = 'none' | 'positive' | 'negative' | 'full';

/** How a message left the queue, in the words of IoT Hub's feedback records. */
export type CloudToDeviceOutcome = 'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected' | 'Purged';

export interface CloudToDeviceMessage {
  deviceId: string;
  /** Queue order; unique per hub. */
  sequenceNumber: number;
  messageId: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  ack: AckMode;
  /** Application properties. */
  properties: Record<string, string>;
  body: Buffer;
  enqueuedTime: number;
  expiryTime: number;
  deliveryCount: number;
}
