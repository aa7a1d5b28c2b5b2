import { randomUUID } from 'node:crypto';
import { errors, HubError } from '../../core/errors.js';
import type { C2dQueue } from '../../store/index.js';
import type { AckMode, CloudToDeviceMessage } from './cloudToDeviceMessage.js';
import { HeldCloudToDeviceSettings } from './cloudToDeviceSettings.js';

/** IoT Hub's fixed limits; the default time to live and the delivery count are the hub's settings. */
export const CLOUD_TO_DEVICE_LIMITS = {
  maxQueueDepth: 50,
  maxTtlSeconds: 2 * 24 * 60 * 60,
  maxBodyBytes: 64 * 1024,
} as const;

const ackModes: AckMode[] = ['none', 'positive', 'negative', 'full'];

/** What a sender gives; the hub fills in ids and times. */
export interface CloudToDeviceSend {
  body: Buffer;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  ack?: AckMode;
  /** Time to live in seconds (at most 2 days); without it, the hub's `cloudToDevice.defaultTtlAsIso8601`. */
  ttlSeconds?: number;
  properties?: Record<string, string>;
}

/**
 * How a protocol adapter hands a message to a connected device. `deliver` resolves when the device
 * has acknowledged it (MQTT PUBACK) and rejects when it cannot be delivered (connection gone).
 * Protocols with dispositions (AMQP) may resolve 'Rejected' (dead-lettered, with feedback) or
 * 'Abandoned' (delivered again).
 */
export interface CloudToDeviceReceiver {
  deliver(message: CloudToDeviceMessage): Promise<void | 'Rejected' | 'Abandoned'>;
}

interface Attachment {
  receiver: CloudToDeviceReceiver;
  running: boolean;
  /** Set by a send that raced with the delivery loop going idle. */
  wake: boolean;
}

/**
 * Cloud-to-device messaging: a durable per-device queue and delivery to whichever connection of
 * the device is receiving. Delivery is one message at a time, oldest first; a message is removed
 * only once the device acknowledged it, so an unacknowledged one is delivered again later.
 */
export class CloudToDevice {
  private readonly attached = new Map<string, Attachment>();

  constructor(
    private readonly queue: C2dQueue,
    private readonly now: () => number = Date.now,
    /** How long a pulled message stays locked (IoT Hub: one minute). */
    private readonly lockMs = 60_000,
    /** The hub resource's `cloudToDevice` settings (default time to live, maximum delivery count). */
    private readonly settings = new HeldCloudToDeviceSettings(),
  ) {}

  /**
   * Pull delivery (HTTPS): the oldest message the device has not yet settled, locked under a new
   * lock token for the lock timeout (invisible to every receiver meanwhile; offered again once the
   * lock ends). Each receive counts as a delivery, as on AMQP and MQTT.
   */
  async receive(deviceId: string): Promise<{ message: CloudToDeviceMessage; lockToken: string } | undefined> {
    const lockToken = randomUUID();
    const now = this.now();
    const message = await this.queue.lock(deviceId, now, this.settings.current().maxDeliveryCount, lockToken, now + this.lockMs);
    return message && { message, lockToken };
  }

  /**
   * Settles a pulled message by its lock token: complete (feedback Success), reject (feedback
   * Rejected) or abandon (offered again). DeviceMessageLockLost when the lock is not held.
   */
  async settle(deviceId: string, lockToken: string, action: 'complete' | 'reject' | 'abandon'): Promise<void> {
    if (!(await this.queue.settleLock(deviceId, lockToken, action, this.now()))) {
      throw new HubError('DeviceMessageLockLost', `The lock token ${lockToken} is not held by a message of device ${deviceId} (expired, already settled or unknown)`);
    }
    // An abandoned message may go to a receiving connection of the device at once.
    if (action === 'abandon') this.wake(deviceId);
  }

  async send(deviceId: string, input: CloudToDeviceSend): Promise<{ messageId: string; expiryTimeUtc: string; queueDepth: number }> {
    const ttl = input.ttlSeconds;
    if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > CLOUD_TO_DEVICE_LIMITS.maxTtlSeconds)) {
      throw errors.argument(`The time to live must be between 1 and ${CLOUD_TO_DEVICE_LIMITS.maxTtlSeconds} seconds`);
    }
    const ttlMs = ttl === undefined ? this.settings.current().defaultTtlMs : ttl * 1000;
    const ack = input.ack ?? 'none';
    if (!ackModes.includes(ack)) throw errors.argument(`ack must be one of ${ackModes.join(', ')}`);
    if (input.body.length > CLOUD_TO_DEVICE_LIMITS.maxBodyBytes) {
      throw new HubError('MessageTooLarge', `Cloud-to-device messages are limited to ${CLOUD_TO_DEVICE_LIMITS.maxBodyBytes} bytes`);
    }
    const now = this.now();
    const messageId = input.messageId ?? randomUUID();
    const result = await this.queue.enqueue(
      {
        deviceId,
        messageId,
        correlationId: input.correlationId,
        userId: input.userId,
        contentType: input.contentType,
        contentEncoding: input.contentEncoding,
        ack,
        properties: input.properties ?? {},
        body: input.body,
        enqueuedTime: now,
        expiryTime: now + ttlMs,
      },
      CLOUD_TO_DEVICE_LIMITS.maxQueueDepth,
      now,
    );
    if (result === 'notFound') throw errors.deviceNotFound(deviceId);
    if (result === 'full') {
      throw new HubError(
        'DeviceMaximumQueueDepthExceeded',
        `The device ${deviceId} already has ${CLOUD_TO_DEVICE_LIMITS.maxQueueDepth} cloud-to-device messages queued`,
      );
    }
    this.wake(deviceId);
    return { messageId, expiryTimeUtc: new Date(now + ttlMs).toISOString(), queueDepth: await this.queue.depth(deviceId, now) };
  }

  async queueDepth(deviceId: string): Promise<number> {
    return this.queue.depth(deviceId, this.now());
  }

  /** Called by a protocol adapter when the device starts receiving; returns the detach. */
  attach(deviceId: string, receiver: CloudToDeviceReceiver): () => void {
    const attachment: Attachment = { receiver, running: false, wake: false };
    this.attached.set(deviceId, attachment);
    void this.pump(deviceId, attachment);
    return () => {
      if (this.attached.get(deviceId) === attachment) this.attached.delete(deviceId);
    };
  }

  private wake(deviceId: string): void {
    const attachment = this.attached.get(deviceId);
    if (!attachment) return;
    attachment.wake = true;
    if (!attachment.running) void this.pump(deviceId, attachment);
  }

  private async pump(deviceId: string, attachment: Attachment): Promise<void> {
    if (attachment.running) return;
    attachment.running = true;
    try {
      while (this.attached.get(deviceId) === attachment) {
        attachment.wake = false;
        let message;
        try {
          message = await this.queue.next(deviceId, this.now(), this.settings.current().maxDeliveryCount);
        } catch {
          return; // the store failed; the messages stay queued for the next attach or send
        }
        if (!message) {
          if (attachment.wake) continue;
          return;
        }
        try {
          const outcome = await attachment.receiver.deliver(message);
          // Abandoned: stays queued; the next turn delivers it again (counting the delivery).
          if (outcome === 'Abandoned') continue;
          await this.queue.complete(deviceId, message.sequenceNumber, outcome ?? 'Success', this.now());
        } catch {
          return; // not acknowledged (connection gone): stays queued for the next connection
        }
      }
    } finally {
      attachment.running = false;
    }
  }
}
